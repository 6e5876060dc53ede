// Package supervisor owns what a node runs on: the embedded NATS server, the
// node's key files, NATS connections built from configuration, and the
// metrics/health endpoint. (Child processes and credentials minting build on
// this; the wasm host itself lives in package agent and is wired in by cmd.)
package supervisor

// Package trust decides whom latticed believes: it holds key pairs and
// signs with them, writes and verifies the wascap JWTs the lattice carries
// (invocation antiforgery tokens, actor and provider claims, delegation
// tokens), reads and embeds the claims in wasm modules, and checks each
// incoming invocation (Issuers: signature, body hash, trusted issuer or
// delegation, target, freshness, replay).
//
// It is stateful where the wire is not: Issuers caches verified delegation
// tokens and remembers revocations, and its ReplayGuard remembers invocation
// ids. Package lattice holds the wire types these act on (Invocation,
// Entity, the rejection reasons) and the text form of keys; trust imports
// lattice, never the reverse. The rules are docs/protocol.md §2 (claims) and
// §3 (invocations), and docs/security.md.
//
// The public packages provider, rpc and ctlclient take *KeyPair and Signer
// in their APIs, so this package is public too.
package trust

// Package rpc carries lattice invocations over NATS, both ways: Invoke signs
// and sends one and decodes the reply (the one client path shared by the
// wasm host, providers and `latticed ctl call`), and Server receives them
// for a callee (the host's actors, each provider) through the checks every
// receiver makes, and replies. Errors carry their reason across: a
// *RemoteError matches this package's sentinels with errors.Is.
package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Invoke signs an invocation from origin to target with signer (a cluster key
// or, for providers, the key they were handed), sends it on subject and
// returns the reply body, or the callee's error.
func Invoke(ctx context.Context, nc *nats.Conn, signer *trust.KeyPair, hostID string, origin, target lattice.Entity, subject, operation string, payload []byte) ([]byte, error) {
	return InvokeAs(ctx, nc, trust.Signer{Key: signer}, hostID, origin, target, subject, operation, payload)
}

// InvokeAs is Invoke with a delegated signer: the provider-side path, where
// the invocation carries the delegation token that vouches for the key.
func InvokeAs(ctx context.Context, nc *nats.Conn, signer trust.Signer, hostID string, origin, target lattice.Entity, subject, operation string, payload []byte) ([]byte, error) {
	inv, err := signer.NewInvocation(hostID, origin, target, operation, payload)
	if err != nil {
		return nil, err
	}
	inv.TraceContext = inject(ctx) // nil while tracing is off
	data, err := inv.Encode()
	if err != nil {
		return nil, err
	}
	msg, err := nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("Failed to perform RPC call to %s: %w", subject, ErrNoResponders)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("Failed to perform RPC call to %s: request timeout", subject)
	case err != nil:
		return nil, fmt.Errorf("Failed to perform RPC call to %s: %w", subject, err)
	}
	resp, err := lattice.DecodeInvocationResponse(msg.Data)
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, &RemoteError{Msg: resp.Error, Code: msg.Header.Get(lattice.HeaderErrorCode)}
	}
	if resp.ContentLength > uint64(len(resp.Msg)) {
		return nil, fmt.Errorf("response of %d bytes was chunked to the object store, which latticed does not read", resp.ContentLength)
	}
	return resp.Msg, nil
}

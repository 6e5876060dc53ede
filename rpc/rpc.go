// Package rpc sends signed invocations over NATS and decodes the replies: the
// one client path shared by the wasm host, providers and `latticed ctl call`.
package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// ErrNoResponders means nothing in the lattice serves the target.
var ErrNoResponders = errors.New("no responders: the target is not running in this lattice")

// ErrUnavailable matches a callee's error reply coded
// lattice.ErrorCodeUnavailable: the callee, or a provider it called, is not
// running yet or is stopping; retrying later can succeed.
var ErrUnavailable = errors.New("unavailable: retry later")

// RemoteError is the callee's error reply: its text, unchanged, and the
// code the callee classified it with (lattice.HeaderErrorCode; "" when the
// callee gave none, as wasmCloud's hosts and providers do).
type RemoteError struct {
	Msg  string
	Code string
}

func (e *RemoteError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrUnavailable) true for a reply coded unavailable.
func (e *RemoteError) Is(target error) bool {
	return target == ErrUnavailable && e.Code == lattice.ErrorCodeUnavailable
}

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
	inv.TraceContext = telemetry.Inject(ctx) // nil while tracing is off
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

// Respond sends resp as the reply to m. A reply too large for NATS is
// replaced by an error reply saying so, so the caller is never left to time out.
func Respond(m *nats.Msg, resp *lattice.InvocationResponse) error {
	if m.Reply == "" {
		return nil
	}
	b, err := resp.Encode()
	switch {
	case err != nil:
	case resp.ErrorCode != "": // only coded errors carry a header; replies stay as they were
		err = m.RespondMsg(&nats.Msg{Data: b, Header: nats.Header{lattice.HeaderErrorCode: []string{resp.ErrorCode}}})
	default:
		err = m.Respond(b)
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		tooBig := &lattice.InvocationResponse{InvocationID: resp.InvocationID,
			Error: fmt.Sprintf("response of %d bytes exceeds the NATS max payload", len(resp.Msg))}
		if b, err = tooBig.Encode(); err == nil {
			err = m.Respond(b)
		}
	}
	return err
}

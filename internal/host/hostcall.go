package host

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/wire"
)

// Host-call target kinds (metric label values, defined in package metrics).
const (
	targetProvider = metrics.TargetProvider
	targetActor    = metrics.TargetActor
	targetBuiltin  = metrics.TargetBuiltin
)

// hostCall routes an actor's __host_call (docs/protocol.md §5): built-ins answered
// here, then a linked provider, an actor key, or a call alias.
//
// A failed call is not the end of the invocation: its error goes back to the
// actor (through __host_error, as a hostCallError with wasmCloud's text),
// which decides what to answer. So the call gets its own deadline, ending
// before the invocation's (hostCallContext), and the instance is replaced
// only when the actor itself overruns the invocation's deadline.
func (h *Host) hostCall(ctx context.Context, a *actor, binding, namespace, operation string, payload []byte) ([]byte, error) {
	ctx, cancel := h.hostCallContext(ctx)
	defer cancel()
	ctx, span := rpc.StartHostCall(ctx, a.key, namespace, binding, operation) // a no-op while tracing is off
	kind, resp, err := h.routeHostCall(ctx, a, binding, namespace, operation, payload)
	span.End(err)
	result := metrics.ResultOK
	if err != nil {
		result = metrics.ResultError
		h.log.Debug("host call failed", "actor", a.key, "namespace", namespace, "binding", binding, "operation", operation, "err", err)
		err = &hostCallError{err: err}
	}
	h.m.HostCallsTotal.WithLabelValues(a.key, kind, result).Inc()
	return resp, err
}

// hostCallContext bounds one outbound host call: the RPC timeout, or what
// is left of the inbound invocation's deadline less a tenth of it, whichever
// is shorter. The tenth is the actor's time to answer after a failed call;
// without it a callee that never answers would use up the invocation's
// deadline and the actor would be interrupted rather than told.
func (h *Host) hostCallContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := cmp.Or(h.opts.RPCTimeout, rpc.DefaultTimeout)
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		timeout = min(timeout, left-left/answerReserve)
	}
	return context.WithTimeout(ctx, timeout)
}

// answerReserve: 1/answerReserve of what is left of the invocation's
// deadline is kept for the actor to answer after a host call failed.
const answerReserve = 10

// hostCallFailed starts every host call error the actor reads, as in
// wasmCloud's hosts (docs/protocol.md §5).
const hostCallFailed = "Host call function failed: "

// hostCallError is a failed host call as the actor reads it through
// __host_error: wasmCloud's text, "Host call function failed: " and the
// cause's text, where a call that got no reply in time (or had nobody to
// answer it) reads exactly as in wasmCloud, without latticed's detail
// (logged instead). It unwraps to the cause, so the host still sees
// rpc.ErrNoResponders and the other sentinels.
type hostCallError struct{ err error }

func (e *hostCallError) Error() string {
	if errors.Is(e.err, rpc.ErrRequestTimeout) {
		return hostCallFailed + rpc.ErrRequestTimeout.Error()
	}
	return hostCallFailed + e.err.Error()
}

func (e *hostCallError) Unwrap() error { return e.err }

func (h *Host) routeHostCall(ctx context.Context, a *actor, binding, namespace, operation string, payload []byte) (string, []byte, error) {
	if binding == "" {
		binding = "default"
	}
	switch namespace {
	case wire.ContractLogging, wire.ContractNumberGen:
		if !a.claims().Wascap.HasCapability(namespace) {
			return targetBuiltin, nil, fmt.Errorf("Invocation not authorized: missing capability claim for %s", namespace)
		}
		resp, err := h.builtin(a, namespace, operation, payload)
		return targetBuiltin, resp, err
	}
	if link, ok := h.state.link(a.key, namespace, binding); ok {
		if !a.claims().Wascap.HasCapability(namespace) {
			return targetProvider, nil, fmt.Errorf("Invocation not authorized: missing capability claim for %s", namespace)
		}
		target := lattice.Entity{PublicKey: link.ProviderID, ContractID: namespace, LinkName: binding}
		resp, err := h.invoke(ctx, a, target, lattice.RPCProvider(h.opts.LatticePrefix, link.ProviderID, binding), operation, payload)
		return targetProvider, resp, err
	}
	if lattice.IsPublicKey(namespace, lattice.KindModule) {
		resp, err := h.invoke(ctx, a, lattice.ActorEntity(namespace), lattice.RPCActor(h.opts.LatticePrefix, namespace), operation, payload)
		return targetActor, resp, err
	}
	if key, ok := h.state.resolveAlias(namespace); ok {
		resp, err := h.invoke(ctx, a, lattice.ActorEntity(key), lattice.RPCActor(h.opts.LatticePrefix, key), operation, payload)
		return targetActor, resp, err
	}
	if strings.Contains(namespace, ":") {
		if !a.claims().Wascap.HasCapability(namespace) {
			return targetProvider, nil, fmt.Errorf("Invocation not authorized: missing capability claim for %s", namespace)
		}
		// wasmCloud's text, which does not name the link (hostCall logs it).
		return targetProvider, nil, fmt.Errorf("Invocation not authorized: missing link definition for %s on %s", namespace, h.opts.LatticePrefix)
	}
	return targetActor, nil, fmt.Errorf("Could not identify suitable target for invocation: %q is no linked contract, actor key or call alias", namespace)
}

// invoke sends a signed invocation from actor a and returns the reply body.
func (h *Host) invoke(ctx context.Context, a *actor, target lattice.Entity, subject, operation string, payload []byte) ([]byte, error) {
	return rpc.Invoke(ctx, h.opts.RPC, h.opts.ClusterKey, h.id, lattice.ActorEntity(a.key), target, subject, operation, payload)
}

// builtin answers wasmcloud:builtin:logging and wasmcloud:builtin:numbergen.
func (h *Host) builtin(a *actor, namespace, operation string, payload []byte) ([]byte, error) {
	switch operation {
	case wire.OpLogWrite:
		var e wire.LogEntry
		if err := lattice.Unmarshal(payload, &e); err != nil {
			return nil, fmt.Errorf("%s: %w", operation, err)
		}
		log := h.log.With("actor", a.key, "source", "actor")
		switch strings.ToLower(e.Level) {
		case "error":
			log.Error(e.Text)
		case "warn":
			log.Warn(e.Text)
		case "debug":
			log.Debug(e.Text)
		default:
			log.Info(e.Text)
		}
		return nil, nil
	case wire.OpNumGenGUID:
		return lattice.Marshal(uuid.NewString())
	case wire.OpNumGenRandom32:
		return lattice.Marshal(random32())
	case wire.OpNumGenRandomRange:
		var r wire.RangeLimit
		if err := lattice.Unmarshal(payload, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", operation, err)
		}
		if r.Max < r.Min {
			return nil, fmt.Errorf("%s: max %d is below min %d", operation, r.Max, r.Min)
		}
		span := uint64(r.Max) - uint64(r.Min) + 1
		return lattice.Marshal(r.Min + uint32(uint64(random32())%span))
	}
	return nil, fmt.Errorf("%s does not support operation %q", namespace, operation)
}

func random32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

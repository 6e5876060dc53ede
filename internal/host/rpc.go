package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// dispatch hands an invocation to its own goroutine: nats.go runs one
// subscription's callbacks serially, and actors must serve concurrently. The
// pool's bounded queue limits how many wait.
func (h *Host) dispatch(a *actor, m *nats.Msg) {
	if !h.rpcGate.enter() {
		h.respond(m, &lattice.InvocationResponse{Error: "host is stopping: actor " + a.key + " is no longer served here", ErrorCode: lattice.ErrorCodeUnavailable})
		return
	}
	if !a.gate.enter() {
		h.rpcGate.leave()
		h.respond(m, &lattice.InvocationResponse{Error: "actor " + a.key + " is stopping on this host", ErrorCode: lattice.ErrorCodeUnavailable})
		return
	}
	go func() {
		defer h.rpcGate.leave()
		defer a.gate.leave()
		h.serve(a, m)
	}()
}

// serve runs one invocation: size → decode → issuer policy → capability →
// instance → reply. Rejections never reach the actor.
func (h *Host) serve(a *actor, m *nats.Msg) {
	start := time.Now()
	if len(m.Data) > h.opts.MaxPayloadBytes {
		h.reject(m, a, nil, lattice.Reject(lattice.ReasonTooLarge, "invocation of %d bytes exceeds the %d byte limit (LATTICED_MAX_PAYLOAD_BYTES)", len(m.Data), h.opts.MaxPayloadBytes))
		return
	}
	inv, err := lattice.DecodeInvocation(m.Data)
	if err != nil {
		h.reject(m, a, nil, lattice.Reject(lattice.ReasonMalformed, "%v", err))
		return
	}
	if _, err := h.issuers.Check(inv, a.key); err != nil {
		h.reject(m, a, inv, err)
		return
	}
	if c := inv.Origin.ContractID; c != "" && !a.claims.Wascap.HasCapability(c) {
		h.reject(m, a, inv, lattice.Reject(lattice.ReasonCapabilityNotClaimed, "%s", c))
		return
	}
	if h.policySvc != nil {
		tgt := policy.Target{PublicKey: a.key, Issuer: a.claims.Issuer, ContractID: inv.Target.ContractID, LinkName: inv.Target.LinkName}
		ctx, cancel := context.WithTimeout(context.Background(), h.opts.RPCTimeout)
		_, err := h.policySvc.Decide(ctx, policy.ActionPerformInvocation, h.policySourceOf(inv.Origin), tgt)
		cancel()
		if err != nil {
			h.reject(m, a, inv, lattice.Reject(lattice.ReasonPolicyDenied, "%v", err))
			return
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), h.opts.RPCTimeout)
	defer cancel()
	resp := &lattice.InvocationResponse{InvocationID: inv.ID}
	ctx, span := telemetry.StartInvocation(ctx, inv, a.key) // a no-op while tracing is off
	defer span.EndResponse(resp)
	msg, instanceID, release, err := h.invokeActor(ctx, a, inv.Operation, inv.Msg)
	resp.InstanceID = instanceID
	if err != nil {
		resp.Error = err.Error()
		if ge := (*errGuest)(nil); errors.As(err, &ge) && ge.unavailable {
			resp.ErrorCode = lattice.ErrorCodeUnavailable
		}
	} else {
		resp.Msg, resp.ContentLength = msg, uint64(len(msg))
	}
	h.respond(m, resp)
	a.calls.done(inv.Operation, err != nil, since(start))
	// After the reply: replacing a broken instance starts a new one, which
	// takes as long as the actor's initialiser, and the caller whose call
	// hit its deadline should not wait for that too.
	release()
}

// invokeActor runs operation on a free instance of a, waiting in the queue if
// needed. The caller must call release once it has used the result: it
// returns the instance to the pool, which discards (and replaces) a broken one.
func (h *Host) invokeActor(ctx context.Context, a *actor, operation string, msg []byte) (out []byte, instanceID string, release func(), err error) {
	waitStart := time.Now()
	_, waiting := a.pool.stats()
	a.calls.queueDepth.Set(float64(waiting))
	in, err := a.pool.acquire(ctx)
	if err != nil {
		return nil, "", func() {}, fmt.Errorf("actor %s: %w", a.key, err)
	}
	a.calls.queueWait.Observe(since(waitStart))
	st := &callState{
		actor: a, op: []byte(operation), msg: msg, router: h,
		maxHostIO: uint32(h.opts.MaxPayloadBytes), log: h.log,
	}
	out, err = in.call(ctx, st)
	var ie *instanceError
	broken := errors.As(err, &ie)
	if broken {
		h.m.ActorInstanceFailures.WithLabelValues(a.key, ie.kind).Inc()
		h.log.Warn("actor instance failed; replacing it", "actor", a.key, "operation", operation, "kind", ie.kind, "err", err)
	}
	return out, in.id, func() { a.pool.release(context.WithoutCancel(ctx), in, broken) }, err
}

// reject answers a refused invocation with its reason, counts it, and emits a
// (rate-limited) invocation_rejected event.
func (h *Host) reject(m *nats.Msg, a *actor, inv *lattice.Invocation, err error) {
	reason := lattice.ReasonOf(err)
	h.m.InvocationsRejected.WithLabelValues(string(reason)).Inc()
	resp := &lattice.InvocationResponse{Error: err.Error()}
	data := map[string]any{"reason": reason, "error": err.Error(), "dest": map[string]string{"public_key": a.key}}
	if inv != nil {
		resp.InvocationID = inv.ID
		data["source"] = inv.Origin
		data["operation"] = inv.Operation
	}
	h.respond(m, resp)
	h.log.Debug("invocation rejected", "actor", a.key, "reason", reason, "err", err)
	if h.rejectEvents.Allow() {
		h.events.publish(lattice.EventInvocationRejected, data)
	}
}

func (h *Host) respond(m *nats.Msg, resp *lattice.InvocationResponse) {
	if err := rpc.Respond(m, resp); err != nil {
		h.log.Warn("send invocation response failed", "err", err)
	}
}

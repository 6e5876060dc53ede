package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// newServer is a's receive pipeline (rpc.Server): the host's limits and
// issuer policy, then a's own admission — its claims must name the calling
// provider's contract, and the policy service (when configured) must agree.
func (h *Host) newServer(a *actor) *rpc.Server {
	return &rpc.Server{
		Key: a.key, Issuers: h.issuers, MaxPayloadBytes: h.opts.MaxPayloadBytes, Timeout: h.opts.RPCTimeout, Conn: h.opts.RPC,
		Authorize: func(ctx context.Context, inv *lattice.Invocation) error { return h.authorize(ctx, a, inv) },
		Handle: func(ctx context.Context, inv *lattice.Invocation) (rpc.Result, error) {
			msg, instanceID, release, err := h.invokeActor(ctx, a, inv.Operation, inv.Msg)
			return rpc.Result{Msg: msg, InstanceID: instanceID, Done: release}, err
		},
		Observer: actorObserver{h: h, a: a},
		Log:      h.log,
	}
}

// subscribe starts receiving a's invocations on its queue subject. Whoever
// is told the actor started may call it at once, so the server knows the
// subscription before subscribe returns.
func (h *Host) subscribe(a *actor) (*nats.Subscription, error) {
	subject := lattice.RPCActor(h.opts.LatticePrefix, a.key)
	sub, err := h.opts.RPC.QueueSubscribe(subject, subject, func(m *nats.Msg) { h.dispatch(a, m) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	if err := h.opts.RPC.FlushTimeout(5 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return sub, nil
}

// dispatch hands an invocation to a serving goroutine (workers): nats.go
// runs one subscription's callbacks serially, and actors must serve
// concurrently. The pool's bounded queue limits how many wait.
func (h *Host) dispatch(a *actor, m *nats.Msg) {
	if !h.rpcGate.enter() {
		a.srv.Reply(m, &lattice.InvocationResponse{Error: lattice.NotRunning(a.key) + ": the host is stopping", ErrorCode: lattice.ErrorCodeUnavailable})
		return
	}
	if !a.gate.enter() {
		h.rpcGate.leave()
		a.srv.Reply(m, &lattice.InvocationResponse{Error: lattice.NotRunning(a.key) + ": it is stopping on this host", ErrorCode: lattice.ErrorCodeUnavailable})
		return
	}
	h.serving.run(delivery{a: a, m: m})
}

// serve answers one invocation dispatch admitted.
func (h *Host) serve(d delivery) {
	defer h.rpcGate.leave()
	defer d.a.gate.leave()
	d.a.srv.Serve(d.m)
}

// authorize admits an invocation that passed the issuer policy: a provider
// may call only an actor that claims its contract, and the policy service
// has the last word.
func (h *Host) authorize(ctx context.Context, a *actor, inv *lattice.Invocation) error {
	if c := inv.Origin.ContractID; c != "" && !a.claims().Wascap.HasCapability(c) {
		return lattice.Reject(lattice.ReasonCapabilityNotClaimed, "%s", c)
	}
	if h.policySvc != nil {
		tgt := policy.Target{PublicKey: a.key, Issuer: a.claims().Issuer, ContractID: inv.Target.ContractID, LinkName: inv.Target.LinkName}
		if _, err := h.policySvc.Decide(ctx, policy.ActionPerformInvocation, h.policySourceOf(inv.Origin), tgt); err != nil {
			return lattice.Reject(lattice.ReasonPolicyDenied, "%v", err)
		}
	}
	return nil
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
	// The instance runs one call at a time, so its call state is reused
	// rather than allocated per invocation.
	st := &in.st
	*st = callState{
		actor: a, op: operation, msg: msg, router: h,
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

// actorObserver counts an actor's invocations and reports its refusals:
// each one is counted by reason and emitted as a (rate-limited)
// invocation_rejected event.
type actorObserver struct {
	h *Host
	a *actor
}

func (o actorObserver) Served(inv *lattice.Invocation, err error, elapsed time.Duration) {
	o.a.calls.done(inv.Operation, err != nil, elapsed.Seconds())
}

func (o actorObserver) Rejected(inv *lattice.Invocation, err error) {
	h, a := o.h, o.a
	reason := lattice.ReasonOf(err)
	h.m.InvocationsRejected.WithLabelValues(string(reason)).Inc()
	data := map[string]any{"reason": reason, "error": err.Error(), "dest": map[string]string{"public_key": a.key}}
	if inv != nil {
		data["source"] = inv.Origin
		data["operation"] = inv.Operation
	}
	h.log.Debug("invocation rejected", "actor", a.key, "reason", reason, "err", err)
	if h.rejectEvents.Allow() {
		h.events.publish(lattice.EventInvocationRejected, data)
	}
}

// gate counts work in flight and, once closed, admits no more, so that
// waiting for the work to finish cannot race with new work arriving (a bare
// WaitGroup would: Add during Wait is a misuse).
type gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter admits one unit of work, or reports false once the gate is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// leave ends one unit of work admitted by enter.
func (g *gate) leave() { g.wg.Done() }

// closeAndWait admits nothing more and waits for the work already admitted.
func (g *gate) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// callMetrics are one actor's per-invocation metric children, looked up by
// their labels once instead of hashed on every call.
type callMetrics struct {
	m          *metrics.Metrics
	key        string
	queueDepth prometheus.Gauge
	queueWait  prometheus.Observer
	ops        sync.Map // operation label -> *opMetrics
	// names bounds the operation label: invokers choose operation names.
	names *metrics.Operations
}

type opMetrics struct {
	ok, failed prometheus.Counter
	duration   prometheus.Observer
}

// newCallMetrics also creates the actor's fixed-label counter series at 0,
// so that alerts see its first failure.
func newCallMetrics(m *metrics.Metrics, key string) *callMetrics {
	m.InitActor(key)
	return &callMetrics{
		m: m, key: key,
		queueDepth: m.ActorQueueDepth.WithLabelValues(key),
		queueWait:  m.ActorQueueWait.WithLabelValues(key),
		names:      metrics.NewOperations(metrics.MaxOperations),
	}
}

// op returns the children for one operation label of the actor.
func (c *callMetrics) op(operation string) *opMetrics {
	if o, ok := c.ops.Load(operation); ok {
		return o.(*opMetrics)
	}
	o, _ := c.ops.LoadOrStore(operation, &opMetrics{
		ok:       c.m.InvocationsTotal.WithLabelValues(c.key, operation, metrics.ResultOK),
		failed:   c.m.InvocationsTotal.WithLabelValues(c.key, operation, metrics.ResultError),
		duration: c.m.InvocationDuration.WithLabelValues(c.key, operation),
	})
	return o.(*opMetrics)
}

// done counts one finished invocation of operation.
func (c *callMetrics) done(operation string, failed bool, seconds float64) {
	o := c.op(c.names.Label(operation, !failed))
	if failed {
		o.failed.Inc()
	} else {
		o.ok.Inc()
	}
	o.duration.Observe(seconds)
}

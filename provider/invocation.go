package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// newServer is the receive pipeline (rpc.Server) of the invocations nc
// delivers: the issuer policy, then the provider's own admission (the
// calling actor must be linked), then the capability. nc is the connection
// the capability's calls out go on (Call.Conn).
func (p *Provider) newServer(nc *nats.Conn) *rpc.Server {
	return &rpc.Server{
		Key: p.hd.ProviderKey, Issuers: p.issuers, MaxPayloadBytes: p.cfg.MaxPayloadBytes, Timeout: p.timeout, Conn: nc,
		Authorize: func(_ context.Context, inv *lattice.Invocation) error {
			if _, linked := p.Link(inv.Origin.PublicKey); !linked {
				return p.notLinked(inv)
			}
			return nil
		},
		Handle: func(ctx context.Context, inv *lattice.Invocation) (rpc.Result, error) {
			// Looked up again: a link deleted since Authorize fails the call.
			ld, linked := p.Link(inv.Origin.PublicKey)
			if !linked {
				return rpc.Result{}, p.notLinked(inv)
			}
			out, err := p.c.Handle(ctx, Call{Operation: inv.Operation, Payload: inv.Msg, Actor: inv.Origin.PublicKey, Link: ld, InvocationID: inv.ID, Conn: nc})
			return rpc.Result{Msg: out}, err
		},
		Observer: providerObserver{p},
		Log:      p.log,
	}
}

// notLinked refuses an actor the provider has no link with.
func (p *Provider) notLinked(inv *lattice.Invocation) error {
	return fmt.Errorf("Invocation not authorized: actor %s is not linked to provider %s (%s, link name %q)",
		inv.Origin.PublicKey, p.hd.ProviderKey, p.c.Contract(), p.hd.LinkName)
}

// handleInvocation runs on the subscription's goroutine: it waits for a free
// slot (back-pressure: further invocations stay queued in the subscription)
// and serves the invocation on its own goroutine.
//
// s is the session whose connection delivered m, and srv its pipeline: s
// stays open until the reply is sent, since only that connection may
// publish the reply.
func (p *Provider) handleInvocation(s *session, srv *rpc.Server, m *nats.Msg) {
	select {
	case p.sem <- struct{}{}:
	case <-p.abandon:
		srv.Reply(m, &lattice.InvocationResponse{Error: "provider is shutting down"})
		return
	}
	if !s.acquire() {
		// Its connection is being retired and still delivered this one:
		// the reply can still go out on it (it closes after the drain).
		<-p.sem
		srv.Reply(m, &lattice.InvocationResponse{Error: "provider is moving to a new lattice connection; retry"})
		return
	}
	p.inflight.Add(1)
	go func() {
		defer func() {
			<-p.sem
			s.release()
			p.inflight.Done()
		}()
		srv.Serve(m)
	}()
}

// providerObserver counts the provider's invocations and logs its refusals
// (rate-limited: refusals come at an attacker's pace).
type providerObserver struct{ p *Provider }

func (o providerObserver) Served(inv *lattice.Invocation, err error, _ time.Duration) {
	p := o.p
	p.metrics.Invocation(inv.Operation, err == nil)
	if err != nil {
		p.log.Debug("invocation failed", "actor", inv.Origin.PublicKey, "operation", inv.Operation, "err", err)
	}
}

func (o providerObserver) Rejected(inv *lattice.Invocation, err error) {
	p := o.p
	reason := string(lattice.ReasonOf(err))
	if reason == "" {
		reason = ReasonNotLinked // the one refusal that is not a policy rejection
	}
	p.metrics.Rejected(reason)
	if !p.rejectLogs.Allow() {
		return
	}
	attrs := []any{"reason", reason, "err", err}
	if inv != nil {
		attrs = append(attrs, "origin", inv.Origin.PublicKey, "operation", inv.Operation)
	}
	p.log.Warn("invocation rejected", attrs...)
}

// subscribeRPC subscribes s to the provider's invocations.
func (p *Provider) subscribeRPC(s *session) error {
	srv := p.newServer(s.nc)
	sub, err := s.nc.QueueSubscribe(lattice.RPCProvider(p.hd.LatticeRPCPrefix, p.hd.ProviderKey, p.hd.LinkName), QueueGroup,
		func(m *nats.Msg) { p.handleInvocation(s, srv, m) })
	if err != nil {
		return err
	}
	s.rpcSub = sub
	return nil
}

// Link returns the link of actor, if it is linked.
func (p *Provider) Link(actor string) (lattice.LinkDefinition, bool) {
	p.linksMu.RLock()
	defer p.linksMu.RUnlock()
	ld, ok := p.links[actor]
	return ld, ok
}

// ErrNoSigner means HostData carried no invocation_seed, so the provider
// cannot call actors.
var ErrNoSigner = errors.New("provider: no invocation_seed in host data: this provider cannot invoke actors")

// Invoke calls operation on actorKey, signed with HostData's
// invocation_seed, with origin = this provider instance. Without a deadline
// on ctx, the host's default RPC timeout applies. Errors are rpc.Invoke's
// (rpc.ErrNoResponders when the actor runs nowhere).
func (p *Provider) Invoke(ctx context.Context, actorKey, operation string, payload []byte) ([]byte, error) {
	p.signerMu.RLock()
	signer := p.signer
	p.signerMu.RUnlock()
	if signer.Key == nil {
		return nil, ErrNoSigner
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	// The call keeps its connection open until the reply is in, even if a
	// renewal moves the provider to a new one meanwhile.
	sess, err := p.acquireSession()
	if err != nil {
		return nil, err
	}
	defer sess.release()
	return rpc.InvokeAs(ctx, sess.nc, signer, p.hd.HostID, p.self, lattice.ActorEntity(actorKey),
		lattice.RPCActor(p.hd.LatticeRPCPrefix, actorKey), operation, payload)
}

// session is one lattice connection and the subscriptions made on it. A
// renewal replaces the session make-before-break: the new connection
// subscribes first, then the old one stops taking invocations, finishes the
// ones it holds (their replies must leave on the connection that received
// them: allow_responses is per connection) and closes.
type session struct {
	nc     *nats.Conn
	perms  *jwt.Permissions     // what the JWT it connected with grants; nil: unknown
	subs   []*nats.Subscription // everything but rpc
	rpcSub *nats.Subscription

	// Link definitions received on nc, in order (links.go, linkFeed). While
	// a handover makes its successor next, both sessions receive them;
	// linksDone is closed once nc receives no more of them and next has
	// received every one nc did meanwhile.
	links       chan *nats.Msg
	handingOver atomic.Bool
	next        atomic.Pointer[session]
	linksDone   chan struct{}

	mu      sync.Mutex
	busy    int  // invocations and outbound calls using nc
	retired bool // no new users; idle is closed when busy reaches 0
	idle    chan struct{}
}

func newSession(nc *nats.Conn, perms *jwt.Permissions) *session {
	return &session{nc: nc, perms: perms, idle: make(chan struct{}),
		links: make(chan *nats.Msg, linkBuffer), linksDone: make(chan struct{})}
}

// acquire counts one user of the connection; false once it is retired.
func (s *session) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return false
	}
	s.busy++
	return true
}

func (s *session) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy--
	if s.retired && s.busy == 0 {
		close(s.idle)
	}
}

// retire refuses new users and returns a channel closed when the last one left.
func (s *session) retire() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.retired {
		s.retired = true
		if s.busy == 0 {
			close(s.idle)
		}
	}
	return s.idle
}

// acquireSession returns the current session, counted as used; release it.
func (p *Provider) acquireSession() (*session, error) {
	for {
		s := p.sess.Load()
		if s == nil {
			return nil, errors.New("provider: not connected to the lattice")
		}
		if s.acquire() {
			return s, nil
		}
		// Retired between the load and the acquire: its successor is
		// already stored (a session is retired only after it is replaced).
		if p.sess.Load() == s {
			return nil, errors.New("provider: lattice connection closed")
		}
	}
}

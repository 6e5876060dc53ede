package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// newServer is the receive pipeline (rpc.Server) of the invocations nc
// delivers: the issuer policy, then the provider's own admission (the
// calling actor must be linked), then the capability. nc is the connection
// the capability's calls out go on (Call.Conn).
func (p *Provider) newServer(nc *nats.Conn) *rpc.Server {
	limit := p.cfg.MaxPayloadBytes
	if limit <= 0 {
		limit = int(nc.MaxPayload())
	}
	return &rpc.Server{
		Key: p.hd.ProviderKey, Issuers: p.issuers, MaxPayloadBytes: limit, Timeout: p.timeout,
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

package provider

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// handleInvocation runs on the subscription's goroutine: it waits for a free
// slot (back-pressure: further invocations stay queued in the subscription)
// and serves the invocation on its own goroutine.
//
// s is the session whose connection delivered m: it stays open until the
// reply is sent, since only that connection may publish the reply.
func (p *Provider) handleInvocation(s *session, m *nats.Msg) {
	select {
	case p.sem <- struct{}{}:
	case <-p.abandon:
		p.respond(m, &lattice.InvocationResponse{Error: "provider is shutting down"})
		return
	}
	if !s.acquire() {
		// Its connection is being retired and still delivered this one:
		// the reply can still go out on it (it closes after the drain).
		<-p.sem
		p.respond(m, &lattice.InvocationResponse{Error: "provider is moving to a new lattice connection; retry"})
		return
	}
	p.inflight.Add(1)
	go func() {
		defer func() {
			<-p.sem
			s.release()
			p.inflight.Done()
		}()
		p.serveInvocation(m, s.nc)
	}()
}

// serveInvocation: decode → issuer policy (signature, hash, issuer, target,
// replay) → origin actor linked → capability → reply. Refusals never reach
// the capability.
func (p *Provider) serveInvocation(m *nats.Msg, nc *nats.Conn) {
	inv, err := lattice.DecodeInvocation(m.Data)
	if err != nil {
		p.reject(m, nil, lattice.Reject(lattice.ReasonMalformed, "%v", err))
		return
	}
	if _, err := p.issuers.Check(inv, p.hd.ProviderKey); err != nil {
		p.reject(m, inv, err)
		return
	}
	ld, linked := p.Link(inv.Origin.PublicKey)
	if !linked {
		p.reject(m, inv, fmt.Errorf("Invocation not authorized: actor %s is not linked to provider %s (%s, link name %q)",
			inv.Origin.PublicKey, p.hd.ProviderKey, p.c.Contract(), p.hd.LinkName))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	resp := &lattice.InvocationResponse{InvocationID: inv.ID}
	ctx, span := telemetry.StartInvocation(ctx, inv, p.hd.ProviderKey) // a no-op while tracing is off
	defer span.EndResponse(resp)
	out, err := p.c.Handle(ctx, Call{Operation: inv.Operation, Payload: inv.Msg, Actor: inv.Origin.PublicKey, Link: ld, InvocationID: inv.ID, Conn: nc})
	p.m.ProviderInvocations.WithLabelValues(p.ops.Label(inv.Operation, err == nil), metrics.Result(err)).Inc()
	if err != nil {
		resp.Error = err.Error()
		p.log.Debug("invocation failed", "actor", inv.Origin.PublicKey, "operation", inv.Operation, "err", err)
	} else {
		resp.Msg, resp.ContentLength = out, uint64(len(out))
	}
	p.respond(m, resp)
}

// reject answers a refused invocation with its reason.
func (p *Provider) reject(m *nats.Msg, inv *lattice.Invocation, err error) {
	resp := &lattice.InvocationResponse{Error: err.Error()}
	reason := string(lattice.ReasonOf(err))
	if reason == "" {
		reason = ReasonNotLinked // the one refusal that is not a policy rejection
	}
	p.m.InvocationsRejected.WithLabelValues(reason).Inc()
	attrs := []any{"reason", reason, "err", err}
	if inv != nil {
		resp.InvocationID = inv.ID
		attrs = append(attrs, "origin", inv.Origin.PublicKey, "operation", inv.Operation)
	}
	if p.rejectLogs.Allow() {
		p.log.Warn("invocation rejected", attrs...)
	}
	p.respond(m, resp)
}

func (p *Provider) respond(m *nats.Msg, resp *lattice.InvocationResponse) {
	if err := rpc.Respond(m, resp); err != nil {
		p.log.Warn("send invocation response failed", "err", err)
	}
}

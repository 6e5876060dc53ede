package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

// What an interruption of the supervisor's own NATS connection means.
// With an external server it is a real network connection: a NATS restart,
// a network blip, or the server cutting it (a kick, a slow consumer) takes
// it down for a while, and nats.go reconnects. Meanwhile the supervisor's
// requests fail and the messages sent to its subscriptions are gone; so are
// those a subscription that falls behind drops (nats.ErrSlowConsumer). The
// supervisor builds two things from messages: each key-value provider's
// buckets (from link changes, kvgrants.go) and the actors its host runs
// (from lattice events, actors.go). Both are read again from the lattice
// when messages were lost.

// natsInterrupted reports whether the supervisor's connection is down, or
// was restored after it had counted reconnects restorations: a request that
// failed meanwhile may never have left, or its reply never come back.
func (s *Supervisor) natsInterrupted(reconnects uint64) bool {
	return s.nc.Status() != nats.CONNECTED || s.nc.Stats().Reconnects != reconnects
}

// natsRestored is called (by nats.go, on its callback goroutine) each time
// the supervisor's connection is restored.
func (s *Supervisor) natsRestored(*nats.Conn) {
	s.linkChangesMissed()
	s.lostEvents()
}

// natsAsyncError is called (by nats.go, on its callback goroutine) with
// each asynchronous error of the supervisor's connection; Connect logs it.
// A subscription that fell behind had messages dropped.
func (s *Supervisor) natsAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if sub == nil || !errors.Is(err, nats.ErrSlowConsumer) {
		return
	}
	switch sub.Subject {
	case lattice.RPCLinkdefPutOrDel(s.prefix, "*", "*"):
		s.linkChangesMissed()
	case lattice.Events(s.prefix):
		s.lostEvents()
	}
}

// lostEvents wakes followMissedEvents.
func (s *Supervisor) lostEvents() {
	select {
	case s.eventsMissed <- struct{}{}:
	default: // one is pending already
	}
}

// followMissedEvents reads the host's inventory again each time lattice
// events were lost, until ctx ends, so that a host crash restarts the
// actors that ran, not those the events that got through describe.
func (s *Supervisor) followMissedEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.eventsMissed:
		}
		s.resyncActors(ctx)
	}
}

// resyncActors replaces what the actor tracker holds by the host's
// inventory, with the events that came while it was asked for folded in
// again over it. An inventory the host cannot give yet (it may be
// restarting) is asked for again, a few times.
func (s *Supervisor) resyncActors(ctx context.Context) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		s.actors.record()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		inv, err := s.control.Inventory(rctx, s.hostID)
		cancel()
		if err != nil {
			s.actors.stopRecording()
		} else if s.actors.resync(inv) {
			s.log.Info("the actors the host runs were read again from its inventory: lattice events were lost", "actors", len(inv.Actors))
			return
		} else {
			err = errors.New("too many actor events came while the inventory was read")
		}
		if attempt == attempts {
			s.log.Warn("could not read the host's actors again after lattice events were lost; "+
				"a host crash may restart other actors than those it ran", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

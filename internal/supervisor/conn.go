package supervisor

import "github.com/nats-io/nats.go"

// What an interruption of the supervisor's own NATS connection means.
// With an external server it is a real network connection: a NATS restart,
// a network blip, or the server cutting it (a slow consumer, a kick) takes
// it down for a while, and nats.go reconnects. Meanwhile the supervisor's
// requests fail and the messages sent to its subscriptions are gone.

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
}

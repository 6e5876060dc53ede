package host

import (
	"time"

	"github.com/nats-io/nats.go"
)

// workerIdle is how long a serving goroutine waits for its next invocation
// before it exits: long enough to span the gaps of steady traffic, short
// enough that the goroutines a burst needed do not linger.
const workerIdle = 5 * time.Second

// delivery is one invocation on its way to a serving goroutine.
type delivery struct {
	a *actor
	m *nats.Msg
}

// workers are the goroutines that serve invocations. nats.go runs one
// subscription's callbacks one after another, so each invocation is served
// off the callback; a goroutine that has served one waits for the next
// instead of exiting, because a fresh goroutine per invocation grows its
// stack anew through decode, signature check and the wasm call every time
// (the copies showed in the host's profile). Invocations are handed to a
// waiting goroutine, or to a new one when none waits, so they never queue
// here: the actor's instance pool is the one queue, and its limit answers
// busy.
type workers struct {
	work  chan delivery // unbuffered: a send succeeds only when a worker waits
	stop  <-chan struct{}
	serve func(delivery)
}

func newWorkers(stop <-chan struct{}, serve func(delivery)) *workers {
	return &workers{work: make(chan delivery), stop: stop, serve: serve}
}

// run serves d on a waiting worker, or on a new one.
func (w *workers) run(d delivery) {
	select {
	case w.work <- d:
	default:
		go w.loop(d)
	}
}

// loop serves d, then whatever is handed to it, until it has waited
// workerIdle for nothing or the host's life ends. Its owner is the Host:
// the work it runs is counted by the host's gates, which shutdown waits
// for.
func (w *workers) loop(d delivery) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		w.serve(d)
		idle.Reset(workerIdle)
		select {
		case d = <-w.work:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

package child

import (
	"math/rand/v2"
	"time"

	"github.com/latticed/latticed/internal/restart"
)

// restartTracker applies a restart.Policy to one child's history. It is not
// safe for concurrent use; its owner serialises calls.
type restartTracker struct {
	policy  restart.Policy
	attempt int         // crashes since the last stable run
	crashes []time.Time // crash times within the window
	jitter  func() float64
}

func newRestartTracker(p restart.Policy) *restartTracker {
	return &restartTracker{policy: p.WithDefaults(), jitter: rand.Float64}
}

// crashed records a crash at now after a run of uptime and returns the
// delay before the next start, or crashLoop when the child must not be
// restarted.
func (t *restartTracker) crashed(now time.Time, uptime time.Duration) (delay time.Duration, crashLoop bool) {
	if uptime >= t.policy.Stable {
		t.attempt = 0
	}
	keep := t.crashes[:0]
	for _, c := range t.crashes {
		if now.Sub(c) < t.policy.CrashLoopWindow {
			keep = append(keep, c)
		}
	}
	t.crashes = append(keep, now)
	if len(t.crashes) >= t.policy.CrashLoopCount {
		return 0, true
	}
	d := t.policy.Backoff
	for i := 0; i < t.attempt && d < t.policy.BackoffMax; i++ {
		d *= 2
	}
	t.attempt++
	// ±20% jitter, so children that crashed together do not restart in
	// lockstep; a doubling still always grows the delay.
	d = time.Duration(float64(d) * (0.8 + 0.4*t.jitter()))
	return min(d, t.policy.BackoffMax), false
}

// reset forgets the history (after an operator asked to start a failed child again).
func (t *restartTracker) reset() {
	t.attempt = 0
	t.crashes = nil
}

package child

import (
	"math/rand/v2"
	"time"
)

// RestartPolicy says when a crashed child is started again.
type RestartPolicy struct {
	Backoff    time.Duration // delay after the first crash; doubles per crash
	BackoffMax time.Duration // delays never exceed this
	Stable     time.Duration // a run this long resets the delay to Backoff
	// CrashLoopCount crashes within CrashLoopWindow mark the child failed;
	// it is not restarted until told.
	CrashLoopCount  int
	CrashLoopWindow time.Duration
}

// The defaults of a RestartPolicy, taken by its zero fields. latticed's
// settings (LATTICED_RESTART_*, LATTICED_CRASH_LOOP_*) default to these.
const (
	DefaultBackoff         = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultStable          = time.Minute
	DefaultCrashLoopCount  = 5
	DefaultCrashLoopWindow = 2 * time.Minute
)

func (p RestartPolicy) withDefaults() RestartPolicy {
	if p.Backoff <= 0 {
		p.Backoff = DefaultBackoff
	}
	if p.BackoffMax < p.Backoff {
		p.BackoffMax = max(p.Backoff, DefaultBackoffMax)
	}
	if p.Stable <= 0 {
		p.Stable = DefaultStable
	}
	if p.CrashLoopCount <= 0 {
		p.CrashLoopCount = DefaultCrashLoopCount
	}
	if p.CrashLoopWindow <= 0 {
		p.CrashLoopWindow = DefaultCrashLoopWindow
	}
	return p
}

// restartTracker applies a RestartPolicy to one child's history. It is not
// safe for concurrent use; its owner serialises calls.
type restartTracker struct {
	policy  RestartPolicy
	attempt int         // crashes since the last stable run
	crashes []time.Time // crash times within the window
	jitter  func() float64
}

func newRestartTracker(p RestartPolicy) *restartTracker {
	return &restartTracker{policy: p.withDefaults(), jitter: rand.Float64}
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

// Package restart holds the value that says when a crashed child process is
// started again, and its defaults. It is a leaf (standard library only) so
// that config can resolve a policy and child can apply one without config
// depending on the process machinery (docs/architecture.md, "Settings").
package restart

import "time"

// Policy says when a crashed child is started again.
type Policy struct {
	Backoff    time.Duration // delay after the first crash; doubles per crash
	BackoffMax time.Duration // delays never exceed this
	Stable     time.Duration // a run this long resets the delay to Backoff
	// CrashLoopCount crashes within CrashLoopWindow mark the child failed;
	// it is not restarted until told.
	CrashLoopCount  int
	CrashLoopWindow time.Duration
}

// The defaults of a Policy, taken by its zero fields. latticed's settings
// (LATTICED_RESTART_*, LATTICED_CRASH_LOOP_*) default to these.
const (
	DefaultBackoff         = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultStable          = time.Minute
	DefaultCrashLoopCount  = 5
	DefaultCrashLoopWindow = 2 * time.Minute
)

// WithDefaults returns p with the default for each field left zero or
// negative, and BackoffMax raised to at least Backoff.
func (p Policy) WithDefaults() Policy {
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

package child

import (
	"testing"
	"time"

	"github.com/latticed/latticed/internal/restart"
)

func TestRestartTrackerBacksOffResetsAndDetectsCrashLoops(t *testing.T) {
	p := restart.Policy{Backoff: 100 * time.Millisecond, BackoffMax: time.Second, Stable: time.Minute, CrashLoopCount: 4, CrashLoopWindow: time.Minute}
	type crash struct {
		after     time.Duration // since the previous crash
		uptime    time.Duration
		delay     time.Duration // with jitter fixed at its midpoint (factor 1.0)
		crashLoop bool
	}
	for _, tc := range []struct {
		name    string
		crashes []crash
	}{
		{"doubles per crash, then a crash loop", []crash{
			{0, time.Second, 100 * time.Millisecond, false},
			{time.Second, time.Second, 200 * time.Millisecond, false},
			{time.Second, time.Second, 400 * time.Millisecond, false},
			{time.Second, time.Second, 0, true},
		}},
		{"capped at the maximum", []crash{
			{0, time.Second, 100 * time.Millisecond, false},
			{2 * time.Minute, time.Second, 200 * time.Millisecond, false},
			{2 * time.Minute, time.Second, 400 * time.Millisecond, false},
			{2 * time.Minute, time.Second, 800 * time.Millisecond, false},
			{2 * time.Minute, time.Second, time.Second, false},
			{2 * time.Minute, time.Second, time.Second, false},
		}},
		{"a stable run resets the delay", []crash{
			{0, time.Second, 100 * time.Millisecond, false},
			{2 * time.Minute, time.Second, 200 * time.Millisecond, false},
			{2 * time.Minute, 2 * time.Minute, 100 * time.Millisecond, false},
		}},
		{"crashes outside the window do not count", []crash{
			{0, time.Second, 100 * time.Millisecond, false},
			{61 * time.Second, time.Second, 200 * time.Millisecond, false},
			{61 * time.Second, time.Second, 400 * time.Millisecond, false},
			{61 * time.Second, time.Second, 800 * time.Millisecond, false},
			{61 * time.Second, time.Second, time.Second, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newRestartTracker(p)
			tr.jitter = func() float64 { return 0.5 }
			now := time.Unix(1000, 0)
			for i, c := range tc.crashes {
				now = now.Add(c.after)
				d, loop := tr.crashed(now, c.uptime)
				if d != c.delay || loop != c.crashLoop {
					t.Fatalf("crash %d: delay %v crash loop %v, want %v %v", i+1, d, loop, c.delay, c.crashLoop)
				}
			}
		})
	}
}

func TestRestartJitterStaysWithinTwentyPercent(t *testing.T) {
	for _, j := range []float64{0, 0.999} {
		tr := newRestartTracker(restart.Policy{Backoff: time.Second, BackoffMax: time.Hour})
		tr.jitter = func() float64 { return j }
		d, _ := tr.crashed(time.Now(), 0)
		if d < 800*time.Millisecond || d >= 1200*time.Millisecond {
			t.Errorf("jitter %v gave %v", j, d)
		}
	}
}

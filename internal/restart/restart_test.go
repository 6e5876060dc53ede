package restart

import (
	"testing"
	"time"
)

func TestWithDefaults(t *testing.T) {
	full := Policy{Backoff: DefaultBackoff, BackoffMax: DefaultBackoffMax, Stable: DefaultStable,
		CrashLoopCount: DefaultCrashLoopCount, CrashLoopWindow: DefaultCrashLoopWindow}
	set := Policy{Backoff: time.Second, BackoffMax: time.Minute, Stable: time.Hour, CrashLoopCount: 2, CrashLoopWindow: time.Minute}
	for _, tc := range []struct {
		name    string
		in, out Policy
	}{
		{"zero takes every default", Policy{}, full},
		{"negative takes the default", Policy{Backoff: -1, Stable: -1, CrashLoopCount: -1, CrashLoopWindow: -1}, full},
		{"set values stay", set, set},
		{"max below the first delay is raised", Policy{Backoff: time.Hour, BackoffMax: time.Second},
			Policy{Backoff: time.Hour, BackoffMax: time.Hour, Stable: DefaultStable,
				CrashLoopCount: DefaultCrashLoopCount, CrashLoopWindow: DefaultCrashLoopWindow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.WithDefaults(); got != tc.out {
				t.Errorf("%+v.WithDefaults() = %+v, want %+v", tc.in, got, tc.out)
			}
		})
	}
}

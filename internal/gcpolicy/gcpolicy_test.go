package gcpolicy_test

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/gcpolicy"
)

func TestPercent(t *testing.T) {
	const h = 32 << 20
	for _, tc := range []struct {
		name    string
		scanned uint64
		want    int
	}{
		{"a quarter of the headroom", h / 4, 400},
		{"less than the runtime's minimum heap: as if that much", 1 << 20, 800},
		{"nothing scanned yet: likewise", 0, 800},
		{"as much as the headroom", h, 100},
		{"more than the headroom: never below the default", 4 * h, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcpolicy.Percent(tc.scanned, h); got != tc.want {
				t.Errorf("Percent(%d, %d) = %d, want %d", tc.scanned, h, got, tc.want)
			}
		})
	}
}

// gcState is what the runtime says after a collection.
type gcState struct{ percent, live, scanned, goal uint64 }

func readGC() gcState {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return gcState{percent: s[0].Value.Uint64(), live: s[1].Value.Uint64(),
		scanned: s[1].Value.Uint64() + s[2].Value.Uint64() + s[3].Value.Uint64(), goal: s[4].Value.Uint64()}
}

// collectUntil runs collections until ok holds of the state after one (the
// policy adjusts on the runtime's cleanup goroutine, after a collection).
func collectUntil(t *testing.T, what string, ok func(gcState) bool) gcState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the cleanup runs after the collection
		runtime.GC()                      // a goal computed with the new percent
		st := readGC()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s; last state %+v", what, st)
		}
	}
}

// The promise: while the heap is small the next collection comes after
// about headroom bytes more (not after as many bytes as the heap holds),
// and once the heap outgrows the headroom the collector is the default
// one, so memory above GOGC=100's is bounded by the headroom; when the
// process's context ends, the default comes back.
func TestStartBoundsTheHeapGoal(t *testing.T) {
	const headroom = 64 << 20
	t.Cleanup(func() { debug.SetGCPercent(100) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !gcpolicy.Start(ctx, headroom, func(string) (string, bool) { return "", false }) {
		t.Fatal("Start without GOGC did not start")
	}

	small := collectUntil(t, "raised percent for a small heap", func(s gcState) bool { return s.percent > 100 })
	if small.scanned >= headroom/4 {
		t.Fatalf("test process scans %d bytes: too many for this test's headroom", small.scanned)
	}
	// The goal is at least the headroom and at most about the live heap
	// plus the headroom (an integer percent; the runtime's minimum heap).
	if lo, hi := uint64(headroom)*9/10, small.live+headroom*11/10; small.goal < lo || small.goal > hi {
		t.Errorf("heap goal %d with live %d: want within [%d, %d]", small.goal, small.live, lo, hi)
	}

	big := make([][]byte, 0, 128)
	for range 2 * headroom / (1 << 20) {
		big = append(big, make([]byte, 1<<20))
	}
	large := collectUntil(t, "default percent for a heap above the headroom", func(s gcState) bool { return s.percent == 100 })
	if large.goal > large.live+large.scanned*11/10 {
		t.Errorf("heap goal %d with live %d, scanned %d: more than GOGC=100 allows", large.goal, large.live, large.scanned)
	}
	runtime.KeepAlive(big)
	big = nil

	cancel()
	collectUntil(t, "default percent after the context ends", func(s gcState) bool { return s.percent == 100 })
	// And it stays there: the policy is gone, so a small heap keeps it.
	if st := collectUntil(t, "", func(gcState) bool { return true }); st.percent != 100 {
		t.Errorf("percent %d after the context ended, want 100", st.percent)
	}
}

func TestStartLeavesTheOperatorsChoice(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	for _, tc := range []struct {
		name     string
		env      map[string]string
		headroom uint64
	}{
		{"GOGC set", map[string]string{"GOGC": "50"}, 32 << 20},
		{"GOGC=off", map[string]string{"GOGC": "off"}, 32 << 20},
		{"no headroom", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			if gcpolicy.Start(ctx, tc.headroom, lookup) {
				t.Fatal("Start started")
			}
			if st := collectUntil(t, "", func(gcState) bool { return true }); st.percent != 100 {
				t.Errorf("percent %d, want the process's 100 untouched", st.percent)
			}
		})
	}
}

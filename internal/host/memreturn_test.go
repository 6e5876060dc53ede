package host

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// rssBytes is this process's resident set (VmRSS): the host runs in the test
// process, so this is the host's RSS plus the test's own, which stays put
// while an actor scales.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("RSS needs /proc (Linux): %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// scaleInstances is how many Go echo instances the memory test runs: the
// issue's 64 by default; LATTICED_TEST_SCALE_INSTANCES lowers it on a slow
// machine (the assertion stays the same).
func scaleInstances(t *testing.T) int {
	t.Helper()
	n := 64
	if v := os.Getenv("LATTICED_TEST_SCALE_INSTANCES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 4 || n > MaxInstances {
			t.Fatalf("LATTICED_TEST_SCALE_INSTANCES=%q: want a count from 4 to %d", v, MaxInstances)
		}
	}
	return n
}

// Instances scaled away or stopped give their memory back to the system
// promptly (issue 24.3: RSS went 54 → 502 MiB and stayed there 30 s after
// scaling back to 1). The test never collects garbage itself after the
// baseline: what comes back is what the host returns on its own.
func TestScaleDownAndStopReturnMemory(t *testing.T) {
	n := scaleInstances(t)
	f := newFixture(t)
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.h.WaitCompiled(ctx, echo.Key); err != nil {
		t.Fatal(err)
	}
	// scaleUp runs n instances and returns the RSS then. A Go instance's
	// runtime initialises its heap in linear memory when it starts, so no
	// call is needed to make its memory resident.
	scaleUp := func(t *testing.T) int64 {
		t.Helper()
		if err := f.h.ScaleActor(ctx, lattice.ScaleActorCommand{ActorID: echo.Key, Count: n}); err != nil {
			t.Fatal(err)
		}
		if live, _ := actorOf(f.h, echo.Key).pool.stats(); live != n {
			t.Fatalf("%d instances after scaling to %d", live, n)
		}
		return rssBytes(t)
	}
	// waitReturned polls RSS until at least 3/4 of what the extra instances
	// took is back. The host returns it within about a second; 30 s is the
	// issue's goal and leaves a loaded 2-core machine ample margin.
	waitReturned := func(t *testing.T, what string, base, up int64) {
		t.Helper()
		extra := up - base
		// A Go echo instance's pages, about 1.8 MiB (RATIONALE.md, "Each
		// instance's linear memory is its own mapping"); far less would
		// mean the instances did not start.
		if minExtra := int64(n) * (1 << 20); extra < minExtra {
			t.Fatalf("%d instances added only %.1f MiB of RSS (%.1f → %.1f MiB), want at least 1 MiB each: the test would measure nothing",
				n, mib(extra), mib(base), mib(up))
		}
		start := time.Now()
		var rss int64
		for time.Since(start) < 30*time.Second {
			if rss = rssBytes(t); up-rss >= extra*3/4 {
				t.Logf("%s: RSS %.1f MiB with 1 instance, %.1f MiB with %d, %.1f MiB %s later (%.0f%% of the extra returned)",
					what, mib(base), mib(up), n, mib(rss), time.Since(start).Round(10*time.Millisecond), 100*float64(up-rss)/float64(extra))
				return
			}
			time.Sleep(100 * time.Millisecond) // polling /proc
		}
		t.Fatalf("%s: RSS %.1f MiB with 1 instance, %.1f MiB with %d, still %.1f MiB 30s later: %.0f%% of the extra returned, want ≥ 75%%",
			what, mib(base), mib(up), n, mib(rss), 100*float64(up-rss)/float64(extra))
	}

	debug.FreeOSMemory() // the baseline: one compiled instance, nothing left over from the start
	base := rssBytes(t)

	up := scaleUp(t)
	if err := f.h.ScaleActor(ctx, lattice.ScaleActorCommand{ActorID: echo.Key, Count: 1}); err != nil {
		t.Fatal(err)
	}
	waitReturned(t, fmt.Sprintf("scale %d → 1", n), base, up)
	mustEcho(t, f, echo.Key)

	up = scaleUp(t)
	if err := f.h.StopActor(ctx, echo.Key, 0, nil); err != nil {
		t.Fatal(err)
	}
	waitReturned(t, fmt.Sprintf("stop at %d", n), base, up)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

package supervisor

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/lattice"
)

// soakDuration is LATTICED_SOAK (e.g. "2m", what `make soak` sets), else a
// short run that `make test` can afford.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("LATTICED_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LATTICED_SOAK=%q: %v", v, err)
		}
		return d
	}
	return 8 * time.Second
}

// A node under steady load while its actor is scaled up and down and a
// provider is restarted again and again: no invocation fails, and the host's
// memory and the supervisor's goroutines stay flat.
func TestSoakSteadyLoadWithScalingAndProviderRestarts(t *testing.T) {
	d := soakDuration(t)
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	ctx := context.Background()
	for i := 0; i < 50; i++ { // warm up instances, connections and caches
		if _, err := n.invokeEcho(ctx, echo.Key, []byte("warm")); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	goroutinesStart, rssStart := runtime.NumGoroutine(), n.hostRSS()

	stop := make(chan struct{})
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := n.invokeEcho(cctx, echo.Key, []byte("soak"))
				cancel()
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	deadline := time.Now().Add(d)
	scales, restarts := 0, 0
	for count := 2; time.Now().Before(deadline); count = 3 - count { // 2, 1, 2, 1…
		var ack lattice.Ack
		n.ctlRequest(n.s.ctl.Cmd(n.s.HostID(), lattice.CmdScaleActor), lattice.ScaleActorCommand{ActorID: echo.Key, Count: count}, &ack)
		if !ack.Accepted {
			t.Fatalf("scale to %d: %s", count, ack.Error)
		}
		scales++
		if scales%2 == 0 {
			if err := n.admin.Restart(ctx, "provider", &lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
				t.Fatalf("restart provider: %v", err)
			}
			n.waitProviderState(ref, "default", child.StateRunning)
			restarts++
		}
		if scales%20 == 0 {
			t.Logf("after %d scale changes: host RSS %d KiB, heap in use %.0f KiB, %d invocations", scales, n.hostRSS(), n.hostHeapKiB(), calls.Load())
		}
		time.Sleep(time.Second) // the soak's pace between operations, not synchronisation
	}
	close(stop)
	wg.Wait()

	goroutinesEnd, rssEnd := runtime.NumGoroutine(), n.hostRSS()
	t.Logf("soak %s: %d invocations, %d failed, %d scale changes, %d provider restarts; supervisor goroutines %d → %d; host RSS %d → %d KiB",
		d, calls.Load(), failures.Load(), scales, restarts, goroutinesStart, goroutinesEnd, rssStart, rssEnd)
	if failures.Load() != 0 {
		t.Fatalf("%d of %d invocations failed, first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	if restarts == 0 || calls.Load() == 0 {
		t.Fatal("the soak did nothing")
	}
	if goroutinesEnd > goroutinesStart+20 {
		t.Fatalf("supervisor goroutines grew from %d to %d", goroutinesStart, goroutinesEnd)
	}
	// Every scale-up allocates a fresh Go instance (~6 MiB of linear memory)
	// and every scale-down leaves one to the garbage collector, which returns
	// memory to the OS lazily: RSS rises for a while under this churn (the
	// logged heap in use rises and falls). This bound catches a runaway leak,
	// not the collector's lag; the figures are logged for the record.
	if rssStart > 0 && rssEnd > rssStart+512*1024 {
		t.Fatalf("host RSS grew from %d KiB to %d KiB", rssStart, rssEnd)
	}
}

// hostRSS is the host child's resident memory in KiB (0 if unknown).
func (n *node) hostRSS() int {
	pid := n.s.Status().Host.PID
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}

// hostHeapKiB is the host's Go heap in use, from the merged /metrics.
func (n *node) hostHeapKiB() float64 {
	sc, _ := n.scrape()
	v, _ := sc.value("go_memstats_heap_inuse_bytes", map[string]string{"component": "host"})
	return v / 1024
}

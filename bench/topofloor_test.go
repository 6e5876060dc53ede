package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary be the floors' children, as the bench binary
// is: startBenchChild runs os.Executable() with a hidden subcommand.
func TestMain(m *testing.M) {
	runBenchChild()
	os.Exit(m.Run())
}

// TestTopologyFloorChild starts the topology floor's responder as the bench
// does (a real child process of this executable on a real embedded NATS
// server), checks that it answers a signed request, refuses one signed with
// another key, is named by the CPU split, and is gone once stopped.
func TestTopologyFloorChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f := testFloors(t, 300*time.Millisecond, &Report{}, true)
	r, err := startFloorResponder(ctx, f.client, f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			r.stop()
		}
	})
	pid := r.proc.PID()
	if got := procRole(pid); got != roleFloor {
		t.Errorf("procRole(responder pid %d) = %q, want %q", pid, got, roleFloor)
	}
	payload := make([]byte, payloadSize)
	for i := 0; i < 10; i++ {
		if err := r.call(payload); err != nil {
			t.Fatalf("call %d to the responder child: %v", i, err)
		}
	}
	// The child verifies: a signature by another key gets an empty answer.
	_, other, _ := ed25519.GenerateKey(nil)
	if err := floorCall(f.client, r.subject, other, true)(payload); err == nil {
		t.Error("the responder child answered a request signed by another key")
	}
	r.stop()
	stopped = true
	select {
	case <-r.proc.Done():
	default:
		t.Fatal("stop returned before the responder child was reaped")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("responder child pid %d after stop: kill(0) = %v, want ESRCH", pid, err)
	}
	if _, ok := treeCPUByRole()[roleFloor]; ok {
		t.Error("a floor responder child is still in the process tree after stop")
	}
}

// TestTopologyFloorCell measures the floors at c=1 with the topology floor:
// its rows are in the report, the split counts CPU in the responder child,
// and no responder child is left in the tree afterwards.
func TestTopologyFloorCell(t *testing.T) {
	rep := &Report{}
	f := testFloors(t, 500*time.Millisecond, rep, true)
	c, err := f.cell(1)
	if err != nil {
		t.Fatal(err)
	}
	if c.topo.rps <= 0 || len(c.topo.lat) == 0 || c.topo.cpuPerCall <= 0 {
		t.Fatalf("topology floor cell: %+v req/s, %d calls, %v µs CPU per call", c.topo.rps, len(c.topo.lat), c.topo.cpuPerCall)
	}
	if c.topo.cpuByRole[roleFloor] <= 0 || c.topo.cpuByRole[roleBench] <= 0 {
		t.Errorf("topology floor CPU split %v: want CPU in both %q and %q", c.topo.cpuByRole, roleBench, roleFloor)
	}
	rows := map[string]Row{}
	for _, r := range rep.Rows {
		rows[r.Name] = r
	}
	for _, name := range []string{
		"throughput c=1: " + topoFloorName,
		"CPU per call c=1: " + topoFloorName + " (all processes)",
		"CPU per call c=1: " + topoFloorName + ": " + roleFloor,
		"latency c=1 p50: " + topoFloorName,
		"latency c=1 p99: " + topoFloorName,
	} {
		if r, ok := rows[name]; !ok || r.Value <= 0 {
			t.Errorf("row %q: %+v (present %v), want a positive value", name, r, ok)
		}
	}
	if _, ok := treeCPUByRole()[roleFloor]; ok {
		t.Error("a floor responder child is still in the process tree after the cell")
	}
}

// TestFloorChildrenDieWithBench interrupts a bench-like parent (the helper
// below: floors and a floor's children started as the bench starts them)
// with SIGINT, as ^C does, and checks that no child outlives it: the
// parent's deferred cleanup never runs, so this is the kernel's
// parent-death signal and the children's stdin at work.
func TestFloorChildrenDieWithBench(t *testing.T) {
	for _, tc := range []struct {
		floor string
		roles []string // of the children the helper starts, in the order it prints them
	}{
		{"topology", []string{roleFloor}},
		{"http", []string{roleFloor, roleFloorHTTPD}},
	} {
		t.Run(tc.floor, func(t *testing.T) {
			parent, pids := startHelperFloorParent(t, tc.floor, len(tc.roles))
			for i, pid := range pids {
				t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // only if the check below failed
				if got := procRole(pid); got != tc.roles[i] {
					t.Fatalf("pid %d the helper printed is %q, want a live %q", pid, got, tc.roles[i])
				}
			}
			if err := parent.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			_ = parent.Wait()
			deadline := time.Now().Add(30 * time.Second)
			for _, pid := range pids {
				for alive(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("child %d still runs 30s after its parent was interrupted", pid)
					}
					time.Sleep(10 * time.Millisecond) // polling the kernel's process table
				}
			}
		})
	}
}

// startHelperFloorParent runs TestHelperFloorParent in a child test
// process for floor and returns it with the pids of the n floor children
// it printed once they answered.
func startHelperFloorParent(t *testing.T, floor string, n int) (*exec.Cmd, []int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, "-test.run=^TestHelperFloorParent$")
	parent.Env = append(os.Environ(), "BENCH_HELPER_FLOOR_PARENT="+t.TempDir(), "BENCH_HELPER_FLOOR="+floor)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	parent.Stderr = os.Stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	pids := make(chan int, n)
	go func() { // owned by the test: ends when the helper's stdout closes
		defer close(pids)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "floor child pid "); ok {
				if pid, err := strconv.Atoi(v); err == nil {
					pids <- pid
				}
			}
		}
	}()
	var got []int
	timeout := time.After(2 * time.Minute)
	for len(got) < n {
		select {
		case p, ok := <-pids:
			if !ok {
				t.Fatalf("the helper parent ended after starting %d of %d floor children", len(got), n)
			}
			got = append(got, p)
		case <-timeout:
			t.Fatalf("the helper parent did not start %d floor children in 2 minutes", n)
		}
	}
	return parent, got
}

// testFloors are floors on an embedded NATS server of their own, closed
// when the test ends.
func testFloors(t *testing.T, dur time.Duration, rep *Report, topology bool) *floors {
	t.Helper()
	f, err := newFloors(t.TempDir(), dur, rep, topology)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	return f
}

// alive reports whether pid runs: it exists and is not a zombie waiting for
// whoever inherited it to reap it.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// TestHelperFloorParent is the bench-like parent of
// TestFloorChildrenDieWithBench: floors on a fresh embedded NATS server and
// the children of the floor BENCH_HELPER_FLOOR names (topology: the
// responder; http: the responder and floor-httpd) once they answered, their
// pids on stdout, then it waits to be interrupted.
func TestHelperFloorParent(t *testing.T) {
	dir := os.Getenv("BENCH_HELPER_FLOOR_PARENT")
	if dir == "" {
		return // not run as the helper
	}
	f, err := newFloors(dir, time.Second, &Report{}, true)
	if err != nil {
		t.Fatal(err)
	}
	switch floor := os.Getenv("BENCH_HELPER_FLOOR"); floor {
	case "topology":
		r, err := startFloorResponder(context.Background(), f.client, f.ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("floor child pid %d\n", r.proc.PID())
	case "http":
		h, err := startHTTPFloor(context.Background(), f.client, f.ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("floor child pid %d\nfloor child pid %d\n", h.responder.proc.PID(), h.httpd.PID())
	default:
		t.Fatalf("BENCH_HELPER_FLOOR=%q: want topology or http", floor)
	}
	time.Sleep(2 * time.Minute) // until interrupted; the test kills it at its end anyway
}

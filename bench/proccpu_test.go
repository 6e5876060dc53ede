package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childCPU is the CPU the helper child burns before it says so.
const childCPU = 200 * time.Millisecond

// TestTreeCPUCountsChildren runs a child process that burns childCPU of CPU
// time and checks that treeCPU, beyond this process's own CPU, saw it: the
// node and HTTP rows' CPU per call depends on it, and that the per-process
// split counts it for the child's role.
func TestTreeCPUCountsChildren(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperSpin$")
	cmd.Env = append(os.Environ(), "BENCH_HELPER_SPIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	before, self0, split0 := treeCPU(), processCPU(), treeCPUByRole()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	done := make(chan bool, 1)
	go func() { // owned by the test: ends when the child's stdout closes
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "spun" {
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the helper child ended without spinning")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the helper child did not burn its CPU in 2 minutes")
	}
	// The child still runs (it sleeps after saying so): it is in the tree.
	if got := treeCPU() - before - (processCPU() - self0); got < childCPU-2*clockTick {
		t.Fatalf("treeCPU saw %v beyond this process's own CPU; the child burnt %v (tick %v)", got, childCPU, clockTick)
	}
	// The split puts it under the child's role: the helper runs neither
	// `latticed host` nor `latticed provider`.
	if got := treeCPUByRole()[roleOther] - split0[roleOther]; got < childCPU-2*clockTick {
		t.Fatalf("treeCPUByRole saw %v for %q; the child burnt %v (tick %v)", got, roleOther, childCPU, clockTick)
	}
}

// TestHelperSpin is the child of TestTreeCPUCountsChildren: it burns
// childCPU of its own CPU time, prints "spun" and stays until killed.
func TestHelperSpin(t *testing.T) {
	if os.Getenv("BENCH_HELPER_SPIN") == "" {
		return // not run as the helper
	}
	for processCPU() < childCPU {
	}
	os.Stdout.WriteString("spun\n")
	time.Sleep(time.Minute)
}

// TestRoleOf checks how the CPU split names processes from their argument
// vectors: the supervisor's `latticed host` and `latticed provider <name>`.
func TestRoleOf(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"/tmp/latticed", "host"}, roleHost},
		{[]string{"/tmp/latticed", "provider", "httpserver"}, roleHTTPProvider},
		{[]string{"/tmp/latticed", "provider"}, roleOther},
		{[]string{"/tmp/kit/bench", floorResponderCmd}, roleFloor},
		{[]string{"/tmp/kit/bench", floorHTTPDCmd}, roleFloorHTTPD},
		{[]string{"/usr/bin/nats-server", "-p", "4222"}, roleOther},
		{[]string{""}, roleOther},
	} {
		if got := roleOf(tc.argv); got != tc.want {
			t.Errorf("roleOf(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

// TestRolesInOrder checks the split's row order: bench, host, providers by
// name, other last.
func TestRolesInOrder(t *testing.T) {
	got := rolesInOrder(map[string]float64{roleOther: 1, "keyvalue provider child": 1, roleHost: 1, "httpserver provider child": 1, roleBench: 1})
	want := []string{roleBench, roleHost, "httpserver provider child", "keyvalue provider child", roleOther}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rolesInOrder = %q, want %q", got, want)
	}
}

// TestPerCallByRole checks the split's arithmetic: each role's CPU between
// the two samples over the calls, a child started meanwhile from zero.
func TestPerCallByRole(t *testing.T) {
	before := map[string]time.Duration{roleBench: time.Second, roleHost: 2 * time.Second}
	after := map[string]time.Duration{roleBench: time.Second + 100*time.Millisecond, roleHost: 2*time.Second + 300*time.Millisecond,
		"httpserver provider child": 200 * time.Millisecond}
	got := perCallByRole(before, after, 1000)
	want := map[string]float64{roleBench: 100, roleHost: 300, "httpserver provider child": 200}
	if len(got) != len(want) {
		t.Fatalf("perCallByRole = %v, want %v", got, want)
	}
	for role, w := range want {
		if got[role] != w {
			t.Errorf("perCallByRole[%q] = %v µs, want %v", role, got[role], w)
		}
	}
}

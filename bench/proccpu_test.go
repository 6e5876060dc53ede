package main

import (
	"bufio"
	"os"
	"os/exec"
	"testing"
	"time"
)

// childCPU is the CPU the helper child burns before it says so.
const childCPU = 200 * time.Millisecond

// TestTreeCPUCountsChildren runs a child process that burns childCPU of CPU
// time and checks that treeCPU, beyond this process's own CPU, saw it: the
// node and HTTP rows' CPU per call depends on it.
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
	before, self0 := treeCPU(), processCPU()
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

package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/cpuprofile"
	"github.com/latticed/latticed/internal/testing/testenv"
)

// With LATTICED_CPUPROFILE_DIR the real `latticed up` and its children each
// write a CPU profile of their run when they stop: the supervisor, the host
// child and a built-in provider child (internal/cpuprofile's own test covers
// the variable unset).
func TestUpWritesCPUProfilesOfEveryProcess(t *testing.T) {
	profDir := filepath.Join(t.TempDir(), "profiles")
	e := newCtlEnv(t, map[string]string{
		"LATTICED_NATS_LISTEN":     "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"LATTICED_METRICS_ADDR":    "127.0.0.1:0",
		"LATTICED_LOG_LEVEL":       "warn",
		"WASMCLOUD_LATTICE_PREFIX": "proftest",
		cpuprofile.Env:             profDir,
	})
	up := startUp(t, e)

	hosts := waitHosts(t, e)
	var started providerResult
	e.json(&started, "", "ctl", "start", "provider", "builtin:httpserver", "--host-id", hosts[0].ID)
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if r := e.run("ctl", "get", "inventory", hosts[0].ID); !strings.Contains(r.stdout, "running") {
			return errNotYet
		}
		return nil
	})

	// The profiles are complete once each process has stopped.
	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if err := up.Process.Signal(syscall.Signal(0)); err == nil {
			return errNotYet
		}
		return nil
	})
	for _, role := range []string{"supervisor", "host", "provider-httpserver"} {
		matches, _ := filepath.Glob(filepath.Join(profDir, role+"-*.pprof"))
		if len(matches) != 1 {
			t.Errorf("%s: profiles %v, want one", role, matches)
			continue
		}
		if err := cpuprofile.Check(matches[0]); err != nil {
			t.Error(err)
		}
	}
}

package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/supervisor"
)

// The real `latticed up`, managed with the real ctl: a built-in provider is
// started by reference and listed with its state and signing mode, and
// revoking it through the admin socket reports when its connection closed.
func TestUpWithProvidersAndAdminSocketRevocation(t *testing.T) {
	e := newCtlEnv(t, map[string]string{
		"LATTICED_NATS_LISTEN":     "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"LATTICED_METRICS_ADDR":    "127.0.0.1:0",
		"LATTICED_LOG_LEVEL":       "warn",
		"WASMCLOUD_LATTICE_PREFIX": "uptest",
	})
	up := exec.Command(binPath, "up")
	up.Env = append(os.Environ(), "HOME="+filepath.Join(filepath.Dir(e.dataDir), "home"), "LATTICED_DATA_DIR="+e.dataDir)
	for k, v := range e.env {
		up.Env = append(up.Env, k+"="+v)
	}
	var logs bytes.Buffer
	up.Stdout, up.Stderr = &logs, &logs
	up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = up.Process.Kill()
			<-exited
			t.Error("latticed up did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("latticed up logs:\n%s", logs.String())
		}
	})

	var hosts []lattice.HostInfo
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		r := e.run("ctl", "get", "hosts", "--timeout", "500ms", "--output", "json")
		if r.code != 0 || !strings.Contains(r.stdout, `"id"`) {
			return errNotYet
		}
		return nil
	})
	e.json(&hosts, "ctl", "get", "hosts", "--timeout", "500ms")

	var started providerResult
	e.json(&started, "ctl", "start", "provider", "builtin:keyvalue", "--host-id", hosts[0].ID)
	kv, _ := lattice.LookupBuiltin("builtin:keyvalue")
	if started.ProviderID != kv.Key() {
		t.Fatalf("start provider reported key %q, want %s", started.ProviderID, kv.Key())
	}
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		r := e.run("ctl", "get", "inventory", hosts[0].ID)
		if !strings.Contains(r.stdout, "running") {
			return errNotYet
		}
		mustContain(t, "inventory", r.stdout, "STATE", "SIGNING", kv.Key(), "delegated")
		return nil
	})

	sock := supervisor.DataPath(e.dataDir, supervisor.RuntimeDir) + "/admin.sock"
	var rep supervisor.RevocationReport
	e.json(&rep, "ctl", "revoke", "provider", kv.Key(), "--admin-socket", sock)
	if rep.ProviderID != kv.Key() || rep.Seconds <= 0 || rep.Seconds > 1 {
		t.Fatalf("revocation report %+v", rep)
	}
	var inv lattice.HostInventory
	e.json(&inv, "ctl", "get", "inventory", hosts[0].ID)
	if len(inv.Providers) != 1 || inv.Providers[0].State != "revoked" {
		t.Fatalf("after revocation: %+v", inv.Providers)
	}
}

// With the embedded NATS port held by another process, `latticed up` fails
// at once (not after nats-server's start timeout) with exit status 1, names
// the port and the setting, and has created no key in its fresh data dir.
func TestUpFailsFastWhenNATSPortIsTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.Close() })
	addr := held.Addr().String()

	e := newCLIEnv(t)
	start := time.Now()
	r := e.runEnv(map[string]string{"LATTICED_NATS_LISTEN": addr, "LATTICED_METRICS_ADDR": "127.0.0.1:0"}, "up")
	took := time.Since(start)
	r.want(t, exitFailure)
	// The bound is generous for a loaded machine; the old code took 15 s.
	if took > 5*time.Second {
		t.Errorf("latticed up took %s to fail, want well under the 15s nats-server start timeout", took)
	}
	mustContain(t, "stderr", r.stderr, addr, "in use", "LATTICED_NATS_LISTEN")
	for _, rel := range []string{supervisor.ClusterSeedFile, "keys"} {
		if _, err := os.Stat(supervisor.DataPath(e.dataDir, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed start (err %v): no key may be created", rel, err)
		}
	}
	t.Logf("failed in %s: %s", took, strings.TrimSpace(r.stderr))
}

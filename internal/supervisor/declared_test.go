package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// runUpToExit runs `latticed up` with args in a fresh data dir and waits
// (bounded) for it to exit by itself; it returns the exit status and stderr.
func runUpToExit(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(latticedBin, append([]string{"up"}, args...)...)
	vars := map[string]string{
		config.EnvDataDir: dir, config.EnvNATSListen: "127.0.0.1:0", config.EnvMetricsAddr: "127.0.0.1:0",
		config.EnvAllowFileLoad: "true", config.EnvStopGrace: "5s",
		config.EnvConsoleAddr: "", // no console unless a test asks: many nodes run at once
		"PATH":                os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
	}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("latticed up %v still running after 2m; it must exit when a declared start fails:\n%s", args, tail(stderr.String(), 60))
	}
	return 0, ""
}

// An actor given with --start-actor that cannot start (missing, unsigned,
// not wasm) stops `latticed up` with exit status 1 and a message naming it;
// the node is never reported ready. With LATTICED_TOLERATE_START_FAILURES
// it runs on and is ready.
func TestUpExitsWhenADeclaredActorCannotStart(t *testing.T) {
	dir := t.TempDir()
	unsigned := filepath.Join(dir, "unsigned.wasm")
	if err := os.WriteFile(unsigned, testenv.BuildActor(t, "github.com/latticed/latticed/actor/examples/echo"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.wasm")
	if err := os.WriteFile(garbage, []byte("this is not a wasm module"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "missing.wasm")},
		{"unsigned", unsigned},
		{"garbage", garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := "file://" + tc.path
			code, stderr := runUpToExit(t, nil, "--start-actor", ref)
			if code != 1 {
				t.Fatalf("exit status %d, want 1\n%s", code, tail(stderr, 40))
			}
			last := lastLine(stderr)
			for _, want := range []string{"latticed: ", ErrDeclaredStart.Error(), "start actor " + ref} {
				if !strings.Contains(last, want) {
					t.Errorf("last line of stderr lacks %q:\n%s", want, last)
				}
			}
			if strings.Contains(stderr, `"msg":"node ready"`) {
				t.Errorf("the node said it was ready although its declared actor failed:\n%s", tail(stderr, 40))
			}
		})
	}

	t.Run("tolerated", func(t *testing.T) {
		ref := "file://" + garbage
		u := startUp(t, map[string]string{config.EnvTolerateStartFailures: "true"}, "--start-actor", ref)
		if !u.status.Ready {
			t.Fatal("not ready")
		}
		if !strings.Contains(u.stderr.String(), "running on although a declared start failed") {
			t.Errorf("no warning that a declared start failed:\n%s", tail(u.stderr.String(), 40))
		}
	})
}

// /readyz answers 200 only once everything --apply declares is in place:
// at the first 200 the manifest's actor and provider already run.
func TestReadyzWaitsForApply(t *testing.T) {
	echo := echoActor(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "lattice.yaml")
	body := fmt.Sprintf(`actors:
  - ref: file://%s
providers:
  - ref: builtin:keyvalue
links:
  - actor: file://%s
    provider: builtin:keyvalue
    contract: wasmcloud:keyvalue
`, echo.Path, echo.Path)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	u := launchUp(t, map[string]string{config.EnvMetricsAddr: addr}, "--apply", path)
	testenv.CheckFor(t, 90*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-u.done:
			t.Fatalf("latticed up exited: %v", u.cmd.ProcessState)
		default:
		}
		return getOK("http://" + addr + "/readyz")
	})
	// Ready now: what the manifest declares must already be in place.
	u.waitReady()
	var inv lattice.HostInventory
	ctl := lattice.NewCtl("", "default")
	msg, err := u.nc.Request(ctl.GetInventory(u.status.HostID), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(msg.Data, &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Actors) != 1 || inv.Actors[0].ID != echo.Key {
		t.Errorf("/readyz said ready with actors %+v, want %s", inv.Actors, echo.Key)
	}
	if len(inv.Providers) != 1 || inv.Providers[0].State != "running" {
		t.Errorf("/readyz said ready with providers %+v, want builtin:keyvalue running", inv.Providers)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Issue 17.7: `up --apply` with a link the HTTP server provider refuses
// (its port is taken by another listener) reports that link as failed with
// the provider's reason, not as put, and exits 1 naming it; the other link
// of the manifest is reported put. With LATTICED_TOLERATE_START_FAILURES
// the node runs on and the inventory shows the refusal.
func TestApplyReportsALinkItsProviderRefused(t *testing.T) {
	echo := echoActor(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })
	addr := taken.Addr().String()
	dir := t.TempDir()
	path := filepath.Join(dir, "lattice.yaml")
	body := fmt.Sprintf(`actors:
  - ref: file://%[1]s
providers:
  - ref: builtin:httpserver
  - ref: builtin:keyvalue
links:
  - actor: file://%[1]s
    provider: builtin:httpserver
    contract: wasmcloud:httpserver
    values: {address: "%[2]s"}
  - actor: file://%[1]s
    provider: builtin:keyvalue
    contract: wasmcloud:keyvalue
`, echo.Path, addr)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// checkSteps finds the link steps in the log: the HTTP link failed with
	// the provider's reason, the key-value link was put.
	checkSteps := func(t *testing.T, stderr string) {
		t.Helper()
		var httpStep, kvStep map[string]any
		for _, line := range strings.Split(stderr, "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "manifest applied" || rec["kind"] != "link" {
				continue
			}
			switch rec["ref"] {
			case wire.ContractHTTPServer + "/default":
				httpStep = rec
			case wire.ContractKeyValue + "/default":
				kvStep = rec
			}
		}
		if httpStep == nil || kvStep == nil {
			t.Fatalf("link steps missing from the log:\n%s", tail(stderr, 60))
		}
		reason, _ := httpStep["reason"].(string)
		if httpStep["action"] != "failed" || !strings.Contains(reason, addr) || !strings.Contains(reason, "address already in use") {
			t.Errorf("HTTP link step %v, want failed with the taken address %s and its reason", httpStep, addr)
		}
		if kvStep["action"] != "put" || kvStep["reason"] != "" {
			t.Errorf("key-value link step %v, want put without a reason", kvStep)
		}
	}

	t.Run("strict", func(t *testing.T) {
		code, stderr := runUpToExit(t, nil, "--apply", path)
		if code != 1 {
			t.Fatalf("exit status %d, want 1\n%s", code, tail(stderr, 40))
		}
		last := lastLine(stderr)
		for _, want := range []string{ErrDeclaredStart.Error(), "link refused by its provider", addr, "address already in use"} {
			if !strings.Contains(last, want) {
				t.Errorf("last line of stderr lacks %q:\n%s", want, last)
			}
		}
		if strings.Contains(stderr, `"msg":"node ready"`) {
			t.Errorf("the node said it was ready although a declared link failed")
		}
		checkSteps(t, stderr)
	})

	t.Run("tolerated", func(t *testing.T) {
		u := startUp(t, map[string]string{config.EnvTolerateStartFailures: "true"}, "--apply", path)
		checkSteps(t, u.stderr.String())
		var inv lattice.HostInventory
		msg, err := u.nc.Request(lattice.NewCtl("", "default").GetInventory(u.status.HostID), nil, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(msg.Data, &inv); err != nil {
			t.Fatal(err)
		}
		http, _ := builtin.Lookup("builtin:httpserver")
		var outcome *lattice.LinkOutcome
		for _, p := range inv.Providers {
			for i, o := range p.Links {
				if p.ID == http.Key() && o.ActorID == echo.Key {
					outcome = &p.Links[i]
				}
			}
		}
		if outcome == nil || !strings.Contains(outcome.Error, "address already in use") {
			t.Errorf("inventory does not show the refused link: %+v", inv.Providers)
		}
	})
}

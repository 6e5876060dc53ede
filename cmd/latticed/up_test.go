package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
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
	startUp(t, e)
	hosts := waitHosts(t, e)

	var started providerResult
	e.json(&started, "", "ctl", "start", "provider", "builtin:keyvalue", "--host-id", hosts[0].ID)
	kv, _ := builtin.Lookup("builtin:keyvalue")
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

	sock := datadir.Path(e.dataDir, datadir.RuntimeDir) + "/admin.sock"
	var rep admin.RevocationReport
	e.json(&rep, "", "ctl", "revoke", "provider", kv.Key(), "--admin-socket", sock)
	if rep.ProviderID != kv.Key() || rep.Seconds <= 0 || rep.Seconds > 1 {
		t.Fatalf("revocation report %+v", rep)
	}
	var inv lattice.HostInventory
	e.json(&inv, "inventory", "ctl", "get", "inventory", hosts[0].ID)
	if len(inv.Providers) != 1 || inv.Providers[0].State != "revoked" {
		t.Fatalf("after revocation: %+v", inv.Providers)
	}
}

// waitHosts waits until `ctl get hosts` lists the node's host, and returns
// the hosts it lists.
func waitHosts(t *testing.T, e *ctlEnv) []lattice.HostInfo {
	t.Helper()
	var hosts []lattice.HostInfo
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		r := e.run("ctl", "get", "hosts", "--timeout", "500ms", "--output", "json")
		if r.code != 0 || envelopeValue(r.stdout, "hosts", &hosts) != nil || len(hosts) == 0 {
			return errNotYet
		}
		return nil
	})
	return hosts
}

// startUp runs the real `latticed up` (embedded NATS) with e's data dir and
// variables; it is stopped with SIGTERM and reaped at test end, its logs
// shown when the test failed. It returns the running command.
func startUp(t *testing.T, e *ctlEnv) *exec.Cmd {
	t.Helper()
	up := exec.Command(binPath, "up")
	up.Env = append(os.Environ(), "HOME="+filepath.Join(filepath.Dir(e.dataDir), "home"), "LATTICED_DATA_DIR="+e.dataDir, config.EnvConsoleAddr+"=")
	for k, v := range e.env {
		up.Env = append(up.Env, k+"="+v)
	}
	logs := &testenv.SyncBuffer{} // written by the command's copier goroutines
	up.Stdout, up.Stderr = logs, logs
	runNode(t, up, logs)
	return up
}

// runNode starts cmd, a latticed up, killed should the test process die;
// at test end it is stopped with SIGTERM (killed after 30 s) and reaped, and
// output is shown when the test failed. exited closes once it has ended.
func runNode(t *testing.T, cmd *exec.Cmd, output *testenv.SyncBuffer) (exited <-chan struct{}) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("latticed up did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("latticed up output:\n%s", output.String())
		}
	})
	return done
}

// nodeEnviron is this process's environment without what would point a
// node at the developer's own (HOME, XDG_DATA_HOME, LATTICED_*,
// WASMCLOUD_*), then vars.
func nodeEnviron(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "XDG_DATA_HOME" && !strings.HasPrefix(k, "LATTICED_") && !strings.HasPrefix(k, "WASMCLOUD_") {
			env = append(env, kv)
		}
	}
	// No console unless a test asks: many nodes run at once, and the
	// default port may be a developer's running node.
	env = append(env, config.EnvConsoleAddr+"=")
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// The operator's revocation, timed from the command: `ctl revoke provider`
// without --host-id finds the host by the first matching inventory instead
// of waiting out its whole --timeout (5 s), the provider's connection is
// seen closed and its process is gone; then `ctl start provider` of the
// same provider is offered by the host (a revoked entry does not count as
// running) and the new instance serves the actor again.
func TestCtlRevokeWithoutHostIDIsFastAndProviderStartsAgain(t *testing.T) {
	metricsAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	e := newCtlEnv(t, map[string]string{
		config.EnvNATSListen:     "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		config.EnvMetricsAddr:    metricsAddr,
		config.EnvLogLevel:       "warn",
		config.EnvLatticePrefix:  "revoketest",
		config.EnvAllowFileLoad:  "true",
		config.EnvHealthInterval: "200ms",
	})
	up := startUp(t, e)
	node := &upNode{name: "up", metricsAddr: metricsAddr}
	var hosts []lattice.HostInfo
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		r := e.run("ctl", "get", "hosts", "--timeout", "500ms", "--output", "json")
		if r.code != 0 || envelopeValue(r.stdout, "hosts", &hosts) != nil || len(hosts) != 1 {
			return errNotYet
		}
		return nil
	})
	host := hosts[0].ID
	hostOnly := procChildren(t, up.Process.Pid)

	kvc := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{Name: "kvcounter", Caps: []string{wire.ContractKeyValue}})
	e.run("ctl", "start", "actor", "file://"+kvc.Path, "--host-id", host).want(t, 0)
	kv, _ := builtin.Lookup("builtin:keyvalue")
	running := func() lattice.ProviderDescription {
		var d lattice.ProviderDescription
		testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			var inv lattice.HostInventory
			e.json(&inv, "inventory", "ctl", "get", "inventory", host)
			if len(inv.Providers) != 1 || inv.Providers[0].State != "running" {
				return fmt.Errorf("providers: %+v", inv.Providers)
			}
			d = inv.Providers[0]
			return nil
		})
		return d
	}
	e.run("ctl", "start", "provider", "builtin:keyvalue").want(t, 0) // by auction
	first := running()
	e.run("ctl", "link", "put", kvc.Key, kv.Key(), wire.ContractKeyValue).want(t, 0)
	counter := func() (int, error) {
		r := e.run("ctl", "call", kvc.Key, "HttpServer.HandleRequest", "--timeout", "5s",
			"--data", `{"method":"GET","path":"/","queryString":"","header":{},"body":""}`)
		if r.code != 0 {
			return 0, fmt.Errorf("ctl call: %s", r.stderr)
		}
		var resp struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		var body struct {
			Counter int `json:"counter"`
		}
		if json.Unmarshal([]byte(r.stdout), &resp) != nil || resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &body) != nil {
			return 0, fmt.Errorf("reply %s", r.stdout)
		}
		return body.Counter, nil
	}
	var before int
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() (err error) {
		before, err = counter()
		return err
	})
	var provPID int
	for _, pid := range procChildren(t, up.Process.Pid) {
		if !slices.Contains(hostOnly, pid) {
			provPID = pid
		}
	}
	if provPID == 0 {
		t.Fatalf("no provider process among the children of latticed up")
	}

	begin := time.Now()
	// A long --timeout, so that returning at the first match is told apart
	// from waiting out the window however loaded the machine is.
	r := e.run("ctl", "revoke", "provider", kv.Key(), "--timeout", "30s")
	took := time.Since(begin)
	r.want(t, 0)
	t.Logf("ctl revoke provider without --host-id returned after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(r.stdout))
	if took >= 15*time.Second {
		t.Errorf("ctl revoke provider without --host-id took %s, want well under the 30 s --timeout: it returns at the first host that runs the provider", took)
	}
	mustContain(t, "revoke output", r.stdout, "revoked on host "+host)
	// The supervisor counts a revocation ok only once it saw the user's
	// connection closed, and it replies after the process was reaped.
	if v := node.counter(t, metrics.Namespace+"_revocations_total", map[string]string{"result": metrics.ResultOK}); v != 1 {
		t.Errorf("revocations_total{result=ok} = %v, want 1", v)
	}
	if _, _, alive := procStat(provPID); alive {
		t.Errorf("the revoked provider's process %d still exists", provPID)
	}

	e.run("ctl", "start", "provider", "builtin:keyvalue").want(t, 0)
	again := running()
	if again.InstanceID == first.InstanceID {
		t.Errorf("started again with the revoked instance id %s", first.InstanceID)
	}
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		n, err := counter()
		if err == nil && n <= before {
			err = fmt.Errorf("counter %d after %d", n, before)
		}
		return err
	})
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
	for _, rel := range []string{datadir.ClusterSeedFile, "keys"} {
		if _, err := os.Stat(datadir.Path(e.dataDir, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed start (err %v): no key may be created", rel, err)
		}
	}
	t.Logf("failed in %s: %s", took, strings.TrimSpace(r.stderr))
}

// echoBehindHTTP signs the echo actor into dir and writes a manifest that
// runs it behind the HTTP server provider on a free loopback port.
func echoBehindHTTP(t *testing.T, dir string) (echo testenv.SignedActor, manifestPath string, httpPort int) {
	t.Helper()
	echo = testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	httpPort = testenv.FreePort(t)
	manifestPath = filepath.Join(dir, "echo.yaml")
	if err := os.WriteFile(manifestPath, []byte(fmt.Sprintf(`actors:
  - ref: %s
links:
  - actor: %s
    provider: builtin:httpserver
    contract: wasmcloud:httpserver
    values: {port: "%d"}
providers:
  - ref: builtin:httpserver
`, echo.Path, echo.Path, httpPort)), 0o600); err != nil {
		t.Fatal(err)
	}
	return echo, manifestPath, httpPort
}

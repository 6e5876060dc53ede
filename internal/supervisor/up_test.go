package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// upProcess is `latticed up` run as the operator runs it.
type upProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	stderr  *testenv.SyncBuffer
	dataDir string
	admin   *admin.Client
	status  *admin.Status
	cluster *trust.KeyPair
	nc      *nats.Conn
	done    chan struct{}
}

func startUp(t *testing.T, env map[string]string, args ...string) *upProcess {
	t.Helper()
	u := launchUp(t, env, args...)
	u.waitReady()
	return u
}

// launchUp starts `latticed up` (killed at cleanup) without waiting for it.
func launchUp(t *testing.T, env map[string]string, args ...string) *upProcess {
	t.Helper()
	dir := env[config.EnvDataDir] // a restart of a node keeps its data dir
	if dir == "" {
		dir = t.TempDir()
	}
	return launchUpIn(t, dir, env, args...)
}

// launchUpIn is launchUp with the data dir dir (a restart reuses one).
func launchUpIn(t *testing.T, dir string, env map[string]string, args ...string) *upProcess {
	t.Helper()
	cluster, _, err := datadir.LoadOrCreateKey(datadir.Path(dir, datadir.ClusterSeedFile), lattice.KindCluster)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		config.EnvDataDir: dir, config.EnvNATSListen: "127.0.0.1:0", config.EnvMetricsAddr: "127.0.0.1:0",
		config.EnvAllowFileLoad: "true", config.EnvStopGrace: "5s", config.EnvHealthInterval: "500ms",
		config.EnvConsoleAddr: "", // no console unless a test asks: many nodes run at once
		"PATH":                os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
	}
	for k, v := range env {
		vars[k] = v
	}
	u := &upProcess{t: t, stderr: &testenv.SyncBuffer{}, dataDir: dir, cluster: cluster, done: make(chan struct{})}
	u.cmd = exec.Command(latticedBin, append([]string{"up"}, args...)...)
	for k, v := range vars {
		u.cmd.Env = append(u.cmd.Env, k+"="+v)
	}
	u.cmd.Stderr = u.stderr
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = u.cmd.Wait(); close(u.done) }()
	t.Cleanup(func() {
		_ = u.cmd.Process.Kill()
		<-u.done
		if t.Failed() {
			t.Logf("latticed up stderr:\n%s", tail(u.stderr.String(), 120))
		}
	})
	u.admin = admin.NewClient(filepath.Join(dir, datadir.RuntimeDir, datadir.AdminSocketFile), nil)
	return u
}

// waitReady waits until the node reports ready on its admin socket, then
// connects to its NATS as the operator.
func (u *upProcess) waitReady() {
	t := u.t
	t.Helper()
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-u.done:
			t.Fatalf("latticed up exited: %v\n%s", u.cmd.ProcessState, u.stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := u.admin.Status(ctx)
		if err != nil {
			return err
		}
		if !st.Ready {
			return errors.New("not ready")
		}
		u.status = st
		return nil
	})
	creds := datadir.Path(u.dataDir, datadir.AdminCredsFile)
	if _, err := os.Stat(creds); errors.Is(err, os.ErrNotExist) {
		return // an external NATS: no admin.creds; the test has its own credentials
	}
	nc, err := nats.Connect(u.status.NATSURL, nats.UserCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	u.nc = nc
	t.Cleanup(u.nc.Close)
}

// forward is the hostcall actor's Call.Forward argument.
type forward struct {
	Binding   string `msgpack:"binding"`
	Namespace string `msgpack:"namespace"`
	Operation string `msgpack:"operation"`
	Payload   []byte `msgpack:"payload"`
}

func TestSIGTERMDrainsInFlightStopsProvidersAndExitsZero(t *testing.T) {
	actor := testenv.SignActor(t, t.TempDir(), "./internal/testing/actors/hostcall", trust.SignActorOptions{Name: "hostcall", Caps: []string{"test:slow"}})
	u := startUp(t, map[string]string{config.EnvRPCTimeoutMS: "10000"}, "--start-actor", "file://"+actor.Path)
	ref := "file://" + providerBin
	if err := u.admin.LaunchProvider(context.Background(), lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "default", Configuration: `{"delay_ms": 1000}`}); err != nil {
		t.Fatal(err)
	}
	var provKey string
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		st, err := u.admin.Status(context.Background())
		if err != nil {
			return err
		}
		if len(st.Providers) != 1 || st.Providers[0].State != child.StateRunning {
			return fmt.Errorf("providers %+v", st.Providers)
		}
		provKey = st.Providers[0].ID
		u.status = st
		return nil
	})
	ld := lattice.LinkDefinition{ActorID: actor.Key, ProviderID: provKey, LinkName: "default", ContractID: "test:slow"}
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	var ack lattice.Ack
	msg, err := u.nc.Request(lattice.NewCtl("", "default").LinkdefsPut(), mustJSON(ld), 5*time.Second)
	if err != nil || jsonUnmarshal(msg.Data, &ack) != nil || !ack.Accepted {
		t.Fatalf("put link: %v %+v", err, ack)
	}

	// Invocations that take a second each (the actor waits on the provider).
	const inflight = 4
	payload, _ := lattice.Marshal(forward{Binding: "default", Namespace: "test:slow", Operation: "Slow.Op", Payload: []byte("p")})
	results := make(chan error, inflight)
	for i := 0; i < inflight; i++ {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			out, err := rpc.Invoke(ctx, u.nc, u.cluster, u.status.HostID, lattice.Entity{PublicKey: "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"},
				lattice.ActorEntity(actor.Key), lattice.RPCActor("default", actor.Key), "Call.Forward", payload)
			if err == nil && string(out) != "p" {
				err = fmt.Errorf("reply %q", out)
			}
			results <- err
		}()
	}
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if c := strings.Count(u.stderr.String(), `"msg":"invocation received"`); c < inflight {
			return fmt.Errorf("%d invocations reached the provider", c)
		}
		return nil
	})

	children := childPIDs(t, u.cmd.Process.Pid) // the host and the provider
	if len(children) != 2 {
		t.Fatalf("latticed up has %d child processes, want 2 (host, provider)", len(children))
	}
	sent := time.Now()
	if err := u.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-u.done:
	case <-time.After(15 * time.Second):
		t.Fatal("latticed up still running 15s after SIGTERM")
	}
	took := time.Since(sent)
	if code := u.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if took > 5*time.Second+2*time.Second {
		t.Errorf("stopping took %v, grace is 5s", took)
	}
	for i := 0; i < inflight; i++ {
		if err := <-results; err != nil {
			t.Errorf("in-flight invocation failed: %v", err)
		}
	}
	if !strings.Contains(u.stderr.String(), `"msg":"shutdown received"`) {
		t.Error("the provider never received its shutdown message")
	}
	for _, pid := range children {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d still exists after latticed up exited", pid)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still has members after latticed up exited", pid)
		}
	}
	t.Logf("stopped in %v with %d invocations in flight", took.Round(time.Millisecond), inflight)
}

// childPIDs lists the direct children of pid (from /proc).
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	var out []int
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		var child int
		if _, err := fmt.Sscan(e.Name(), &child); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+2:]
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

func TestSIGHUPRefusesRestartOnlySettingsWholeAndAppliesLiveOnes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "latticed.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log_level: info\nlabels:\n  zone: a\n  gone: soon\n")
	u := startUp(t, map[string]string{config.EnvConfig: file})
	labels := func() map[string]string {
		var info lattice.HostInfo
		msg, err := u.nc.Request(lattice.NewCtl("", "default").PingHosts(), nil, 5*time.Second)
		if err != nil || jsonUnmarshal(msg.Data, &info) != nil {
			t.Fatalf("ping: %v", err)
		}
		return info.Labels
	}
	if l := labels(); l["zone"] != "a" || l["gone"] != "soon" {
		t.Fatalf("labels at start: %v", l)
	}
	hostPID := u.status.Host.PID
	// A restart-only setting beside live ones refuses the whole reload,
	// by name, and applies nothing.
	write("log_level: debug\nrpc_timeout_ms: 3000\nlabels:\n  zone: b\n  tier: x\n")
	if err := u.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if out := u.stderr.String(); !strings.Contains(out, `configuration not reloaded: nothing was applied`) || !strings.Contains(out, `need a restart of latticed up: rpc_timeout`) {
			return errors.New("no refusal naming rpc_timeout in the log yet")
		}
		return nil
	})
	if l := labels(); l["zone"] != "a" || l["gone"] != "soon" || l["tier"] != "" {
		t.Errorf("a refused reload changed the labels: %v", l)
	}
	if strings.Contains(u.stderr.String(), `"msg":"log level changed"`) {
		t.Error("a refused reload changed the log level")
	}
	// Live settings alone are applied, in the supervisor and the host.
	write("log_level: debug\nlabels:\n  zone: b\n  tier: x\n")
	if err := u.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		l := labels()
		if l["zone"] != "b" || l["tier"] != "x" || l["gone"] != "" {
			return fmt.Errorf("labels %v", l)
		}
		return nil
	})
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		out := u.stderr.String()
		if !strings.Contains(out, `"msg":"log level changed","from":"info","to":"debug"`) {
			return errors.New("no log level change in the log yet")
		}
		// The host child reloaded its level too: it now logs at debug.
		if !strings.Contains(out, `"level":"DEBUG","msg":"log level changed"`) && !strings.Contains(out, `"child":"host","from":"info"`) {
			return errors.New("the host did not reload its log level")
		}
		return nil
	})
	if st, err := u.admin.Status(context.Background()); err != nil || st.Host.PID != hostPID {
		t.Errorf("the host was restarted by a reload: %+v %v", st, err)
	}
}

func TestKilledSupervisorTakesItsChildrenWithIt(t *testing.T) {
	u := startUp(t, nil)
	if err := u.admin.LaunchProvider(context.Background(), lattice.LaunchProviderCommand{ProviderRef: "file://" + providerBin}); err != nil {
		t.Fatal(err)
	}
	var children []int
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if children = childPIDs(t, u.cmd.Process.Pid); len(children) != 2 {
			return fmt.Errorf("children %v", children)
		}
		return nil
	})
	if err := u.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-u.done
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, pid := range children {
			if alive(pid) {
				return fmt.Errorf("child %d outlived the killed supervisor", pid)
			}
		}
		return nil
	})
}

// alive reports whether pid runs: a zombie (dead, not yet reaped by
// whoever inherited it) does not.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+2:], "Z")
}

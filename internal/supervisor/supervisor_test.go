package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
)

var anySeed = regexp.MustCompile(`S[ACMNOUVX][A-Z2-7]{56}`)

func TestNodeRunsHostAndEachProviderAsItsOwnUser(t *testing.T) {
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	refA, refB := "file://"+providerBin, "file://"+providerBin2
	n.launch(refA, "default", `{"probe": ["wasmbus.ctl.>", "wasmbus.rpc.default.VOTHER.default"]}`)
	n.launch(refB, "default", "")
	n.waitProviderState(refA, "default", child.StateRunning)
	n.waitProviderState(refB, "default", child.StateRunning)

	// The echo actor works through the host child.
	if out, err := n.invokeEcho(context.Background(), echo.Key, []byte("hi")); err != nil || string(out) != "hi" {
		t.Fatalf("echo: %q, %v", out, err)
	}

	// Every connection of the node is a distinct user with its role.
	users := map[string]string{} // user key → connection name
	cz, err := n.s.NATSServer().Connz(&server.ConnzOptions{Username: true, State: server.ConnOpen})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if prev, dup := users[c.AuthorizedUser]; dup {
			t.Errorf("connections %q and %q share user %s", prev, c.Name, c.AuthorizedUser)
		}
		users[c.AuthorizedUser] = c.Name
	}
	names := strings.Join(func() []string {
		var l []string
		for _, v := range users {
			l = append(l, v)
		}
		return l
	}(), ", ")
	for _, want := range []string{"default-rpc", "default-ctl", "testprovider " + n.instance(refA, "default").key, "testprovider " + n.instance(refB, "default").key, "latticed-supervisor"} {
		if !strings.Contains(names, want) {
			t.Errorf("no connection named %q among %s", want, names)
		}
	}
	if len(users) < 6 { // supervisor, admin (test), host rpc, host ctl, 2 providers
		t.Errorf("%d distinct users, want at least 6: %s", len(users), names)
	}

	// The provider's own user was refused on the control interface and on
	// another provider's subjects.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, subj := range []string{"wasmbus.ctl.>", "wasmbus.rpc.default.VOTHER.default"} {
			if !strings.Contains(n.logs.String(), `Permissions Violation for Subscription to \"`+subj+`\"`) {
				return fmt.Errorf("no permission violation logged for %s", subj)
			}
		}
		return nil
	})

	// Files with secrets are 0600 in 0700 directories.
	dir := n.cfg.DataDir
	for _, f := range []struct {
		rel  string
		mode os.FileMode
	}{
		{datadir.AdminCredsFile, 0o600}, {"creds", 0o700}, {datadir.RuntimeDir, 0o700},
		{filepath.Join(datadir.RuntimeDir, datadir.HostRPCCreds), 0o600}, {filepath.Join(datadir.RuntimeDir, datadir.HostCtlCreds), 0o600},
		{filepath.Join(datadir.RuntimeDir, datadir.AdminSocketFile), 0o600},
		{datadir.OperatorSeedFile, 0o600}, {datadir.SystemAccountSeedFile, 0o600}, {datadir.LatticeAccountSeedFile, 0o600}, {datadir.ClusterSeedFile, 0o600},
	} {
		fi, err := os.Stat(datadir.Path(dir, f.rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s has mode %o, want %o", f.rel, fi.Mode().Perm(), f.mode)
		}
	}

	// Children's environments: the host's holds paths, not credentials;
	// providers get no lattice settings at all.
	hostPID := n.s.Status().Host.PID
	hostEnv := readEnviron(t, hostPID)
	if !strings.Contains(hostEnv, "WASMCLOUD_RPC_CREDSFILE="+datadir.Path(dir, filepath.Join(datadir.RuntimeDir, datadir.HostRPCCreds))) {
		t.Errorf("host environment lacks its creds file path")
	}
	for _, seed := range anySeed.FindAllString(hostEnv, -1) {
		if !strings.HasPrefix(seed, "SN") { // its own host seed is its business
			t.Errorf("host environment holds a seed of kind %s", seed[:2])
		}
	}
	for _, ref := range []string{refA, refB} {
		p := n.instance(ref, "default")
		p.mu.Lock()
		pid := p.pid()
		p.mu.Unlock()
		env := readEnviron(t, pid)
		if strings.Contains(env, "WASMCLOUD_") || strings.Contains(env, "LATTICED_") || anySeed.MatchString(env) {
			t.Errorf("provider environment holds lattice settings or seeds: %q", env)
		}
	}

	// No seed reached the log (the cluster seed existed before the node
	// started, so not even it is announced).
	if s := anySeed.FindString(n.logs.String()); s != "" {
		t.Errorf("a seed of kind %s appears in the supervisor log", s[:2])
	}
}

func readEnviron(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", "\n")
}

func TestRevokeProviderUnderLoadCutsOnlyItsConnection(t *testing.T) {
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	refA, refB := "file://"+providerBin, "file://"+providerBin2
	n.launch(refA, "default", "")
	n.launch(refB, "default", "")
	n.waitProviderState(refA, "default", child.StateRunning)
	n.waitProviderState(refB, "default", child.StateRunning)
	a, b := n.instance(refA, "default"), n.instance(refB, "default")
	a.mu.Lock()
	creds, pidA := a.creds, a.pid()
	a.mu.Unlock()
	b.mu.Lock()
	pidB := b.pid()
	b.mu.Unlock()
	hostPID := n.s.Status().Host.PID

	events := make(chan *nats.Msg, 64)
	sub, err := n.nc.ChanSubscribe(lattice.Events("default"), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	// A steady stream of invocations to an actor on the same host.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
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
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := n.invokeEcho(ctx, echo.Key, []byte("x"))
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	waitMore := func(k int64) {
		target := ok.Load() + k
		testenv.CheckFor(t, 20*time.Second, time.Millisecond, func() error {
			if ok.Load() < target {
				return fmt.Errorf("%d invocations so far", ok.Load())
			}
			return nil
		})
	}
	waitMore(100)
	rep, err := n.admin.Revoke(context.Background(), lattice.StopProviderCommand{ProviderRef: refA, LinkName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	waitMore(100)
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d invocations failed during the revocation; first: %v", f, f+ok.Load(), firstErr.Load())
	}
	t.Logf("revocation: connection closed %.3f ms after the request; %d invocations, none failed", rep.Seconds*1000, ok.Load())

	if rep.User != creds.UserKey || rep.Seconds <= 0 || rep.Closed.Before(rep.Requested) {
		t.Errorf("report %+v does not match user %s", rep, creds.UserKey)
	}
	// The server closed that connection for the revocation.
	cz, err := n.s.NATSServer().Connz(&server.ConnzOptions{Username: true, User: creds.UserKey, State: server.ConnClosed})
	if err != nil {
		t.Fatal(err)
	}
	if len(cz.Conns) == 0 || !strings.Contains(cz.Conns[0].Reason, "Revoked") {
		t.Errorf("closed connections of the revoked user: %+v", cz.Conns)
	}
	// Its credentials are refused from now on.
	if _, err := nats.Connect(n.s.NATSURL(), nats.UserJWTAndSeed(creds.JWT, creds.Seed), nats.NoReconnect()); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("reconnect with the revoked credentials: %v, want an authorization error", err)
	}
	// It is gone, listed as revoked, and not restarted.
	if err := syscall.Kill(pidA, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("revoked provider process %d still exists", pidA)
	}
	time.Sleep(3 * n.cfg.RestartBackoffMax) // a restart, if any, would have come by now
	d, _ := n.provider(refA, "default")
	if d.State != child.StateRevoked || d.Restarts != 0 || !strings.HasPrefix(d.ExitReason, string(child.ExitRevoked)) {
		t.Errorf("revoked provider: state %s, restarts %d, exit %q", d.State, d.Restarts, d.ExitReason)
	}
	if got := countSpawns(n.s, a.label()); got != 1 {
		t.Errorf("revoked provider started %d times, want 1", got)
	}
	// The host and the other provider kept serving, untouched.
	if st := n.s.Status(); st.Host.PID != hostPID || st.Host.Restarts != 0 || st.Host.State != child.StateRunning {
		t.Errorf("host after revocation: %+v (pid before %d)", st.Host, hostPID)
	}
	b.mu.Lock()
	samePID := b.pid() == pidB
	b.mu.Unlock()
	if !samePID {
		t.Error("the other provider was restarted")
	}
	if _, err := n.nc.Request(lattice.RPCHealth("default", b.key, "default"), nil, 2*time.Second); err != nil {
		t.Errorf("the other provider stopped answering: %v", err)
	}
	// The revocation is an event and a metric.
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for {
			select {
			case m := <-events:
				if strings.Contains(string(m.Data), lattice.EventTypePrefix+lattice.EventProviderRevoked) && strings.Contains(string(m.Data), creds.UserKey) {
					return nil
				}
			default:
				return fmt.Errorf("no %s event yet", lattice.EventProviderRevoked)
			}
		}
	})
	if v := testutil.ToFloat64(n.m.Revocations.WithLabelValues("ok")); v != 1 {
		t.Errorf("revocations_total{result=ok} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(n.m.ChildExits.WithLabelValues(roleProvider, string(child.ExitRevoked))); v != 1 {
		t.Errorf("child_exits_total{role=provider,reason=revoked} = %v, want 1", v)
	}

	// Launching it again (a new user, minted in what may well be the same
	// second as the revocation) works: the revocation names the old key only.
	n.launch(refA, "default", "")
	n.waitProviderState(refA, "default", child.StateRunning)
}

func countSpawns(s *Supervisor, name string) int {
	c := 0
	for _, sp := range s.spawned() {
		if sp.name == name {
			c++
		}
	}
	return c
}

func TestCrashingProviderBacksOffThenIsMarkedFailed(t *testing.T) {
	n := startNode(t, nil)
	ref := "file://" + providerBin
	events := make(chan *nats.Msg, 256)
	sub, err := n.nc.ChanSubscribe(lattice.Events("default"), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	n.launch(ref, "default", `{"mode": "crash", "exit_code": 3}`)
	d := n.waitProviderState(ref, "default", child.StateFailed)
	if d.ExitReason != "crash_loop after crash: exit status 3" {
		t.Errorf("exit reason %q", d.ExitReason)
	}
	p := n.instance(ref, "default")
	var starts []time.Time
	for _, sp := range n.s.spawned() {
		if sp.name == p.label() {
			starts = append(starts, sp.at)
		}
	}
	if len(starts) != n.cfg.CrashLoopCount {
		t.Fatalf("%d starts, want %d (the crash-loop threshold)", len(starts), n.cfg.CrashLoopCount)
	}
	// Each gap between starts is the run until the crash plus the backoff,
	// so it is at least the backoff's least value: the base doubled per
	// crash, capped, less the 20% jitter. Comparing one gap with the next
	// instead would flake: on a loaded machine a slow process start can
	// outweigh a doubling of 50 ms, while a backoff that did not grow fails
	// these bounds from the third start on.
	for i := 1; i < len(starts); i++ {
		least := n.cfg.RestartBackoff << (i - 1)
		least = min(least, n.cfg.RestartBackoffMax) * 8 / 10
		if gap := starts[i].Sub(starts[i-1]); gap < least {
			t.Errorf("start %d came %v after the one before, sooner than its backoff allows (%v): the backoff does not grow", i+1, gap, least)
		}
	}
	if v := testutil.ToFloat64(n.m.ChildRestarts.WithLabelValues(roleProvider, string(child.ExitCrash))); int(v) != n.cfg.CrashLoopCount-1 {
		t.Errorf("child_restarts_total{provider,crash} = %v, want %d", v, n.cfg.CrashLoopCount-1)
	}
	if v := testutil.ToFloat64(n.m.ChildExits.WithLabelValues(roleProvider, string(child.ExitCrashLoop))); v != 1 {
		t.Errorf("child_exits_total{provider,crash_loop} = %v, want 1", v)
	}
	waitEvent(t, events, lattice.EventProviderFailed, "crash_loop")

	// It stays failed until told; told, it runs (and crashes) again.
	if err := n.admin.Restart(context.Background(), roleProvider, &lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if c := countSpawns(n.s, p.label()); c <= len(starts) {
			return fmt.Errorf("%d starts", c)
		}
		return nil
	})
	// And a stop takes a failed provider off the list.
	n.waitProviderState(ref, "default", child.StateFailed)
	if err := n.admin.StopProvider(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.provider(ref, "default"); ok {
		t.Error("stopped provider still listed")
	}
}

func TestKilledHostComesBackWithItsActorsAndProvidersUntouched(t *testing.T) {
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	provPID := p.pid()
	p.mu.Unlock()
	events := make(chan *nats.Msg, 256)
	sub, err := n.nc.ChanSubscribe(lattice.Events("default"), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	before := n.s.Status().Host
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		st := n.s.Status().Host
		if st.Restarts != 1 || st.State != child.StateRunning || st.PID == before.PID {
			return fmt.Errorf("host %+v", st)
		}
		return nil
	})
	if st := n.s.Status().Host; st.ExitReason != "crash: signal: killed" {
		t.Errorf("host exit reason %q", st.ExitReason)
	}
	waitEvent(t, events, lattice.EventHostCrashed, "killed")
	// Its actor is back.
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := n.invokeEcho(ctx, echo.Key, []byte("back"))
		if err != nil {
			return err
		}
		if string(out) != "back" {
			return fmt.Errorf("echo %q", out)
		}
		return nil
	})
	// The actor may answer a moment before the restarted host lists it
	// (it serves as soon as its instance runs).
	var inv lattice.HostInventory
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		inv = lattice.HostInventory{}
		n.ctlRequest(lattice.NewCtl("", "default").GetInventory(n.s.HostID()), struct{}{}, &inv)
		if len(inv.Actors) != 1 || inv.Actors[0].ID != echo.Key || len(inv.Actors[0].Instances) != 1 {
			return fmt.Errorf("restarted host's actors: %+v", inv.Actors)
		}
		return nil
	})
	// The provider never noticed, and the restarted host lists it.
	if len(inv.Providers) != 1 || inv.Providers[0].ID != p.key || inv.Providers[0].State != child.StateRunning {
		t.Errorf("restarted host's providers: %+v", inv.Providers)
	}
	p.mu.Lock()
	same := p.pid() == provPID && p.child.Status().Restarts == 0
	p.mu.Unlock()
	if !same {
		t.Error("the provider was restarted with the host")
	}
	if v := testutil.ToFloat64(n.m.ChildRestarts.WithLabelValues(roleHost, string(child.ExitCrash))); v != 1 {
		t.Errorf("child_restarts_total{host,crash} = %v, want 1", v)
	}
}

// waitEvent waits for an event of type typ whose JSON contains substr.
func waitEvent(t *testing.T, events <-chan *nats.Msg, typ, substr string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-events:
			s := string(m.Data)
			if strings.Contains(s, `"type":"`+lattice.EventTypePrefix+typ+`"`) && strings.Contains(s, substr) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event mentioning %q", typ, substr)
		}
	}
}

func TestControlInterfaceProviderCommandsGoThroughTheSupervisor(t *testing.T) {
	n := startNode(t, nil)
	ctl := lattice.NewCtl("", "default")
	ref := "file://" + providerBin
	ack := func(cmd string, body any) lattice.Ack {
		var a lattice.Ack
		n.ctlRequest(ctl.Cmd(n.s.HostID(), cmd), body, &a)
		return a
	}
	if a := ack(lattice.CmdLaunchProvider, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "one"}); !a.Accepted {
		t.Fatalf("lp: %+v", a)
	}
	if a := ack(lattice.CmdLaunchProvider, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "two"}); !a.Accepted {
		t.Fatalf("lp: %+v", a)
	}
	if a := ack(lattice.CmdLaunchProvider, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "one"}); a.Accepted || !strings.Contains(a.Error, "already runs") {
		t.Errorf("second lp of the same provider and link: %+v", a)
	}
	if a := ack(lattice.CmdLaunchProvider, lattice.LaunchProviderCommand{ProviderRef: "builtin:nope"}); a.Accepted || !strings.Contains(a.Error, "unknown built-in provider") {
		t.Errorf("lp of an unknown built-in: %+v", a)
	}
	if a := ack(lattice.CmdLaunchProvider, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: "a.>"}); a.Accepted {
		t.Errorf("lp with a wildcard link name was accepted")
	}
	n.waitProviderState(ref, "one", child.StateRunning)
	n.waitProviderState(ref, "two", child.StateRunning)

	var inv lattice.HostInventory
	n.ctlRequest(ctl.GetInventory(n.s.HostID()), struct{}{}, &inv)
	if len(inv.Providers) != 2 || inv.Providers[0].State != child.StateRunning || inv.Providers[0].Revocation != "" {
		t.Errorf("inventory providers: %+v", inv.Providers)
	}

	if a := ack(lattice.CmdRevoke, lattice.StopProviderCommand{ProviderRef: ref, LinkName: "one"}); !a.Accepted {
		t.Fatalf("revoke: %+v", a)
	}
	if d, _ := n.provider(ref, "one"); d.State != child.StateRevoked {
		t.Errorf("after ctl revoke: %+v", d)
	}
	// sp: shutdown message, clean exit, off the list.
	if a := ack(lattice.CmdStopProvider, lattice.StopProviderCommand{ProviderRef: ref, LinkName: "two"}); !a.Accepted {
		t.Fatalf("sp: %+v", a)
	}
	if _, ok := n.provider(ref, "two"); ok {
		t.Error("stopped provider still listed")
	}
	if !strings.Contains(n.logs.String(), `"msg":"shutdown received"`) {
		t.Error("the provider did not get its shutdown message")
	}
	if v := testutil.ToFloat64(n.m.ChildExits.WithLabelValues(roleProvider, string(child.ExitCleanStop))); v != 1 {
		t.Errorf("child_exits_total{provider,clean_stop} = %v", v)
	}
}

func TestUnhealthyProviderIsRestartedForFailingHealthChecks(t *testing.T) {
	n := startNodeWith(t, nil, func(s *Supervisor) { s.providerStartup = 300 * time.Millisecond })
	ref := "file://" + providerBin
	n.launch(ref, "default", `{"mode": "unhealthy"}`)
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if v := testutil.ToFloat64(n.m.ChildRestarts.WithLabelValues(roleProvider, string(child.ExitHealthCheck))); v < 1 {
			return fmt.Errorf("no restart for failed health checks yet")
		}
		return nil
	})
	d, _ := n.provider(ref, "default")
	if !strings.HasPrefix(d.ExitReason, string(child.ExitHealthCheck)) && d.State != child.StateFailed {
		t.Errorf("exit reason %q", d.ExitReason)
	}
}

// A health-check kill ends one run, not the provider: the next run starts
// clean, passes its checks and stays up (it used to be killed at once on
// every restart until the crash-loop limit marked it failed).
func TestProviderThatRecoversAfterAHealthCheckKillIsRestartedOnceAndStaysUp(t *testing.T) {
	n := startNode(t, map[string]string{config.EnvHealthInterval: "100ms"})
	ref := "file://" + relapseBin
	marker := filepath.Join(t.TempDir(), "ran")
	n.launch(ref, "default", `{"marker": "`+marker+`"}`)
	restarts := func() float64 {
		return testutil.ToFloat64(n.m.ChildRestarts.WithLabelValues(roleProvider, string(child.ExitHealthCheck)))
	}
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if v := restarts(); v < 1 {
			return fmt.Errorf("not restarted for failed health checks yet")
		}
		return nil
	})
	// The later run must pass many checks in a row (2 s at 100 ms), and
	// nothing may happen to it meanwhile.
	const stable = 20
	laterChecks := regexp.MustCompile(`"msg":"health check answered"[^\n]*"healthy":true[^\n]*"run":"later"`)
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		d, _ := n.provider(ref, "default")
		if d.State == child.StateFailed || d.Restarts > 1 || restarts() > 1 {
			t.Fatalf("the recovered provider was restarted again: state %s, restarts %d, exit %q", d.State, d.Restarts, d.ExitReason)
		}
		if c := len(laterChecks.FindAllString(n.logs.String(), -1)); c < stable {
			return fmt.Errorf("the restarted run passed %d health checks, want %d; state %s", c, stable, d.State)
		}
		return nil
	})
	d, _ := n.provider(ref, "default")
	if d.State != child.StateRunning || d.Restarts != 1 || !strings.HasPrefix(d.ExitReason, string(child.ExitHealthCheck)) {
		t.Errorf("after recovery: state %s, restarts %d, last exit %q; want running, 1, %s", d.State, d.Restarts, d.ExitReason, child.ExitHealthCheck)
	}
	for _, r := range []child.ExitReason{child.ExitCrash, child.ExitCrashLoop} {
		if v := testutil.ToFloat64(n.m.ChildExits.WithLabelValues(roleProvider, string(r))); v != 0 {
			t.Errorf("child_exits_total{provider,%s} = %v, want 0", r, v)
		}
	}
}

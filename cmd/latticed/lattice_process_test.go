package main

// Issue 7 acceptance at process level: real `latticed up` processes (the
// binary TestMain builds) on one real nats-server (the pinned binary),
// managed with the real `latticed ctl`.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// upNode is one `latticed up` process connected to an external NATS server.
type upNode struct {
	name        string
	hostID      string // from its WASMCLOUD_HOST_SEED
	metricsAddr string
	cmd         *exec.Cmd
	exited      chan struct{}
	logs        *testenv.SyncBuffer
}

// startUpNode runs `latticed up` with its own data dir, host seed and
// metrics port, on srv with the given prefix, cluster seed and issuers. It
// is stopped (SIGTERM, then SIGKILL) and reaped at test end.
func startUpNode(t *testing.T, name string, srv *testenv.ExternalServer, prefix string, cluster *trust.KeyPair, issuers []string) *upNode {
	t.Helper()
	hostKey, err := trust.CreateKeyPair(lattice.KindServer)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	n := &upNode{
		name: name, hostID: hostKey.PublicKey(),
		metricsAddr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		exited:      make(chan struct{}), logs: &testenv.SyncBuffer{},
	}
	port := strconv.Itoa(srv.Port)
	env := map[string]string{
		"HOME":                       filepath.Join(root, "home"),
		config.EnvDataDir:            filepath.Join(root, "data"),
		config.EnvMetricsAddr:        n.metricsAddr,
		config.EnvLogLevel:           "warn",
		config.EnvLatticePrefix:      prefix,
		config.EnvClusterSeed:        cluster.Seed(),
		config.EnvClusterIssuers:     strings.Join(issuers, ","),
		config.EnvHostSeed:           hostKey.Seed(),
		config.EnvRPCHost:            "127.0.0.1",
		config.EnvRPCPort:            port,
		config.EnvCtlHost:            "127.0.0.1",
		config.EnvCtlPort:            port,
		config.EnvAllowFileLoad:      "true",
		config.EnvLabelPrefix + "up": name,
	}
	n.cmd = exec.Command(binPath, "up")
	n.cmd.Env = nodeEnviron(env)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
			t.Errorf("latticed up %s did not stop on SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("latticed up %s (host %s) logs:\n%s", name, n.hostID, n.logs.String())
		}
	})
	return n
}

// kill sends SIGKILL to the supervisor (no clean stop, nothing published)
// and reaps it.
func (n *upNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.exited
}

// counter is the value of the counter family name with exactly the given
// labels on the node's /metrics (its children's merged in); 0 when absent.
func (n *upNode) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + n.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("%s /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s /metrics: %v", n.name, err)
	}
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// served is how many Echo.Echo invocations of actor the node answered.
func (n *upNode) served(t *testing.T, actor string) float64 {
	t.Helper()
	return n.counter(t, metrics.Namespace+"_invocations_total", map[string]string{"actor": actor, "operation": "Echo.Echo", "result": metrics.ResultOK})
}

// hostIDs runs the real `latticed ctl get hosts` and returns the IDs it lists.
func hostIDs(t *testing.T, e *ctlEnv) ([]string, error) {
	t.Helper()
	r := e.run("ctl", "get", "hosts", "--timeout", "300ms", "--output", "json")
	if r.code != 0 {
		return nil, fmt.Errorf("ctl get hosts: exit %d: %s", r.code, r.stderr)
	}
	var hosts []lattice.HostInfo
	if err := envelopeValue(r.stdout, "hosts", &hosts); err != nil {
		return nil, fmt.Errorf("ctl get hosts: %v\n%s", err, r.stdout)
	}
	ids := make([]string, 0, len(hosts))
	for _, h := range hosts {
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

func sortedIDs(nodes ...*upNode) []string {
	ids := make([]string, 0, len(nodes))
	for _, n := range nodes {
		ids = append(ids, n.hostID)
	}
	slices.Sort(ids)
	return ids
}

// startActorOn starts the signed actor file on node n with the real ctl.
func startActorOn(t *testing.T, e *ctlEnv, n *upNode, sa testenv.SignedActor) {
	t.Helper()
	var started struct {
		ActorID string `json:"actor_id"`
	}
	e.json(&started, "", "ctl", "start", "actor", "file://"+sa.Path, "--host-id", n.hostID)
	if started.ActorID != sa.Key {
		t.Fatalf("start on %s reported actor %q, want %s", n.name, started.ActorID, sa.Key)
	}
}

// forwardData is the ctl call --data that makes the hostcall actor call
// Echo.Echo on target with payload.
func forwardData(target, payload string) string {
	return fmt.Sprintf(`{"namespace":%q,"operation":"Echo.Echo","payload":%q}`, target, payload)
}

// procChildren lists the direct children of pid (from /proc).
func procChildren(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(child); ok && ppid == pid && state != "Z" {
			out = append(out, child)
		}
	}
	return out
}

// procStat is the state and parent of pid; ok is false once it is gone.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b) // pid (comm) state ppid ...
	if _, err := fmt.Sscan(s[strings.LastIndexByte(s, ')')+2:], &state, &ppid); err != nil {
		return "", 0, false
	}
	return state, ppid, true
}

// TestLatticeOfUpProcesses: three `latticed up` processes with the same
// prefix and issuers (each its own cluster seed) on one real nats-server form
// one lattice: ctl get hosts lists them, an actor on A calls an actor on C
// and a provider on B, an actor on A and B shares load, a frozen or killed
// node leaves get hosts and its callers get errors within their timeouts. A
// fourth with another prefix on the same server is a lattice of its own.
func TestLatticeOfUpProcesses(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	keys := make([]*trust.KeyPair, 4)
	for i := range keys {
		k, err := trust.CreateKeyPair(lattice.KindCluster)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	issuers := []string{keys[0].PublicKey(), keys[1].PublicKey(), keys[2].PublicKey()}
	const prefix, otherPrefix = "proclat", "procother"
	nodesStarted := time.Now()
	a := startUpNode(t, "A", srv, prefix, keys[0], issuers)
	b := startUpNode(t, "B", srv, prefix, keys[1], issuers)
	c := startUpNode(t, "C", srv, prefix, keys[2], issuers)
	d := startUpNode(t, "D", srv, otherPrefix, keys[3], []string{keys[3].PublicKey()})

	ctlFor := func(prefix string, signer *trust.KeyPair) *ctlEnv {
		return newCtlEnv(t, map[string]string{
			config.EnvCtlHost: "127.0.0.1", config.EnvCtlPort: strconv.Itoa(srv.Port),
			config.EnvLatticePrefix: prefix, config.EnvClusterSeed: signer.Seed(),
		})
	}
	// ctl calls are signed with A's cluster key, which B and C trust.
	e := ctlFor(prefix, keys[0])
	other := ctlFor(otherPrefix, keys[3])

	// Build and sign the actors while the nodes start.
	dir := t.TempDir()
	fwd := testenv.SignActor(t, dir, "./internal/testing/actors/hostcall", trust.SignActorOptions{Name: "fwd"})
	echoC := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo-c", CallAlias: "echo-c"})
	shared := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "shared"})
	kvc := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{Name: "kvcounter", Caps: []string{wire.ContractKeyValue}})

	want, wantOther := sortedIDs(a, b, c), sortedIDs(d)
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		for _, n := range []*upNode{a, b, c, d} {
			select {
			case <-n.exited:
				t.Fatalf("latticed up %s exited: %v\n%s", n.name, n.cmd.ProcessState, n.logs.String())
			default:
			}
		}
		got, err := hostIDs(t, e)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("ctl get hosts lists %v, want %v", got, want)
		}
		return nil
	})
	t.Logf("the three nodes listed by ctl get hosts %v after their processes started (actors built meanwhile)", time.Since(nodesStarted).Round(time.Millisecond))

	t.Run("get hosts lists the three nodes with their issuers", func(t *testing.T) {
		var hosts []lattice.HostInfo
		e.json(&hosts, "hosts", "ctl", "get", "hosts", "--timeout", "500ms")
		if len(hosts) != 3 {
			t.Fatalf("ctl get hosts: %d hosts, want 3: %+v", len(hosts), hosts)
		}
		for _, h := range hosts {
			if h.LatticePrefix != prefix || !slices.Contains(want, h.ID) {
				t.Errorf("host %s in lattice %q, want one of %v in %s", h.ID, h.LatticePrefix, want, prefix)
			}
			for _, k := range issuers {
				if !strings.Contains(h.ClusterIssuers, k) {
					t.Errorf("host %s cluster_issuers %q lacks %s", h.ID, h.ClusterIssuers, k)
				}
			}
		}
		r := e.run("ctl", "get", "hosts", "--timeout", "500ms")
		r.want(t, 0)
		mustContain(t, "ctl get hosts", r.stdout, a.hostID, b.hostID, c.hostID, "up=A", "up=B", "up=C")
	})

	t.Run("prefixes on one server are isolated", func(t *testing.T) {
		got, err := hostIDs(t, other)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, wantOther) {
			t.Fatalf("ctl get hosts in %s lists %v, want only its own host %v", otherPrefix, got, wantOther)
		}
		if got, err = hostIDs(t, e); err != nil || !slices.Equal(got, want) {
			t.Fatalf("ctl get hosts in %s lists %v (%v), want %v", prefix, got, err, want)
		}
	})

	t.Run("actor on A calls actor on C", func(t *testing.T) {
		startActorOn(t, e, a, fwd)
		startActorOn(t, e, c, echoC)
		r := e.run("ctl", "call", fwd.Key, "Call.Forward", "--data", forwardData(echoC.Key, "from A"), "--raw", "--timeout", "10s")
		r.want(t, 0)
		if r.stdout != "from A" {
			t.Fatalf("reply %q, want %q", r.stdout, "from A")
		}
		// By call alias: host A resolves it from the claims that C's start
		// put in the cache stream (until then A answers that it cannot
		// identify the target).
		testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			r := e.run("ctl", "call", fwd.Key, "Call.Forward", "--data", forwardData("echo_c", "by alias"), "--raw", "--timeout", "10s")
			if r.code != 0 || r.stdout != "by alias" {
				return fmt.Errorf("call by alias: exit %d, %q %s", r.code, r.stdout, r.stderr)
			}
			return nil
		})
		// A host counts an invocation just after replying: poll.
		fwdOK := func() float64 {
			return a.counter(t, metrics.Namespace+"_invocations_total", map[string]string{"actor": fwd.Key, "operation": "Call.Forward", "result": metrics.ResultOK})
		}
		testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if got, fwds := c.served(t, echoC.Key), fwdOK(); got != 2 || fwds != 2 {
				return fmt.Errorf("node C answered %v Echo.Echo calls, node A %v Call.Forward calls; want 2 each", got, fwds)
			}
			return nil
		})
		for _, n := range []*upNode{a, b} {
			if got := n.served(t, echoC.Key); got != 0 {
				t.Fatalf("node %s answered %v calls of an actor it does not run", n.name, got)
			}
		}
		// The other lattice cannot reach C's actor by key.
		r = other.run("ctl", "call", echoC.Key, "Echo.Echo", "--data", `"x"`, "--timeout", "5s")
		r.want(t, 1)
		mustContain(t, "call across prefixes", r.stderr, "no responders")
	})

	t.Run("actor on A calls provider on B", func(t *testing.T) {
		kv, ok := builtin.Lookup("builtin:keyvalue")
		if !ok {
			t.Fatal("no builtin:keyvalue")
		}
		startActorOn(t, e, a, kvc)
		e.run("ctl", "start", "provider", "builtin:keyvalue", "--host-id", b.hostID).want(t, 0)
		testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			var inv lattice.HostInventory
			e.json(&inv, "inventory", "ctl", "get", "inventory", b.hostID)
			if len(inv.Providers) != 1 || inv.Providers[0].State != "running" {
				return fmt.Errorf("node B providers: %+v", inv.Providers)
			}
			return nil
		})
		e.run("ctl", "link", "put", kvc.Key, kv.Key(), wire.ContractKeyValue).want(t, 0)
		provided := func(n *upNode) float64 {
			return n.counter(t, metrics.Namespace+"_provider_invocations_total", map[string]string{"operation": wire.OpKVIncrement, "result": metrics.ResultOK})
		}
		// Until A knows the link (from the cache stream) the actor answers 500.
		counter := func() (int, error) {
			r := e.run("ctl", "call", kvc.Key, "HttpServer.HandleRequest", "--timeout", "5s",
				"--data", `{"method":"GET","path":"/","queryString":"","header":{},"body":""}`)
			r.want(t, 0)
			var resp struct {
				StatusCode int    `json:"statusCode"`
				Body       string `json:"body"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
				t.Fatalf("reply: %v\n%s", err, r.stdout)
			}
			var body struct {
				Counter int `json:"counter"`
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &body) != nil {
				return 0, fmt.Errorf("status %d: %s", resp.StatusCode, resp.Body)
			}
			return body.Counter, nil
		}
		var first int
		testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() (err error) {
			first, err = counter()
			return err
		})
		if second, err := counter(); err != nil || second != first+1 {
			t.Fatalf("counter %d then %d (%v), want consecutive", first, second, err)
		}
		testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if got := provided(b); got < 2 {
				return fmt.Errorf("node B's provider answered %v increments, want at least 2", got)
			}
			return nil
		})
		if got := provided(a); got != 0 {
			t.Fatalf("node A, which runs no provider, answered %v increments", got)
		}
	})

	t.Run("actor on A and B shares load", func(t *testing.T) {
		startActorOn(t, e, a, shared)
		startActorOn(t, e, b, shared)
		calls := 0
		testenv.CheckFor(t, 30*time.Second, 0, func() error {
			for range 4 {
				r := e.run("ctl", "call", shared.Key, "Echo.Echo", "--data", `"s"`, "--timeout", "5s")
				r.want(t, 0)
				calls++
			}
			onA, onB := a.served(t, shared.Key), b.served(t, shared.Key)
			if onA+onB > float64(calls) {
				t.Fatalf("after %d calls A answered %v and B %v", calls, onA, onB)
			}
			if onA == 0 || onB == 0 || onA+onB < float64(calls) { // counted just after the reply
				return fmt.Errorf("after %d calls: A answered %v, B %v", calls, onA, onB)
			}
			t.Logf("%d ctl calls of the actor on A and B: A answered %v, B %v", calls, onA, onB)
			return nil
		})
	})

	// A node that hangs instead of dying keeps its NATS connections (the
	// server notices only by its own pings, minutes later), so its
	// subscriptions stay: it leaves get hosts at once (it does not answer),
	// and the calls the queue group still hands it end with a timeout error
	// at the caller's timeout, not a hang.
	t.Run("a frozen node leaves get hosts and calls handed to it time out", func(t *testing.T) {
		// The whole node: supervisor, host and the key-value provider.
		pids := append([]int{b.cmd.Process.Pid}, procChildren(t, b.cmd.Process.Pid)...)
		if len(pids) != 3 {
			t.Fatalf("latticed up B and its children: %v, want it, its host and its provider", pids)
		}
		frozen := time.Now()
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		})
		var gone time.Duration
		testenv.CheckFor(t, 30*time.Second, 0, func() error {
			sent := time.Since(frozen)
			got, err := hostIDs(t, e)
			if err != nil {
				return err
			}
			if slices.Contains(got, b.hostID) {
				return fmt.Errorf("ctl get hosts still lists the frozen node: %v", got)
			}
			gone = sent
			return nil
		})
		t.Logf("frozen node: the first ctl get hosts without B was started %.3fs after SIGSTOP", gone.Seconds())

		const timeout = time.Second
		var ok, timedOut int
		var slowest time.Duration
		for i := 0; i < 16 && (ok == 0 || timedOut == 0); i++ {
			start := time.Now()
			r := e.run("ctl", "call", shared.Key, "Echo.Echo", "--data", `"f"`, "--timeout", timeout.String())
			took := time.Since(start)
			slowest = max(slowest, took)
			switch r.code {
			case 0:
				ok++
			case 1:
				timedOut++
				mustContain(t, "call handed to the frozen node", r.stderr, "timeout")
				if took < timeout || took > timeout+2*time.Second {
					t.Fatalf("a call handed to the frozen node ended after %v, its timeout is %v: %s", took, timeout, r.stderr)
				}
				if timedOut == 1 {
					t.Logf("frozen node: a call the queue group handed to B: exit 1 after %.3fs: %s", took.Seconds(), strings.TrimSpace(r.stderr))
				}
			default:
				t.Fatalf("ctl call: exit %d: %s", r.code, r.stderr)
			}
		}
		t.Logf("frozen node: calls of the actor on A and frozen B: %d answered (by A), %d timed out (handed to B); slowest %.3fs with --timeout %v",
			ok, timedOut, slowest.Seconds(), timeout)
		if ok == 0 || timedOut == 0 {
			t.Fatalf("%d calls answered, %d timed out; want both (the queue group still holds B's subscription)", ok, timedOut)
		}
	})

	t.Run("a killed node leaves get hosts and its actor's callers get errors", func(t *testing.T) {
		children := procChildren(t, c.cmd.Process.Pid)
		if len(children) != 1 {
			t.Fatalf("latticed up C has children %v, want its host", children)
		}
		const timeout = 5 * time.Second
		killed := time.Now()
		c.kill(t)

		// A caller right after the kill: an error, within its timeout.
		callAt := time.Since(killed)
		r := e.run("ctl", "call", echoC.Key, "Echo.Echo", "--data", `"x"`, "--timeout", timeout.String())
		firstCall := time.Since(killed) - callAt
		r.want(t, 1)
		if firstCall > timeout+2*time.Second || strings.TrimSpace(r.stderr) == "" {
			t.Fatalf("call right after the kill took %v (timeout %v): %q", firstCall, timeout, r.stderr)
		}
		t.Logf("node death: ctl call of the actor only on C, sent %.3fs after SIGKILL, exited 1 after %.3fs: %s",
			callAt.Seconds(), firstCall.Seconds(), strings.TrimSpace(r.stderr))

		// The first get hosts that no longer lists C; when it was started.
		var gone, answered time.Duration
		polls := 0
		testenv.CheckFor(t, 30*time.Second, 0, func() error {
			sent := time.Since(killed)
			polls++
			got, err := hostIDs(t, e)
			if err != nil {
				return err
			}
			if slices.Contains(got, c.hostID) {
				return fmt.Errorf("ctl get hosts still lists the killed node: %v", got)
			}
			if want := sortedIDs(a, b); !slices.Equal(got, want) {
				t.Fatalf("after the kill ctl get hosts lists %v, want %v", got, want)
			}
			gone, answered = sent, time.Since(killed)
			return nil
		})
		t.Logf("node death: ctl get hosts #%d, started %.3fs after SIGKILL (answered at %.3fs), is the first without C", polls, gone.Seconds(), answered.Seconds())

		// The host child died with its supervisor (no orphan keeps serving).
		testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			for _, pid := range children {
				if state, _, ok := procStat(pid); ok && state != "Z" {
					return fmt.Errorf("host child %d of the killed node is still alive (%s)", pid, state)
				}
			}
			return nil
		})

		// Callers now: a ctl client, and the actor on A, both get a clean
		// error well within their timeouts: "no responders" for the client,
		// wasmCloud's host-call text for the actor (docs/protocol.md §5).
		start := time.Now()
		r = e.run("ctl", "call", echoC.Key, "Echo.Echo", "--data", `"x"`, "--timeout", timeout.String())
		direct := time.Since(start)
		r.want(t, 1)
		mustContain(t, "call of the dead node's actor", r.stderr, "no responders")
		t.Logf("node death: ctl call of the actor only on C: exit 1 after %.3fs: %s", direct.Seconds(), strings.TrimSpace(r.stderr))
		start = time.Now()
		r = e.run("ctl", "call", fwd.Key, "Call.Forward", "--data", forwardData(echoC.Key, "x"), "--raw", "--timeout", timeout.String())
		viaActor := time.Since(start)
		r.want(t, 1)
		mustContain(t, "actor call of the dead node's actor", r.stderr, "Host call function failed: Failed to perform RPC call: request timeout")
		t.Logf("node death: A's actor calling it: exit 1 after %.3fs: %s", viaActor.Seconds(), strings.TrimSpace(r.stderr))
		if direct > timeout/2 || viaActor > timeout/2 {
			t.Fatalf("errors took %v and %v; no responders should be immediate", direct, viaActor)
		}
		// The survivors still serve.
		r = e.run("ctl", "call", shared.Key, "Echo.Echo", "--data", `"after"`, "--timeout", timeout.String())
		r.want(t, 0)
	})
}

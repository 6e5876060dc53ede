package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// Binaries built once by TestMain: the latticed command (the host child)
// and the test provider.
var (
	latticedBin  string
	providerBin  string
	providerBin2 string // the same program, another file: another provider key
	relapseBin   string // a provider written with the SDK that fails health checks in its first run only
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latticed-supervisor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	latticedBin = filepath.Join(dir, "latticed")
	providerBin = filepath.Join(dir, "testprovider")
	providerBin2 = filepath.Join(dir, "testprovider2")
	relapseBin = filepath.Join(dir, "relapseprovider")
	for _, b := range []struct{ out, pkg string }{
		{latticedBin, "../../cmd/latticed"},
		{providerBin, "./testdata/testprovider"},
		{relapseBin, "./testdata/relapseprovider"},
	} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	// A second copy with one extra byte appended: a different SHA-256, so a
	// different provider key, same behaviour.
	b, _ := os.ReadFile(providerBin)
	if err := os.WriteFile(providerBin2, append(b, 0), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// Every supervisor, server and connection a test started is gone.
		if err := goleak.Find(goleakIgnore...); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %v\n", err)
			code = 1
		}
	}
	testenv.CleanupBuilds()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goleakIgnore lists goroutines that outlive tests by design: the spawner
// thread (it must never exit, see internal/child's spawnRequests) and nats-server's
// process-wide helpers.
var goleakIgnore = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/latticed/latticed/internal/child.init.func1.1"),
}

// node is a supervisor running in the test process, its host and providers
// real child processes, its NATS embedded.
type node struct {
	t       testing.TB
	s       *Supervisor
	cfg     *config.Config
	env     []string
	logs    *testenv.SyncBuffer
	cluster *trust.KeyPair
	admin   *admin.Client
	nc      *nats.Conn // admin.creds
	cancel  context.CancelFunc
	done    chan error
	m       *metrics.Metrics
}

// waitBound marks a test that spends most of its run waiting, not working:
// for requests NATS never answers (each refused publish of a permission
// test waits out its timeout), for a provider's grant wait, for
// credentials to expire. Such tests run in parallel with each other, after
// the package's other tests, so their waits overlap: this package is the
// long pole of make test's time budget.
func waitBound(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// startNode starts a supervisor with test-friendly timings; env overrides.
func startNode(t testing.TB, env map[string]string, actors ...string) *node {
	t.Helper()
	return startNodeWith(t, env, nil, actors...)
}

// startNodeWith is startNode with tweak applied to the supervisor before it
// runs. The data dir is new unless env names one (a restart).
func startNodeWith(t testing.TB, env map[string]string, tweak func(*Supervisor), actors ...string) *node {
	t.Helper()
	dir := env[config.EnvDataDir]
	if dir == "" {
		dir = t.TempDir()
	}
	cluster, _, err := datadir.LoadOrCreateKey(datadir.Path(dir, datadir.ClusterSeedFile), lattice.KindCluster)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		config.EnvDataDir: dir, config.EnvNATSListen: "127.0.0.1:0", config.EnvMetricsAddr: "127.0.0.1:0",
		config.EnvAllowFileLoad: "true", config.EnvRestartBackoff: "50ms", config.EnvRestartBackoffMax: "1s",
		config.EnvCrashLoopCount: "5", config.EnvCrashLoopWindow: "1m", config.EnvStopGrace: "5s",
		config.EnvHealthInterval: "500ms", config.EnvLogLevel: "debug",
		config.EnvConsoleAddr: "", // no console unless a test asks: many nodes run at once
		"PATH":                os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
	}
	for k, v := range env {
		vars[k] = v
	}
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	cfg, _, err := config.LoadEnviron(nil, environ)
	if err != nil {
		t.Fatal(err)
	}
	host, err := trust.CreateKeyPair(lattice.KindServer)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	m := metrics.New()
	s, err := New(cfg.Supervisor(), Options{
		Executable: latticedBin, Environ: environ, StartActors: actors,
		ClusterKey: cluster, HostKey: host, Logger: testenv.JSONLogger(logs), Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{t: t, s: s, cfg: cfg, env: environ, logs: logs, cluster: cluster, cancel: cancel, done: make(chan error, 1), m: m}
	go func() { n.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		n.stop()
		n.assertNoChildLeft()
		if t.Failed() || os.Getenv("LATTICED_TEST_LOGS") != "" {
			t.Logf("supervisor log:\n%s", tail(logs.String(), 200))
		}
	})
	select {
	case <-s.Ready():
	case err := <-n.done:
		n.done <- err
		t.Fatalf("supervisor ended before it was ready: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("supervisor not ready in 60s\n%s", logs.String())
	}
	n.admin = admin.NewClient(s.AdminSocket(), nil)
	creds, url := datadir.Path(dir, datadir.AdminCredsFile), s.NATSURL()
	if !cfg.EmbeddedNATS() {
		creds, url = cfg.CTL.CredsFile, cfg.CTL.URL()
	}
	opts := []nats.Option{}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	n.nc = nc
	return n
}

// stop cancels the supervisor and waits for Run (idempotent).
func (n *node) stop() error {
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err
		return err
	case <-time.After(30 * time.Second):
		n.t.Fatal("supervisor did not stop within 30s")
		return nil
	}
}

// assertNoChildLeft checks that every process the supervisor started, and
// everything in their process groups, is gone.
func (n *node) assertNoChildLeft() {
	n.t.Helper()
	for _, sp := range n.s.spawned() {
		if err := syscall.Kill(sp.pid, 0); !errors.Is(err, syscall.ESRCH) {
			n.t.Errorf("child %s (pid %d) still exists after the supervisor stopped (kill 0: %v)", sp.name, sp.pid, err)
			_ = syscall.Kill(-sp.pid, syscall.SIGKILL)
		}
		if err := syscall.Kill(-sp.pid, 0); !errors.Is(err, syscall.ESRCH) {
			n.t.Errorf("process group of child %s (pid %d) still has members", sp.name, sp.pid)
			_ = syscall.Kill(-sp.pid, syscall.SIGKILL)
		}
	}
}

func (n *node) launch(ref, link, configJSON string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.admin.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: link, Configuration: configJSON}); err != nil {
		n.t.Fatalf("launch %s: %v", ref, err)
	}
}

// provider returns the description of the provider ref/link.
func (n *node) provider(ref, link string) (lattice.ProviderDescription, bool) {
	for _, p := range n.s.Providers() {
		if p.ImageRef == ref && p.LinkName == link {
			return p, true
		}
	}
	return lattice.ProviderDescription{}, false
}

func (n *node) waitProviderState(ref, link, state string) lattice.ProviderDescription {
	n.t.Helper()
	var d lattice.ProviderDescription
	testenv.CheckFor(n.t, 30*time.Second, 10*time.Millisecond, func() error {
		var ok bool
		if d, ok = n.provider(ref, link); !ok {
			return fmt.Errorf("provider %s/%s not listed", ref, link)
		}
		if d.State != state {
			return fmt.Errorf("provider %s/%s is %s (%s), want %s", ref, link, d.State, d.ExitReason, state)
		}
		return nil
	})
	return d
}

// instance is the live providerInstance for ref/link.
func (n *node) instance(ref, link string) *providerInstance {
	n.t.Helper()
	p, err := n.s.findProvider(lattice.StopProviderCommand{ProviderRef: ref, LinkName: link})
	if err != nil {
		n.t.Fatal(err)
	}
	return p
}

// invokeEcho calls Echo.Echo on actor through NATS, signed with the cluster key.
func (n *node) invokeEcho(ctx context.Context, actor string, payload []byte) ([]byte, error) {
	origin := lattice.Entity{PublicKey: "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"}
	return rpc.Invoke(ctx, n.nc, n.cluster, n.s.HostID(), origin, lattice.ActorEntity(actor),
		lattice.RPCActor(n.cfg.LatticePrefix, actor), "Echo.Echo", payload)
}

// ctlRequest sends a control request with the admin creds and decodes the reply.
func (n *node) ctlRequest(subject string, body any, out any) {
	n.t.Helper()
	msg, err := n.nc.Request(subject, mustJSON(body), 30*time.Second)
	if err != nil {
		n.t.Fatalf("ctl %s: %v", subject, err)
	}
	if err := jsonUnmarshal(msg.Data, out); err != nil {
		n.t.Fatalf("ctl %s: %v (%s)", subject, err, msg.Data)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(collapseRepeats(s), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// getOK GETs url (2 s at most) and wants a 200.
func getOK(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// volatileField matches the JSON log fields that differ between repeats of
// one event (its time, a request's id).
var volatileField = regexp.MustCompile(`"(time|request_id)":"[^"]*",?`)

// collapseRepeats drops a log line that differs only in its volatile fields
// from one of the few lines printed just before it, and counts it there, so
// a failure's log shows how a condition began, not only the last of a
// poll's thousand identical errors; a repeat after other events is kept,
// as the order of events matters.
func collapseRepeats(s string) string {
	const window = 8 // lines: a poll's cycle of a few errors collapses
	var out []string
	var repeats []int
	last := map[string]int{} // line without volatile fields → its index in out
	for _, line := range strings.Split(s, "\n") {
		k := volatileField.ReplaceAllString(line, "")
		if i, ok := last[k]; ok && k != "" && i >= len(out)-window {
			repeats[i]++
			continue
		}
		last[k] = len(out)
		out = append(out, line)
		repeats = append(repeats, 0)
	}
	for i, n := range repeats {
		if n > 0 {
			out[i] += fmt.Sprintf("  [repeated %d more times among the next lines]", n)
		}
	}
	return strings.Join(out, "\n")
}

// echoActor builds and signs the echo actor into dir.
func echoActor(t testing.TB) testenv.SignedActor {
	t.Helper()
	return testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
}

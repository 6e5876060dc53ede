package httpserver_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/testing/ptest"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testhost"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// shared holds what tests may reuse: signed actor modules (so the wasm
// compilation cache, shared too, hits across tests).
var shared struct {
	mu       sync.Mutex
	dir      string
	compiled string
	actors   map[string]testenv.SignedActor
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latticed-httpserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared.dir, shared.compiled, shared.actors = dir, filepath.Join(dir, "compiled"), map[string]testenv.SignedActor{}
	code := m.Run()
	os.RemoveAll(dir)
	ptest.Cleanup()
	testenv.CleanupBuilds()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	echoPkg      = "github.com/latticed/latticed/actor/examples/echo"
	kvcounterPkg = "github.com/latticed/latticed/actor/examples/kvcounter"
	httpfailPkg  = "./internal/testing/actors/httpfail"
)

var (
	httpBuiltin, _ = builtin.Lookup("httpserver")
	kvBuiltin, _   = builtin.Lookup("keyvalue")
)

// testLattice is a real lattice node in this process: NATS, a wasm host
// with its control interface, and a cluster key. Providers run as
// subprocesses of the latticed binary.
type testLattice struct {
	url     string
	nc      *nats.Conn
	cluster *trust.KeyPair
	host    *host.Host
	ctl     lattice.Ctl
}

func dial(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newLattice starts the node; tune, if given, changes the host's options.
func newLattice(t testing.TB, url string, tune ...func(*host.Options)) *testLattice {
	t.Helper()
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	hostKey, _ := trust.CreateKeyPair(lattice.KindServer)
	l := &testLattice{url: url, nc: dial(t, url), cluster: cluster, ctl: lattice.NewCtl("", "test")}
	opts := host.Options{
		HostSettings: config.HostSettings{
			LatticePrefix: "test", RPCTimeout: 5 * time.Second, AllowFileLoad: true,
			CompileCacheDir: shared.compiled, MemoryLimitPages: 2048,
		},
		HostKey: hostKey, ClusterKey: cluster,
		RPC: dial(t, url), Ctl: dial(t, url), HeartbeatInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range tune {
		f(&opts)
	}
	h, _ := testhost.Start(t, opts)
	l.host = h
	return l
}

func (l *testLattice) ctlRequest(t testing.TB, subject string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	// As long as the host itself allows (its ctl timeout bounds an actor's
	// compile, which under the race detector and a busy make test takes
	// about 30 s on 2 cores).
	msg, err := l.nc.Request(subject, b, 2*time.Minute)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var ack lattice.Ack
	if err := json.Unmarshal(msg.Data, &ack); err != nil || !ack.Accepted {
		t.Fatalf("%s: %s (%v)", subject, ack.Error, err)
	}
}

// startActor runs pkg signed with caps; the signed module is made once per
// package and capability set.
func (l *testLattice) startActor(t testing.TB, pkg string, caps ...string) testenv.SignedActor {
	t.Helper()
	shared.mu.Lock()
	id := pkg + " " + strings.Join(caps, ",")
	sa, ok := shared.actors[id]
	if !ok {
		sa = testenv.SignActor(t, shared.dir, pkg, trust.SignActorOptions{Name: pkg, Caps: caps})
		shared.actors[id] = sa
	}
	shared.mu.Unlock()
	l.ctlRequest(t, l.ctl.Cmd(l.host.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path, Count: 1})
	return sa
}

// startRustEcho runs the Rust actor (wasmbuild.RustEcho), signed with the
// HTTP server capability, and returns its key.
func (l *testLattice) startRustEcho(t testing.TB) string {
	t.Helper()
	module, err := wasmbuild.RustEcho()
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	mod, _ := trust.CreateKeyPair(lattice.KindModule)
	signed, _, err := trust.SignActor(module, trust.SignActorOptions{Name: "rustecho", Caps: []string{wire.ContractHTTPServer}}, acct, mod)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rustecho_s.wasm")
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	l.ctlRequest(t, l.ctl.Cmd(l.host.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + path, Count: 1})
	return mod.PublicKey()
}

func (l *testLattice) stopActor(t testing.TB, key string) {
	t.Helper()
	l.ctlRequest(t, l.ctl.Cmd(l.host.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: key})
}

// link puts a link definition through the host's control interface; the
// host forwards it to the provider.
func (l *testLattice) link(t testing.TB, actor string, b builtin.Provider, values map[string]string) lattice.LinkDefinition {
	t.Helper()
	ld := lattice.LinkDefinition{ActorID: actor, ProviderID: b.Key(), ContractID: b.Contract, LinkName: "default", Values: values}
	l.ctlRequest(t, l.ctl.LinkdefsPut(), ld)
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	return ld
}

func (l *testLattice) unlink(t testing.TB, ld lattice.LinkDefinition) {
	t.Helper()
	l.ctlRequest(t, l.ctl.LinkdefsDel(), lattice.LinkDefinition{ActorID: ld.ActorID, ContractID: ld.ContractID, LinkName: ld.LinkName})
}

func (l *testLattice) hostData(b builtin.Provider, links ...lattice.LinkDefinition) lattice.HostData {
	return ptest.HostData(l.url, "test", l.host.ID(), l.cluster, b, links...)
}

// port returns a free loopback port and its link values.
func port(t testing.TB) (string, map[string]string) {
	p := strconv.Itoa(testenv.FreePort(t))
	return "http://127.0.0.1:" + p, map[string]string{"PORT": p}
}

type client struct {
	t testing.TB
	c *http.Client
}

func newClient(t testing.TB) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends a request and returns status and body.
func (c *client) do(method, url string, body io.Reader) (int, string, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (c *client) get(url string) (int, string) {
	c.t.Helper()
	code, body, err := c.do(http.MethodGet, url, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return code, body
}

// waitListening polls until url accepts connections (up) or refuses them.
func waitListening(t testing.TB, url string, up bool) {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if c != nil {
			c.Close()
		}
		switch {
		case up && err != nil:
			return err
		case !up && err == nil:
			return fmt.Errorf("%s still accepts connections", addr)
		}
		return nil
	})
}

package ctlclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testhost"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.CleanupBuilds()
	os.Exit(code)
}

const echoPkg = "github.com/latticed/latticed/actor/examples/echo"

// startHost runs a real host on s until the test ends.
func startHost(t *testing.T, s *server.Server, cluster *trust.KeyPair, prefix string, labels map[string]string) *host.Host {
	t.Helper()
	hostKey, err := trust.CreateKeyPair(lattice.KindServer)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := testhost.Start(t, host.Options{
		HostSettings: config.HostSettings{
			LatticePrefix: prefix, AllowFileLoad: true, CompileCacheDir: t.TempDir(), MemoryLimitPages: 1024, Labels: labels,
		},
		HostKey: hostKey, ClusterKey: cluster,
		RPC: testenv.Connect(t, s), Ctl: testenv.Connect(t, s),
		HeartbeatInterval: time.Hour,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return h
}

type testLattice struct {
	c       *Client
	a, b    *host.Host
	cluster *trust.KeyPair
	dir     string
	nats    *server.Server
}

// newLattice is host a (labelled zone=a), with two hosts also host b
// (zone=b), and a client.
//
// Hosts keep claims and links in their own memory for now, and one host of
// a queue group answers get.claims / get.links, so tests of those run with
// a single host.
func newLattice(t *testing.T, twoHosts bool) *testLattice {
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	l := &testLattice{cluster: cluster, dir: t.TempDir(), nats: s}
	l.a = startHost(t, s, cluster, "ct", map[string]string{"zone": "a"})
	if twoHosts {
		l.b = startHost(t, s, cluster, "ct", map[string]string{"zone": "b"})
	}
	l.c = New(testenv.Connect(t, s), "", "ct")
	l.c.Timeout = 10 * time.Second
	return l
}

// stopHost stops h with a control command and waits until it no longer answers pings.
func (l *testLattice) stopHost(t *testing.T, h *host.Host) {
	t.Helper()
	if err := l.c.StopHost(context.Background(), h.ID(), 0); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		hosts, err := l.c.Hosts(context.Background(), 200*time.Millisecond)
		if err != nil {
			return err
		}
		for _, o := range hosts {
			if o.ID == h.ID() {
				return errors.New("host still answers")
			}
		}
		return nil
	})
}

func TestHostsAuctionsAndStart(t *testing.T) {
	l := newLattice(t, true)
	ctx := context.Background()

	hosts, err := l.c.Hosts(ctx, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 {
		t.Fatalf("hosts: %+v, want both", hosts)
	}
	for _, h := range hosts {
		if h.ID != l.a.ID() && h.ID != l.b.ID() || h.LatticePrefix != "ct" {
			t.Errorf("unexpected host info %+v", h)
		}
	}
	if _, err := l.c.SoleHost(ctx, 2*time.Second); err == nil || !strings.Contains(err.Error(), "2 hosts answered") {
		t.Errorf("SoleHost with two hosts: %v", err)
	}

	echo := testenv.SignActor(t, l.dir, echoPkg, trust.SignActorOptions{Name: "echo", CallAlias: "Echo Svc"})
	ref := "file://" + echo.Path
	host, err := l.c.AuctionActor(ctx, ref, map[string]string{"zone": "b"}, time.Second)
	if err != nil || host != l.b.ID() {
		t.Fatalf("auction zone=b: %q %v, want %s", host, err, l.b.ID())
	}
	if _, err := l.c.AuctionActor(ctx, ref, map[string]string{"zone": "c"}, 300*time.Millisecond); !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "no host matches constraints zone=c") {
		t.Errorf("auction zone=c: %v", err)
	}

	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	started, err := l.c.StartActor(sctx, host, lattice.StartActorCommand{ActorRef: ref, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if started.ActorID != echo.Key || started.HostID != l.b.ID() || started.Count != 2 {
		t.Fatalf("started %+v, want %s on %s", started, echo.Key, l.b.ID())
	}
	inv, err := l.c.Inventory(ctx, l.b.ID())
	if err != nil || len(inv.Actors) != 1 || len(inv.Actors[0].Instances) != 2 {
		t.Fatalf("inventory: %+v %v", inv, err)
	}
	if hs, err := l.c.ActorHosts(ctx, echo.Key, 2*time.Second); err != nil || len(hs) != 1 || hs[0] != l.b.ID() {
		t.Fatalf("ActorHosts: %v %v", hs, err)
	}

	// The latticed host verifies before it acks: the refusal is in the ack.
	bad := l.dir + "/unsigned.wasm"
	if err := os.WriteFile(bad, testenv.BuildActor(t, echoPkg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = l.c.StartActor(sctx, l.a.ID(), lattice.StartActorCommand{ActorRef: "file://" + bad})
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "claims") {
		t.Fatalf("unsigned actor: %v, want a refusal about claims", err)
	}

	// Host a goes, so that host b, which knows the actor's claims, answers get.claims.
	l.stopHost(t, l.a)

	// Call by alias, with the normalised and the given spelling.
	for _, alias := range []string{"echo_svc", "Echo Svc"} {
		key, err := l.c.ResolveActor(ctx, alias)
		if err != nil || key != echo.Key {
			t.Fatalf("resolve %q: %q %v", alias, key, err)
		}
	}
	if _, err := l.c.ResolveActor(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "known aliases: echo_svc") {
		t.Errorf("unknown alias: %v", err)
	}
	payload, _ := JSONToMsgpack([]byte(`"ping"`))
	out, err := l.c.Call(ctx, l.cluster, echo.Key, "Echo.Echo", payload)
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := MsgpackToJSON(out); string(js) != `"ping"` {
		t.Errorf("echo reply %s", js)
	}
	stranger, _ := trust.CreateKeyPair(lattice.KindCluster)
	if _, err := l.c.Call(ctx, stranger, echo.Key, "Echo.Echo", payload); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("call signed by an untrusted cluster key: %v", err)
	}
	if _, err := l.c.Call(ctx, l.cluster, echo.Key, "No.Such", nil); err == nil || !strings.Contains(err.Error(), "No.Such") {
		t.Errorf("actor error: %v", err)
	}

	if err := l.c.StopActor(ctx, l.b.ID(), echo.Key, 0); err != nil {
		t.Fatal(err)
	}
	if hs, err := l.c.ActorHosts(ctx, echo.Key, 2*time.Second); err != nil || len(hs) != 0 {
		t.Fatalf("ActorHosts after stop: %v %v", hs, err)
	}
	// The cache still has echo's claims, but no host runs it: its alias is
	// no hint any more.
	quiet := *l.c
	quiet.Quiet = DefaultQuiet
	if _, err := quiet.ResolveActor(ctx, "nope"); err == nil || strings.Contains(err.Error(), "echo_svc") || !strings.Contains(err.Error(), "no running actor has a call alias") {
		t.Errorf("unknown alias with echo stopped: %v", err)
	}
	mistyped := []byte(echo.Key)
	mistyped[20] = map[bool]byte{true: 'B', false: 'A'}[mistyped[20] == 'A']
	if _, err := l.c.ResolveActor(ctx, string(mistyped)); !errors.Is(err, lattice.ErrInvalidKey) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("mistyped actor key: %v, want a checksum error", err)
	}
}

// TestHostsQuietPeriod checks both ends of Quiet: with it, Hosts returns
// every real host long before the window is over; a host that answers
// later than the quiet period is missed, and without Quiet it is counted
// because the whole window is waited out.
func TestHostsQuietPeriod(t *testing.T) {
	l := newLattice(t, true)
	ctx := context.Background()
	const window = 30 * time.Second

	quiet := *l.c
	quiet.Quiet = 100 * time.Millisecond
	start := time.Now()
	hosts, err := quiet.Hosts(ctx, window)
	if err != nil || len(hosts) != 2 {
		t.Fatalf("hosts with Quiet: %+v %v, want both", hosts, err)
	}
	if took := time.Since(start); took > window/2 {
		t.Errorf("Hosts with Quiet %s took %s: it waited out the window", quiet.Quiet, took)
	}

	// A third answer that comes 2.5 s after each ping: a host on a far or
	// overloaded node.
	late := testenv.Connect(t, l.nats)
	lateID := "NLATE"
	sub, err := late.Subscribe(lattice.NewCtl("", "ct").PingHosts(), func(m *nats.Msg) {
		time.AfterFunc(2500*time.Millisecond, func() {
			_ = m.Respond([]byte(`{"id":"` + lateID + `","lattice_prefix":"ct"}`))
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := late.Flush(); err != nil {
		t.Fatal(err)
	}
	has := func(hs []lattice.HostInfo) bool {
		return slices.ContainsFunc(hs, func(h lattice.HostInfo) bool { return h.ID == lateID })
	}
	if hosts, err := quiet.Hosts(ctx, window); err != nil || len(hosts) != 2 || has(hosts) {
		t.Errorf("hosts with Quiet and a late answer: %+v %v, want the two prompt hosts only", hosts, err)
	}
	start = time.Now()
	hosts, err = l.c.Hosts(ctx, 4*time.Second)
	if err != nil || len(hosts) != 3 || !has(hosts) {
		t.Errorf("hosts without Quiet: %+v %v, want the late host too", hosts, err)
	}
	if took := time.Since(start); took < 4*time.Second {
		t.Errorf("Hosts without Quiet returned after %s, before its 4s window", took)
	}
}

func TestLinksLabelsAndUnknownHosts(t *testing.T) {
	l := newLattice(t, false)
	ctx := context.Background()
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	prov, _ := trust.CreateKeyPair(lattice.KindService)

	ld := lattice.LinkDefinition{ActorID: actor.PublicKey(), ProviderID: prov.PublicKey(), ContractID: "wasmcloud:keyvalue", Values: map[string]string{"URL": "x"}}
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := l.c.PutLink(ctx, ld); err != nil {
		t.Fatal(err)
	}
	links, err := l.c.Links(ctx)
	if err != nil || len(links) != 1 || links[0].Values["URL"] != "x" || links[0].LinkName != "default" {
		t.Fatalf("links: %+v %v", links, err)
	}
	if err := l.c.DelLink(ctx, actor.PublicKey(), "wasmcloud:keyvalue", "default"); err != nil {
		t.Fatal(err)
	}
	var rej *RejectedError
	if err := l.c.DelLink(ctx, actor.PublicKey(), "wasmcloud:keyvalue", "default"); !errors.As(err, &rej) {
		t.Fatalf("second delete: %v, want a refusal", err)
	}

	if err := l.c.PutLabel(ctx, l.a.ID(), "tier", "gold"); err != nil {
		t.Fatal(err)
	}
	host, err := l.c.AuctionActor(ctx, "x", map[string]string{"tier": "gold"}, time.Second)
	if err != nil || host != l.a.ID() {
		t.Fatalf("auction by the new label: %q %v", host, err)
	}
	if err := l.c.DelLabel(ctx, l.a.ID(), "tier"); err != nil {
		t.Fatal(err)
	}

	// Providers: these hosts run without a supervisor.
	if _, err := l.c.AuctionProvider(ctx, "p", "default", nil, 300*time.Millisecond); !errors.Is(err, ErrNoHost) {
		t.Errorf("provider auction: %v", err)
	}
	if err := l.c.StartProvider(ctx, l.a.ID(), lattice.LaunchProviderCommand{ProviderRef: "p", LinkName: "default"}); !errors.As(err, &rej) {
		t.Errorf("start provider: %v, want a refusal", err)
	}

	ghost, _ := trust.CreateKeyPair(lattice.KindServer)
	start := time.Now()
	if _, err := l.c.Inventory(ctx, ghost.PublicKey()); !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), ghost.PublicKey()) {
		t.Errorf("inventory of an unknown host: %v", err)
	}
	if err := l.c.StopHost(ctx, ghost.PublicKey(), 0); !errors.Is(err, ErrNoHost) {
		t.Errorf("stop an unknown host: %v", err)
	}
	if err := l.c.PutLabel(ctx, ghost.PublicKey(), "a", "b"); !errors.Is(err, ErrNoHost) {
		t.Errorf("label an unknown host: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("unknown hosts took %s to report: no-responders should answer at once", time.Since(start))
	}

	// A lattice nobody serves: the server's no-responders status ends the
	// ping without waiting for the whole window.
	other := New(l.c.nc, "", "empty")
	start = time.Now()
	hosts, err := other.Hosts(ctx, 10*time.Second)
	if err != nil || len(hosts) != 0 {
		t.Fatalf("hosts of an empty lattice: %v %v", hosts, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("ping of an empty lattice waited %s", time.Since(start))
	}
	if _, err := other.Claims(ctx); !errors.Is(err, ErrNoHost) {
		t.Errorf("claims of an empty lattice: %v", err)
	}

	l.stopHost(t, l.a)
	if _, err := l.c.SoleHost(ctx, 300*time.Millisecond); !errors.Is(err, ErrNoHost) {
		t.Errorf("SoleHost of a lattice without hosts: %v", err)
	}
}

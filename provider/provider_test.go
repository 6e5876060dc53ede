package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const testContract = "test:thing"

// fakeCapability records what the SDK asks of it.
type fakeCapability struct {
	mu        sync.Mutex
	events    []string
	putErr    error
	healthErr error
	release   chan struct{} // Handle of "Slow.Op" waits for it
	started   bool
	closed    bool
	handling  int // Handle calls in progress
}

func (f *fakeCapability) record(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakeCapability) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func (f *fakeCapability) Contract() string { return testContract }
func (f *fakeCapability) Start(context.Context, *Provider) error {
	f.mu.Lock()
	f.started = true
	f.mu.Unlock()
	return nil
}
func (f *fakeCapability) PutLink(_ context.Context, ld lattice.LinkDefinition) error {
	if f.putErr != nil {
		return f.putErr
	}
	f.record("put " + ld.ActorID[:4] + " " + ld.Values["v"])
	return nil
}
func (f *fakeCapability) DeleteLink(_ context.Context, ld lattice.LinkDefinition) error {
	f.record("del " + ld.ActorID[:4] + " " + ld.Values["v"])
	return nil
}
func (f *fakeCapability) Handle(ctx context.Context, c Call) ([]byte, error) {
	f.mu.Lock()
	f.handling++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.handling--
		f.mu.Unlock()
	}()
	switch c.Operation {
	case "Thing.Echo":
		return append([]byte(c.Link.Values["v"]+":"), c.Payload...), nil
	case "Slow.Op":
		select {
		case <-f.release:
			return []byte("slow done"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, UnknownOperation(testContract, c.Operation)
}
func (f *fakeCapability) Health(context.Context) error { return f.healthErr }
func (f *fakeCapability) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handling != 0 {
		return fmt.Errorf("closed with %d invocations in flight", f.handling)
	}
	f.closed = true
	return nil
}

// env is an embedded NATS server with a cluster key and a host identity.
type env struct {
	nc      *nats.Conn
	url     string
	cluster *trust.KeyPair
	hostID  string
	prov    string // provider key
	actor   string // a linked actor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	host, _ := trust.CreateKeyPair(lattice.KindServer)
	prov, _ := trust.CreateKeyPair(lattice.KindService)
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	return &env{nc: testenv.Connect(t, s), url: s.ClientURL(), cluster: cluster, hostID: host.PublicKey(),
		prov: prov.PublicKey(), actor: actor.PublicKey()}
}

func (e *env) link(actor, v string) lattice.LinkDefinition {
	ld := lattice.LinkDefinition{ActorID: actor, ProviderID: e.prov, LinkName: "default", ContractID: testContract, Values: map[string]string{"v": v}}
	if err := ld.Normalize(); err != nil {
		panic(err)
	}
	return ld
}

func (e *env) hostData(links ...lattice.LinkDefinition) lattice.HostData {
	return lattice.HostData{
		HostID: e.hostID, LatticeRPCPrefix: "test", LinkName: "default", LatticeRPCURL: e.url,
		InstanceID: "inst-1", ProviderKey: e.prov, LinkDefinitions: links, DefaultRPCTimeoutMS: 2000,
		ClusterIssuers: []string{e.cluster.PublicKey()}, InvocationSeed: e.cluster.Seed(), LogLevel: "debug",
	}
}

type running struct {
	p      *Provider
	cancel context.CancelFunc
	done   chan error
}

// start runs a provider until the test ends (or stop); tune, if given,
// changes its Config.
func start(t *testing.T, hd lattice.HostData, c Capability, tune ...func(*Config)) *running {
	t.Helper()
	cfg := Config{HostData: hd}
	for _, f := range tune {
		f(&cfg)
	}
	return startConfig(t, cfg, c)
}

// startConfig is start with more of the Config than HostData.
func startConfig(t *testing.T, cfg Config, c Capability) *running {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.DrainTimeout = 5 * time.Second
	p, err := New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	select {
	case <-p.Ready():
	case err := <-r.done:
		t.Fatalf("provider exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("provider not ready")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("provider run: %v", err)
		}
		close(r.done)
	case <-time.After(15 * time.Second):
		t.Error("provider did not stop")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// call invokes the provider as the host of actor would.
func (e *env) call(signer *trust.KeyPair, actor, op string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	target := lattice.Entity{PublicKey: e.prov, ContractID: testContract, LinkName: "default"}
	return rpc.Invoke(ctx, e.nc, signer, e.hostID, lattice.ActorEntity(actor), target,
		lattice.RPCProvider("test", e.prov, "default"), op, payload)
}

func (e *env) publishLink(t *testing.T, del bool, ld lattice.LinkDefinition) {
	t.Helper()
	b, err := lattice.Marshal(&ld)
	if err != nil {
		t.Fatal(err)
	}
	subj := lattice.RPCLinkdefPut("test", e.prov, "default")
	if del {
		subj = lattice.RPCLinkdefDel("test", e.prov, "default")
	}
	if err := e.nc.Publish(subj, b); err != nil {
		t.Fatal(err)
	}
}

func wantEvents(t *testing.T, f *fakeCapability, want ...string) {
	t.Helper()
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := f.Events(); !slices.Equal(got, want) {
			return fmt.Errorf("events %q, want %q", got, want)
		}
		return nil
	})
}

func TestLinksArriveFromHostDataThenTheLattice(t *testing.T) {
	e := newEnv(t)
	f := &fakeCapability{}
	other, _ := trust.CreateKeyPair(lattice.KindModule)
	r := start(t, e.hostData(e.link(e.actor, "1")), f)
	wantEvents(t, f, "put "+e.actor[:4]+" 1")

	b := e.link(other.PublicKey(), "a")
	e.publishLink(t, false, b)
	e.publishLink(t, false, b) // hosts repeat link definitions: a no-op
	wantEvents(t, f, "put "+e.actor[:4]+" 1", "put "+other.PublicKey()[:4]+" a")

	changed := e.link(other.PublicKey(), "b")
	e.publishLink(t, false, changed) // changed values: close the old, open the new
	e.publishLink(t, true, changed)
	foreign := b
	foreign.ProviderID = e.actor // not our key: ignored
	e.publishLink(t, false, foreign)
	o := other.PublicKey()[:4]
	wantEvents(t, f, "put "+e.actor[:4]+" 1", "put "+o+" a", "del "+o+" a", "put "+o+" b", "del "+o+" b")
	if _, ok := r.p.Link(other.PublicKey()); ok {
		t.Fatal("deleted link still recorded")
	}
	if out, err := e.call(e.cluster, e.actor, "Thing.Echo", []byte("x")); err != nil || string(out) != "1:x" {
		t.Fatalf("linked actor: %q %v", out, err)
	}
	if _, err := e.call(e.cluster, other.PublicKey(), "Thing.Echo", nil); err == nil || !strings.Contains(err.Error(), "is not linked") {
		t.Fatalf("unlinked actor: %v", err)
	}
}

func TestRefusedLinkIsNotRecorded(t *testing.T) {
	e := newEnv(t)
	f := &fakeCapability{putErr: errors.New("port taken")}
	r := start(t, e.hostData(e.link(e.actor, "1")), f)
	if _, ok := r.p.Link(e.actor); ok {
		t.Fatal("a link the capability refused is recorded")
	}
	if _, err := e.call(e.cluster, e.actor, "Thing.Echo", nil); err == nil || !strings.Contains(err.Error(), "is not linked") {
		t.Fatalf("call through a refused link: %v", err)
	}
}

func TestInvocationsAreChecked(t *testing.T) {
	e := newEnv(t)
	start(t, e.hostData(e.link(e.actor, "1")), &fakeCapability{})
	rogue, _ := trust.CreateKeyPair(lattice.KindCluster)

	t.Run("signed by a cluster issuer", func(t *testing.T) {
		if out, err := e.call(e.cluster, e.actor, "Thing.Echo", []byte("ok")); err != nil || string(out) != "1:ok" {
			t.Fatalf("%q %v", out, err)
		}
	})
	t.Run("signed by an unknown key", func(t *testing.T) {
		_, err := e.call(rogue, e.actor, "Thing.Echo", nil)
		if err == nil || !strings.Contains(err.Error(), string(lattice.ReasonUnknownIssuer)) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("unknown operation is named", func(t *testing.T) {
		_, err := e.call(e.cluster, e.actor, "Thing.Frobnicate", nil)
		if err == nil || !strings.Contains(err.Error(), `"Thing.Frobnicate"`) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("addressed to another provider", func(t *testing.T) {
		other, _ := trust.CreateKeyPair(lattice.KindService)
		inv, _ := trust.NewInvocation(e.cluster, e.hostID, lattice.ActorEntity(e.actor),
			lattice.Entity{PublicKey: other.PublicKey(), ContractID: testContract, LinkName: "default"}, "Thing.Echo", nil)
		resp := e.raw(t, inv)
		if !strings.Contains(resp.Error, string(lattice.ReasonWrongTarget)) {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		inv, _ := trust.NewInvocation(e.cluster, e.hostID, lattice.ActorEntity(e.actor),
			lattice.Entity{PublicKey: e.prov, ContractID: testContract, LinkName: "default"}, "Thing.Echo", []byte("r"))
		if resp := e.raw(t, inv); resp.Error != "" {
			t.Fatal(resp.Error)
		}
		if resp := e.raw(t, inv); !strings.Contains(resp.Error, string(lattice.ReasonReplayed)) {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("tampered body", func(t *testing.T) {
		inv, _ := trust.NewInvocation(e.cluster, e.hostID, lattice.ActorEntity(e.actor),
			lattice.Entity{PublicKey: e.prov, ContractID: testContract, LinkName: "default"}, "Thing.Echo", []byte("a"))
		inv.Msg = []byte("b")
		if resp := e.raw(t, inv); !strings.Contains(resp.Error, string(lattice.ReasonHashMismatch)) {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		m, err := e.nc.Request(lattice.RPCProvider("test", e.prov, "default"), []byte{0xc1, 0x00}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := lattice.DecodeInvocationResponse(m.Data)
		if err != nil || !strings.Contains(resp.Error, string(lattice.ReasonMalformed)) {
			t.Fatalf("%+v %v", resp, err)
		}
	})
}

// A provider holds invocations to its payload limit as the host does: a
// bigger one is refused as too_large, coded so; a linked actor's call
// within the limit is served, an unlinked actor's refused.
func TestPayloadLimitAndLinkHoldOnTheProvider(t *testing.T) {
	e := newEnv(t)
	start(t, e.hostData(e.link(e.actor, "1")), &fakeCapability{}, func(c *Config) { c.MaxPayloadBytes = 4096 })
	stranger, _ := trust.CreateKeyPair(lattice.KindModule)
	for _, tc := range []struct {
		name    string
		actor   string
		payload []byte
		reason  string
	}{
		{"within the limit", e.actor, make([]byte, 1024), ""},
		{"over the limit", e.actor, make([]byte, 8192), string(lattice.ReasonTooLarge)},
		{"not linked", stranger.PublicKey(), nil, ReasonNotLinked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.call(e.cluster, tc.actor, "Thing.Echo", tc.payload)
			if tc.reason == "" {
				if err != nil || len(out) != 2+len(tc.payload) {
					t.Fatalf("%d bytes, %v", len(out), err)
				}
				return
			}
			var re *rpc.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("%v, want a refusal", err)
			}
			if tc.reason == string(lattice.ReasonTooLarge) && (!errors.Is(err, rpc.ErrTooLarge) || re.Reason() != lattice.ReasonTooLarge) {
				t.Errorf("%v (code %q): want rpc.ErrTooLarge", err, re.Code)
			}
			if tc.reason == ReasonNotLinked && (re.Code != "" || !strings.HasPrefix(re.Msg, "Invocation not authorized: actor "+tc.actor)) {
				t.Errorf("%v (code %q): want the not-linked refusal, uncoded", err, re.Code)
			}
		})
	}
}

// toldMetrics is a Metrics that passes on what it is told, in order.
type toldMetrics struct {
	told  chan string
	conns chan *nats.Conn
}

func (m toldMetrics) Invocation(op string, ok bool) {
	m.told <- fmt.Sprintf("invocation %s %v", op, ok)
}
func (m toldMetrics) Rejected(reason string)      { m.told <- "rejected " + reason }
func (m toldMetrics) CredentialRenewal(r Renewal) { m.told <- fmt.Sprintf("renewal %d", r) }
func (m toldMetrics) Conn(nc *nats.Conn)          { m.conns <- nc }

func TestMetricsAreToldOfEveryInvocation(t *testing.T) {
	e := newEnv(t)
	m := toldMetrics{told: make(chan string, 16), conns: make(chan *nats.Conn, 4)}
	r := startConfig(t, Config{HostData: e.hostData(e.link(e.actor, "1")), Metrics: m}, &fakeCapability{})
	select {
	case nc := <-m.conns:
		if nc != r.p.Conn() {
			t.Errorf("metrics told of connection %p, the provider runs on %p", nc, r.p.Conn())
		}
	default:
		t.Error("metrics not told of the provider's connection")
	}
	rogue, _ := trust.CreateKeyPair(lattice.KindCluster)
	stranger, _ := trust.CreateKeyPair(lattice.KindModule)
	calls := []struct {
		signer *trust.KeyPair
		actor  string
		op     string
		want   string
	}{
		{e.cluster, e.actor, "Thing.Echo", "invocation Thing.Echo true"},
		{e.cluster, e.actor, "Thing.Frobnicate", "invocation Thing.Frobnicate false"},
		{rogue, e.actor, "Thing.Echo", "rejected " + string(lattice.ReasonUnknownIssuer)},
		{e.cluster, stranger.PublicKey(), "Thing.Echo", "rejected " + ReasonNotLinked},
	}
	for _, c := range calls {
		_, _ = e.call(c.signer, c.actor, c.op, []byte("x")) // what counts is what the metrics are told
		select {
		case got := <-m.told:
			if got != c.want {
				t.Errorf("%s from %s: metrics told %q, want %q", c.op, c.actor, got, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s from %s: metrics told nothing, want %q", c.op, c.actor, c.want)
		}
	}
}

func (e *env) raw(t *testing.T, inv *lattice.Invocation) *lattice.InvocationResponse {
	t.Helper()
	b, _ := inv.Encode()
	m, err := e.nc.Request(lattice.RPCProvider("test", e.prov, "default"), b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lattice.DecodeInvocationResponse(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestHealthReportsTheCapability(t *testing.T) {
	e := newEnv(t)
	f := &fakeCapability{}
	start(t, e.hostData(), f)
	check := func() Health {
		t.Helper()
		req, _ := lattice.Marshal(map[string]bool{"placeholder": true})
		m, err := e.nc.Request(lattice.RPCHealth("test", e.prov, "default"), req, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var h Health
		if err := lattice.Unmarshal(m.Data, &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := check(); !h.Healthy {
		t.Fatalf("%+v", h)
	}
	f.healthErr = errors.New("bucket unreachable")
	if h := check(); h.Healthy || h.Message != "bucket unreachable" {
		t.Fatalf("%+v", h)
	}
}

func TestShutdownMessageDrainsAndReturnsNil(t *testing.T) {
	e := newEnv(t)
	f := &fakeCapability{release: make(chan struct{})}
	p, err := New(Config{HostData: e.hostData(e.link(e.actor, "1")), LogOutput: testWriter{t}}, f)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-p.Ready()

	// A slow invocation is in flight when the shutdown arrives.
	slow := make(chan error, 1)
	go func() {
		out, err := e.call(e.cluster, e.actor, "Slow.Op", nil)
		if err == nil && string(out) != "slow done" {
			err = fmt.Errorf("reply %q", out)
		}
		slow <- err
	}()
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.handling == 0 {
			return errors.New("slow invocation not started")
		}
		return nil
	})

	shutdown := lattice.RPCShutdown("test", e.prov, "default")
	other, _ := trust.CreateKeyPair(lattice.KindServer)
	body, _ := json.Marshal(map[string]string{"host_id": other.PublicKey()})
	if _, err := e.nc.Request(shutdown, body, 200*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("shutdown for another host was answered: %v", err)
	}
	body, _ = json.Marshal(map[string]string{"host_id": e.hostID})
	m, err := e.nc.Request(shutdown, body, 5*time.Second)
	if err != nil || string(m.Data) != "shutting down" {
		t.Fatalf("shutdown reply: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned before in-flight invocations finished: %v", err)
	default:
	}
	close(f.release)
	if err := <-slow; err != nil {
		t.Fatalf("in-flight invocation: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	if !f.closed {
		t.Fatal("capability not closed (or closed with invocations in flight)")
	}
	if _, err := e.call(e.cluster, e.actor, "Thing.Echo", nil); !errors.Is(err, rpc.ErrNoResponders) {
		t.Fatalf("after shutdown: %v", err)
	}
}

func TestInvokeSignsAsTheProvider(t *testing.T) {
	e := newEnv(t)
	r := start(t, e.hostData(), &fakeCapability{})
	trusted := trust.NewIssuers([]string{e.cluster.PublicKey()})
	seen := make(chan *lattice.Invocation, 1)
	sub, err := e.nc.Subscribe(lattice.RPCActor("test", e.actor), func(m *nats.Msg) {
		resp := &lattice.InvocationResponse{}
		inv, err := lattice.DecodeInvocation(m.Data)
		if err == nil {
			resp.InvocationID = inv.ID
			_, err = trusted.Check(inv, e.actor)
		}
		if err != nil {
			resp.Error = err.Error()
		} else {
			seen <- inv
			resp.Msg = append([]byte("actor got "), inv.Msg...)
		}
		b, _ := resp.Encode()
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	out, err := r.p.Invoke(context.Background(), e.actor, wire.OpHTTPHandleRequest, []byte("hi"))
	if err != nil || string(out) != "actor got hi" {
		t.Fatalf("%q %v", out, err)
	}
	inv := <-seen
	want := lattice.Entity{PublicKey: e.prov, ContractID: testContract, LinkName: "default"}
	if inv.Origin != want || inv.HostID != e.hostID || inv.Target.PublicKey != e.actor {
		t.Fatalf("invocation %+v", inv)
	}
	other, _ := trust.CreateKeyPair(lattice.KindModule)
	if _, err := r.p.Invoke(context.Background(), other.PublicKey(), "X.Y", nil); !errors.Is(err, rpc.ErrNoResponders) {
		t.Fatalf("absent actor: %v", err)
	}
}

func TestNewRejectsIncompleteHostData(t *testing.T) {
	e := newEnv(t)
	for name, tweak := range map[string]func(*lattice.HostData){
		"no provider key":  func(h *lattice.HostData) { h.ProviderKey = "" },
		"no issuers":       func(h *lattice.HostData) { h.ClusterIssuers = nil },
		"bad seed":         func(h *lattice.HostData) { h.InvocationSeed = "SXNOTASEED" },
		"jwt without seed": func(h *lattice.HostData) { h.LatticeRPCUserJWT = "eyJ..." },
	} {
		t.Run(name, func(t *testing.T) {
			hd := e.hostData()
			tweak(&hd)
			if _, err := New(Config{HostData: hd}, &fakeCapability{}); !errors.Is(err, lattice.ErrHostData) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestReadHostData(t *testing.T) {
	e := newEnv(t)
	hd := e.hostData(e.link(e.actor, "1"))
	line, err := lattice.EncodeHostData(&hd)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"line and more": append(slices.Clone(line), "ignored\n"...),
		"no newline":    bytes.TrimSpace(line),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadHostData(bytes.NewReader(in))
			if err != nil || got.ProviderKey != e.prov || len(got.LinkDefinitions) != 1 {
				t.Fatalf("%+v %v", got, err)
			}
		})
	}
	for name, in := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not base64!\n"),
		"too large": bytes.Repeat([]byte("A"), lattice.MaxHostDataLine+10),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadHostData(bytes.NewReader(in)); !errors.Is(err, lattice.ErrHostData) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestLogsNeverCarrySecrets(t *testing.T) {
	e := newEnv(t)
	hd := e.hostData(e.link(e.actor, "1"))
	hd.LogLevel = "debug"
	hd.StructuredLogging = true
	var buf testenv.SyncBuffer
	p, err := New(Config{HostData: hd, LogOutput: &buf}, &fakeCapability{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Ready()
	_, _ = e.call(e.cluster, e.actor, "Thing.Echo", nil)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"msg":"provider ready"`) {
		t.Fatalf("no structured log: %s", out)
	}
	if strings.Contains(out, e.cluster.Seed()) || strings.Contains(out, e.cluster.Seed()[:20]) {
		t.Fatal("a seed reached the log")
	}
}

func TestLostConnectionEndsRunWithAnError(t *testing.T) {
	e := newEnv(t)
	f := &fakeCapability{}
	p, err := New(Config{HostData: e.hostData(), LogOutput: testWriter{t}}, f)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-p.Ready()
	p.Conn().Close() // as the server's refusal of a revoked user ends it
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lattice connection closed") {
			t.Fatalf("%v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if !f.closed {
		t.Fatal("capability not closed")
	}
}

// A server that refuses the provider's credentials ends Run with an error
// instead of leaving a process that retries forever.
func TestRefusedCredentialsEndRun(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	defer s.Shutdown()
	e := newEnv(t)
	hd := e.hostData()
	hd.LatticeRPCURL = s.ClientURL()
	p, err := New(Config{HostData: hd, LogOutput: testWriter{t}}, &fakeCapability{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "uthorization") {
			t.Fatalf("%v", err)
		}
	case <-time.After(20 * time.Second):
		p.Shutdown()
		t.Fatal("Run still retrying refused credentials")
	}
}

// Run is the SDK's whole entry point: HostData from stdin, everything else
// from the one Config it is given (here its Metrics), until ctx ends.
func TestRunTakesHostDataFromStdinAndTheRestFromConfig(t *testing.T) {
	if err := Run(context.Background(), strings.NewReader("not base64!\n"), &fakeCapability{}, Config{}); !errors.Is(err, lattice.ErrHostData) {
		t.Fatalf("garbage on stdin: %v, want ErrHostData", err)
	}
	e := newEnv(t)
	hd := e.hostData(e.link(e.actor, "1"))
	line, err := lattice.EncodeHostData(&hd)
	if err != nil {
		t.Fatal(err)
	}
	m := toldMetrics{told: make(chan string, 16), conns: make(chan *nats.Conn, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, bytes.NewReader(line), &fakeCapability{}, Config{Metrics: m}) }()
	select {
	case nc := <-m.conns:
		if nc.ConnectedUrl() == "" {
			t.Error("the Config's Metrics were told of a connection that is not connected")
		}
	case err := <-done:
		t.Fatalf("Run ended before connecting: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run never connected with the HostData from stdin")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after ctx ended: %v, want nil (a graceful end)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}

// The supervisor sends a delegation token at each renewal and the current
// one again with each health check. The provider takes a token for its
// signing key that expires later than the one it holds, and keeps the one
// it holds for a repeat, an older token, or one for another key.
func TestDelegationTakesOnlyALaterTokenForItsKey(t *testing.T) {
	e := newEnv(t)
	signing, _ := trust.CreateKeyPair(lattice.KindService)
	origin := lattice.Entity{PublicKey: e.prov, ContractID: testContract, LinkName: "default"}
	now := time.Now()
	issue := func(key string, ttl time.Duration) string {
		t.Helper()
		tok, err := trust.IssueDelegation(e.cluster, key, origin, "inst-1", ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := issue(signing.PublicKey(), 10*time.Minute)
	hd := e.hostData()
	hd.InvocationSeed, hd.InvocationDelegation = signing.Seed(), first
	r := start(t, hd, &fakeCapability{})
	other, _ := trust.CreateKeyPair(lattice.KindService)
	later := issue(signing.PublicKey(), 20*time.Minute)
	steps := []struct {
		name, token, want string
	}{
		{"a repeat of the token held", first, first},
		{"an older token", issue(signing.PublicKey(), 5*time.Minute), first},
		{"another key's token", issue(other.PublicKey(), 30*time.Minute), first},
		{"garbage", "not a token", first},
		{"a renewal", later, later},
		{"the previous token, late", first, later},
	}
	for _, s := range steps {
		// As the delegation subscription delivers it (lattice.RPCDelegation).
		r.p.handleDelegation(&nats.Msg{Subject: lattice.RPCDelegation("test", e.prov, "default"), Data: []byte(s.token)})
		r.p.signerMu.Lock()
		got := r.p.signer.Delegation
		r.p.signerMu.Unlock()
		if got != s.want {
			t.Fatalf("after %s the provider holds the wrong token", s.name)
		}
	}
}

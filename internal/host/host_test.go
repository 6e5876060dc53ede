package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.CleanupBuilds()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			println("goroutine leak:", err.Error())
			code = 1
		}
	}
	os.Exit(code)
}

const (
	echoPkg      = "github.com/latticed/latticed/actor/examples/echo"
	loopPkg      = "./internal/testing/actors/loop"
	trapPkg      = "./internal/testing/actors/trap"
	lifePkg      = "./internal/testing/actors/lifecycle"
	hostcallPkg  = "./internal/testing/actors/hostcall"
	membombPkg   = "./internal/testing/actors/membomb"
	recursePkg   = "./internal/testing/actors/recurse"
	loggerPkg    = "./internal/testing/actors/logger"
	foreverPkg   = "./internal/testing/actors/startforever"
	kvcounterPkg = "github.com/latticed/latticed/actor/examples/kvcounter"
)

type fixture struct {
	h       *Host
	nc      *nats.Conn // a client for tests (ctl and rpc)
	cluster *trust.KeyPair
	dir     string
	m       *metrics.Metrics
	ctl     lattice.Ctl
	// stopHost stops the host and returns what Run returned; idempotent
	// (the fixture's cleanup calls it too).
	stopHost func() error
}

func newFixture(t testing.TB, tweak ...func(*Options)) *fixture {
	t.Helper()
	return newFixtureAt(t, testenv.NATS(t).ClientURL(), tweak...)
}

// dial connects like a production node does: reconnecting forever.
func dial(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newFixtureAt(t testing.TB, url string, tweak ...func(*Options)) *fixture {
	t.Helper()
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	hostKey, _ := trust.CreateKeyPair(lattice.KindServer)
	f := &fixture{nc: dial(t, url), cluster: cluster, dir: t.TempDir(), m: metrics.New()}
	opts := Options{
		HostSettings: config.HostSettings{
			LatticePrefix: "test", RPCTimeout: 2 * time.Second, AllowFileLoad: true, CompileCacheDir: t.TempDir(),
			MemoryLimitPages: 2048,
			// Under -race an interpreted Go actor's initialiser outlasts the
			// production start deadline; the tests of that deadline set it.
			StartTimeout: 2 * time.Minute,
		},
		HostKey: hostKey, ClusterKey: cluster,
		RPC: dial(t, url), Ctl: dial(t, url),
		HeartbeatInterval: time.Hour, Metrics: f.m,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, fn := range tweak {
		fn(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	select {
	case <-h.Ready():
	case err := <-done:
		t.Fatalf("host exited: %v", err)
	}
	var stopOnce sync.Once
	var runErr error
	f.stopHost = func() error {
		stopOnce.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := f.stopHost(); err != nil {
			t.Errorf("host run: %v", err)
		}
	})
	f.h, f.ctl = h, lattice.NewCtl("", "test")
	return f
}

// events subscribes to the lattice's events until the test ends; the
// channel holds 256 (more are dropped: a test reads as it goes).
func (f *fixture) events(t testing.TB) <-chan lattice.CloudEvent {
	t.Helper()
	events := make(chan lattice.CloudEvent, 256)
	sub, err := f.nc.Subscribe(lattice.Events("test"), func(m *nats.Msg) {
		var e lattice.CloudEvent
		if json.Unmarshal(m.Data, &e) == nil {
			select {
			case events <- e:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return events
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ctlRequest sends a JSON control request and decodes the reply into out.
func (f *fixture) ctlRequest(t testing.TB, subject string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	msg, err := f.nc.Request(subject, b, 30*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		t.Fatalf("reply of %s: %v: %s", subject, err, msg.Data)
	}
}

func (f *fixture) startActor(t testing.TB, pkg string, count int, opts trust.SignActorOptions) testenv.SignedActor {
	t.Helper()
	sa := testenv.SignActor(t, f.dir, pkg, opts)
	f.startSigned(t, sa, count)
	return sa
}

// startSigned starts count instances of an actor already signed.
func (f *fixture) startSigned(t testing.TB, sa testenv.SignedActor, count int) {
	t.Helper()
	var a lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path, Count: count}, &a)
	if !a.Accepted {
		t.Fatalf("start %s: %s", sa.Path, a.Error)
	}
}

// raw sends an invocation and returns the decoded response.
func (f *fixture) raw(t testing.TB, subject string, data []byte) *lattice.InvocationResponse {
	t.Helper()
	msg, err := f.nc.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp, err := lattice.DecodeInvocationResponse(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (f *fixture) invocation(t testing.TB, signer *trust.KeyPair, origin lattice.Entity, actorKey, op string, payload []byte) *lattice.Invocation {
	t.Helper()
	inv, err := trust.NewInvocation(signer, f.h.ID(), origin, lattice.ActorEntity(actorKey), op, payload)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (f *fixture) call(t testing.TB, actorKey, op string, payload []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	return rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(actorKey),
		lattice.RPCActor("test", actorKey), op, payload)
}

func mustEcho(t testing.TB, f *fixture, key string) {
	t.Helper()
	out, err := f.call(t, key, "Echo.Echo", []byte("ping"))
	if err != nil || string(out) != "ping" {
		t.Fatalf("echo: %q %v", out, err)
	}
}

func TestStartCallScaleStop(t *testing.T) {
	f := newFixture(t)
	life := f.startActor(t, lifePkg, 1, trust.SignActorOptions{Name: "life"})
	if out, err := f.call(t, life.Key, "Life.Goroutine", []byte("x")); err != nil || string(out) != "from goroutine: x" {
		t.Fatalf("call: %q %v", out, err)
	}

	var ack lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdScaleActor), lattice.ScaleActorCommand{ActorID: life.Key, Count: 4}, &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	var inv lattice.HostInventory
	f.ctlRequest(t, f.ctl.GetInventory(f.h.ID()), nil, &inv)
	if len(inv.Actors) != 1 || len(inv.Actors[0].Instances) != 4 {
		t.Fatalf("inventory: %+v", inv.Actors)
	}

	// Four calls that each hold an instance for 500 ms at once must be served
	// by four different instances: they run concurrently.
	ids := make(chan string, 4)
	for i := 0; i < 4; i++ {
		go func() {
			data, _ := f.invocation(t, f.cluster, lattice.ActorEntity(life.Key), life.Key, "Life.Sleep", []byte("500")).Encode()
			msg, err := f.nc.Request(lattice.RPCActor("test", life.Key), data, 10*time.Second)
			if err != nil {
				ids <- "error: " + err.Error()
				return
			}
			resp, _ := lattice.DecodeInvocationResponse(msg.Data)
			ids <- resp.InstanceID + resp.Error
		}()
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[<-ids] = true
	}
	if len(seen) != 4 {
		t.Fatalf("4 concurrent calls used %d instances: %v", len(seen), seen)
	}

	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: life.Key}, &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	if _, err := f.call(t, life.Key, "Life.Count", nil); !errors.Is(err, rpc.ErrNoResponders) {
		t.Fatalf("call after stop: %v", err)
	}
}

func TestPooledInstanceKeepsItsOwnState(t *testing.T) {
	f := newFixture(t)
	life := f.startActor(t, lifePkg, 1, trust.SignActorOptions{Name: "life"})
	for want := 1; want <= 3; want++ {
		out, err := f.call(t, life.Key, "Life.Count", nil)
		if err != nil || string(out) != string(rune('0'+want)) {
			t.Fatalf("count %d: %q %v", want, out, err)
		}
	}
}

func TestRejectedInvocationsNeverReachTheActor(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxPayloadBytes = 64 << 10 })
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}})
	plain := f.startActor(t, lifePkg, 1, trust.SignActorOptions{Name: "nocaps"})
	stranger, _ := trust.CreateKeyPair(lattice.KindCluster)
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	origin := lattice.ActorEntity(caller.PublicKey())
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	httpOrigin := lattice.Entity{PublicKey: provider.PublicKey(), ContractID: wire.ContractHTTPServer, LinkName: "default"}
	subject := lattice.RPCActor("test", echo.Key)

	encode := func(inv *lattice.Invocation) []byte {
		b, err := inv.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name    string
		subject string
		data    func() []byte
		reason  lattice.RejectReason
	}{
		{"malformed msgpack", subject, func() []byte { return []byte{0x82, 0xa3, 'f', 'o', 'o'} }, lattice.ReasonMalformed},
		{"forged signature", subject, func() []byte {
			inv := f.invocation(t, f.cluster, origin, echo.Key, "Echo.Echo", []byte("x"))
			inv.EncodedClaims = inv.EncodedClaims[:len(inv.EncodedClaims)-4] + "AAAA"
			return encode(inv)
		}, lattice.ReasonBadSignature},
		{"unknown issuer", subject, func() []byte { return encode(f.invocation(t, stranger, origin, echo.Key, "Echo.Echo", []byte("x"))) }, lattice.ReasonUnknownIssuer},
		{"hash mismatch", subject, func() []byte {
			inv := f.invocation(t, f.cluster, origin, echo.Key, "Echo.Echo", []byte("x"))
			inv.Msg = []byte("tampered")
			return encode(inv)
		}, lattice.ReasonHashMismatch},
		{"wrong target", subject, func() []byte { return encode(f.invocation(t, f.cluster, origin, plain.Key, "Echo.Echo", []byte("x"))) }, lattice.ReasonWrongTarget},
		{"too large", subject, func() []byte {
			return encode(f.invocation(t, f.cluster, origin, echo.Key, "Echo.Echo", make([]byte, 100<<10)))
		}, lattice.ReasonTooLarge},
		{"capability not claimed", lattice.RPCActor("test", plain.Key), func() []byte {
			return encode(f.invocation(t, f.cluster, httpOrigin, plain.Key, wire.OpHTTPHandleRequest, []byte{0x80}))
		}, lattice.ReasonCapabilityNotClaimed},
		{"replayed", subject, func() []byte {
			b := encode(f.invocation(t, f.cluster, origin, echo.Key, "Echo.Echo", []byte("x")))
			if resp := f.raw(t, subject, b); resp.Error != "" {
				t.Fatalf("first delivery: %s", resp.Error)
			}
			return b
		}, lattice.ReasonReplayed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(f.m.InvocationsRejected.WithLabelValues(string(tc.reason)))
			okBefore := testutil.ToFloat64(f.m.InvocationsTotal.WithLabelValues(echo.Key, "Echo.Echo", metrics.ResultOK))
			resp := f.raw(t, tc.subject, tc.data())
			if resp.Error == "" || !strings.Contains(resp.Error, string(tc.reason)) && tc.reason != lattice.ReasonCapabilityNotClaimed {
				t.Fatalf("error %q does not name reason %s", resp.Error, tc.reason)
			}
			if got := testutil.ToFloat64(f.m.InvocationsRejected.WithLabelValues(string(tc.reason))); got != before+1 {
				t.Fatalf("rejections[%s] = %v, want %v", tc.reason, got, before+1)
			}
			if tc.reason != lattice.ReasonReplayed && testutil.ToFloat64(f.m.InvocationsTotal.WithLabelValues(echo.Key, "Echo.Echo", metrics.ResultOK)) != okBefore {
				t.Fatal("a rejected invocation reached the actor")
			}
			mustEcho(t, f, echo.Key) // the node serves the next valid request
		})
	}
	if !strings.Contains(f.raw(t, lattice.RPCActor("test", plain.Key), encode(f.invocation(t, f.cluster, httpOrigin, plain.Key, wire.OpHTTPHandleRequest, []byte{0x80}))).Error,
		"does not have the required capability claim "+wire.ContractHTTPServer) {
		t.Fatal("capability error wording")
	}
}

func TestHostileActorsDoNotHarmOthers(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RPCTimeout = 500 * time.Millisecond })
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	loop := f.startActor(t, loopPkg, 1, trust.SignActorOptions{Name: "loop"})
	trap := f.startActor(t, trapPkg, 1, trust.SignActorOptions{Name: "trap"})
	bomb := f.startActor(t, membombPkg, 1, trust.SignActorOptions{Name: "bomb"})
	deep := f.startActor(t, recursePkg, 1, trust.SignActorOptions{Name: "deep"})

	// A healthy actor keeps answering while the hostile ones misbehave.
	stop := make(chan struct{})
	healthy := make(chan error, 1)
	go func() {
		var err error
		for n := 0; ; n++ {
			select {
			case <-stop:
				healthy <- err
				return
			default:
			}
			if out, e := f.call(t, echo.Key, "Echo.Echo", []byte("ok")); e != nil || string(out) != "ok" {
				err = errors.Join(err, e)
			}
		}
	}()

	cases := []struct {
		name, key, op, want string
	}{
		{"infinite loop times out", loop.Key, "Loop.Forever", "interrupted"},
		{"exit", trap.Key, "Trap.Exit", "exited"},
		{"fault traps", trap.Key, "Trap.Fault", ""},
		{"panic is a guest error", trap.Key, "Trap.Panic", "panic"},
		{"memory bomb", bomb.Key, "Mem.Grow", ""},
		{"deep recursion", deep.Key, "Recurse.Deep", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.call(t, tc.key, tc.op, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			// The same actor serves again on a fresh instance.
			if tc.key != bomb.Key && tc.key != deep.Key {
				if out, err := f.call(t, tc.key, "Echo.Echo", []byte("again")); err != nil || string(out) != "again" {
					t.Fatalf("after failure: %q %v", out, err)
				}
			}
		})
	}
	close(stop)
	if err := <-healthy; err != nil {
		t.Fatalf("healthy actor failed meanwhile: %v", err)
	}
	if testutil.ToFloat64(f.m.ActorInstanceFailures.WithLabelValues(loop.Key, failTimeout)) != 1 {
		t.Fatal("timeout not counted")
	}
}

func TestInvalidModulesAreRefusedAtStart(t *testing.T) {
	allowed, _ := trust.CreateKeyPair(lattice.KindAccount)
	f := newFixture(t, func(o *Options) { o.AllowedActorIssuers = []string{allowed.PublicKey()} })
	good := testenv.SignActorWith(t, f.dir, echoPkg, trust.SignActorOptions{Name: "echo"}, allowed)
	tampered := append([]byte(nil), good.Module...)
	tampered[len(tampered)/3] ^= 0xff
	write := func(name string, b []byte) string {
		p := f.dir + "/" + name
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}
	stranger := testenv.SignActor(t, f.dir, echoPkg, trust.SignActorOptions{Name: "other"})
	// Signed, but its code holds an opcode (0xfe, a thread atomic) the host
	// cannot instrument: a loop in it could outrun every deadline.
	atomic := wasmbuild.TinyEcho()
	if i := bytes.LastIndex(atomic, []byte{0x41, 0x01, 0x0b}); i < 0 {
		t.Fatal("the tiny echo's return 1 not found")
	} else {
		atomic[i] = 0xfe
	}
	modKey, _ := trust.CreateKeyPair(lattice.KindModule)
	atomicSigned, _, err := trust.SignActor(atomic, trust.SignActorOptions{Name: "atomic"}, allowed, modKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, ref, want string }{
		{"not stoppable", write("atomic.wasm", atomicSigned), "unknown opcode 0xfe"},
		{"tampered", write("tampered.wasm", tampered), "module hash mismatch"},
		{"unsigned", write("unsigned.wasm", testenv.BuildActor(t, echoPkg)), "no embedded claims"},
		{"issuer not allowed", "file://" + stranger.Path, "LATTICED_ALLOWED_ACTOR_ISSUERS"},
		{"missing file", "file:///nonexistent/x.wasm", "no such file"},
		{"oci ref", "registry.example/echo:0.1", "unsupported actor reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a lattice.Ack
			f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: tc.ref}, &a)
			if a.Accepted || !strings.Contains(a.Error, tc.want) {
				t.Fatalf("ack %+v, want refusal with %q", a, tc.want)
			}
		})
	}
	var a lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + good.Path}, &a)
	if !a.Accepted {
		t.Fatalf("allowed issuer refused: %s", a.Error)
	}
}

func TestFileLoadNeedsPermission(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AllowFileLoad = false })
	sa := testenv.SignActor(t, f.dir, echoPkg, trust.SignActorOptions{Name: "echo"})
	var a lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path}, &a)
	if a.Accepted || !strings.Contains(a.Error, "WASMCLOUD_ALLOW_FILE_LOAD") {
		t.Fatalf("%+v", a)
	}
}

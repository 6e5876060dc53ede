package host

// Multi-node acceptance tests (issue 7): several hosts, each with its own NATS
// connections and cluster key, on real nats-server processes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// mnode is one lattice host with its own NATS connections (so a test can
// cut them to simulate a crash) and its own cluster key.
type mnode struct {
	*fixture
	prefix  string
	rpcConn *nats.Conn
	ctlConn *nats.Conn
}

func startNode(t *testing.T, url, prefix string, key *trust.KeyPair, issuers []string, tweak ...func(*Options)) *mnode {
	t.Helper()
	rpcC, ctlC := dial(t, url), dial(t, url)
	all := append([]func(*Options){func(o *Options) {
		o.ClusterKey, o.Issuers, o.LatticePrefix, o.RPC, o.Ctl = key, issuers, prefix, rpcC, ctlC
	}}, tweak...)
	f := newFixtureAt(t, url, all...)
	f.cluster, f.ctl = key, lattice.NewCtl("", prefix)
	return &mnode{fixture: f, prefix: prefix, rpcConn: rpcC, ctlConn: ctlC}
}

// crash cuts the host's NATS connections without a clean stop: the server
// drops its subscriptions at once, the host sends nothing more.
func (n *mnode) crash() {
	n.rpcConn.Close()
	n.ctlConn.Close()
}

func clusterKeys(t *testing.T, n int) []*trust.KeyPair {
	t.Helper()
	out := make([]*trust.KeyPair, n)
	for i := range out {
		k, err := trust.CreateKeyPair(lattice.KindCluster)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k
	}
	return out
}

func pubKeys(keys ...*trust.KeyPair) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.PublicKey())
	}
	return out
}

// launch starts an already signed actor file on n.
func (n *mnode) launch(t *testing.T, sa testenv.SignedActor, count int) {
	t.Helper()
	var ack lattice.Ack
	n.ctlRequest(t, n.ctl.Cmd(n.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path, Count: count}, &ack)
	if !ack.Accepted {
		t.Fatalf("launch on %s: %s", n.h.ID(), ack.Error)
	}
}

// invokeVia sends one invocation signed by signer on prefix's RPC subject for
// actorKey, bounded by timeout.
func invokeVia(nc *nats.Conn, signer *trust.KeyPair, prefix, hostID, actorKey, op string, payload []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	if hostID == "" { // a client outside any host: it still names a host key
		hk, _ := trust.CreateKeyPair(lattice.KindServer)
		hostID = hk.PublicKey()
	}
	return rpc.Invoke(ctx, nc, signer, hostID, lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(actorKey),
		lattice.RPCActor(prefix, actorKey), op, payload)
}

// forwardVia makes the hostcall actor fwdKey (reached through n) forward fw.
func (n *mnode) forwardVia(t *testing.T, fwdKey string, fw forward) ([]byte, error) {
	t.Helper()
	b, err := lattice.Marshal(fw)
	if err != nil {
		t.Fatal(err)
	}
	return invokeVia(n.nc, n.cluster, n.prefix, n.h.ID(), fwdKey, "Call.Forward", b, 10*time.Second)
}

// pingHosts scatters ping.hosts on prefix and gathers answers until every
// host in want answered (or 5s passed), then listens a further quiet window
// so that unexpected answers are caught too.
func pingHosts(t *testing.T, nc *nats.Conn, prefix string, want ...string) map[string]lattice.HostInfo {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The server must know the inbox before hosts on other servers of a
	// cluster answer to it.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ping := func() {
		if err := nc.PublishRequest(lattice.NewCtl("", prefix).PingHosts(), inbox, nil); err != nil {
			t.Fatal(err)
		}
	}
	ping()
	got := map[string]lattice.HostInfo{}
	missing := func() bool {
		for _, id := range want {
			if _, ok := got[id]; !ok {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for missing() && time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			// Interest may still be crossing cluster routes: ask again.
			ping()
			continue
		}
		var hi lattice.HostInfo
		if json.Unmarshal(m.Data, &hi) == nil {
			got[hi.ID] = hi
		}
	}
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return got
		}
		var hi lattice.HostInfo
		if json.Unmarshal(m.Data, &hi) == nil {
			got[hi.ID] = hi
		}
	}
}

func kvLink(actor, provider string) lattice.LinkDefinition {
	return lattice.LinkDefinition{ActorID: actor, ProviderID: provider, ContractID: wire.ContractKeyValue, Values: map[string]string{"URL": "x"}}
}

// providerResponder answers kv invocations for provider key on nc after the
// issuer check a real provider applies (trusting issuers).
func providerResponder(t *testing.T, nc *nats.Conn, prefix, key string, issuers []string, seen chan<- *lattice.Invocation) {
	t.Helper()
	trusted := trust.NewIssuers(issuers)
	sub, err := nc.Subscribe(lattice.RPCProvider(prefix, key, "default"), func(m *nats.Msg) {
		resp := &lattice.InvocationResponse{}
		inv, err := lattice.DecodeInvocation(m.Data)
		if err == nil {
			resp.InvocationID = inv.ID
			var cl *trust.Claims[trust.InvocationClaims]
			if cl, err = trusted.Check(inv, key); err == nil && cl.Issuer == "" {
				err = errors.New("no issuer")
			}
		}
		if err != nil {
			resp.Error = err.Error()
		} else {
			select {
			case seen <- inv:
			default:
			}
			resp.Msg, _ = lattice.Marshal(int32(42))
		}
		b, _ := resp.Encode()
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func waitLink(t *testing.T, n *mnode, actor, contract string) {
	t.Helper()
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, ok := n.h.state.link(actor, contract, "default"); !ok {
			return fmt.Errorf("host %s does not know the %s link of %s", n.h.ID(), contract, actor)
		}
		return nil
	})
}

func echoServed(m *metrics.Metrics, key string) float64 {
	return testutil.ToFloat64(m.InvocationsTotal.WithLabelValues(key, "Echo.Echo", metrics.ResultOK))
}

// TestMultiNodeThreeHosts: three hosts with distinct cluster keys, trusting
// each other, on one real nats-server, form one lattice.
func TestMultiNodeThreeHosts(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	keys := clusterKeys(t, 3)
	issuers := pubKeys(keys...)
	a := startNode(t, srv.URL, "test", keys[0], issuers)
	b := startNode(t, srv.URL, "test", keys[1], issuers)
	c := startNode(t, srv.URL, "test", keys[2], issuers)

	hosts := pingHosts(t, a.nc, "test", a.h.ID(), b.h.ID(), c.h.ID())
	if len(hosts) != 3 {
		t.Fatalf("ping.hosts answered by %d hosts, want 3: %v", len(hosts), hosts)
	}
	for _, n := range []*mnode{a, b, c} {
		hi, ok := hosts[n.h.ID()]
		if !ok {
			t.Fatalf("host %s missing from ping.hosts", n.h.ID())
		}
		for _, k := range issuers {
			if !strings.Contains(hi.ClusterIssuers, k) {
				t.Fatalf("host %s cluster_issuers %q lacks %s", n.h.ID(), hi.ClusterIssuers, k)
			}
		}
	}

	fwd := a.startActor(t, hostcallPkg, 1, trust.SignActorOptions{Name: "fwd", Caps: []string{wire.ContractKeyValue}})
	echo := c.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo", CallAlias: "c-echo"})
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	seen := make(chan *lattice.Invocation, 1)
	providerResponder(t, b.nc, "test", provider.PublicKey(), issuers, seen)

	// The link is put through host A's control connection; whichever host
	// acks it, every host learns it from the replicated cache.
	var ack lattice.Ack
	a.ctlRequest(t, a.ctl.LinkdefsPut(), kvLink(fwd.Key, provider.PublicKey()), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	for _, n := range []*mnode{a, b, c} {
		waitLink(t, n, fwd.Key, wire.ContractKeyValue)
	}

	t.Run("actor on A calls provider on B", func(t *testing.T) {
		arg, _ := lattice.Marshal(wire.KVIncrementRequest{Key: "c", Value: 1})
		out, err := a.forwardVia(t, fwd.Key, forward{Namespace: wire.ContractKeyValue, Operation: wire.OpKVIncrement, Payload: arg})
		if err != nil {
			t.Fatal(err)
		}
		var n int32
		if err := lattice.Unmarshal(out, &n); err != nil || n != 42 {
			t.Fatalf("reply %v %v", n, err)
		}
		inv := <-seen
		if inv.Origin.PublicKey != fwd.Key || inv.HostID != a.h.ID() || inv.Target.ContractID != wire.ContractKeyValue {
			t.Fatalf("invocation %+v", inv)
		}
		// The provider saw an invocation signed by A's own cluster key.
		claims, err := trust.NewIssuers([]string{keys[0].PublicKey()}).Check(inv, provider.PublicKey())
		if err != nil || claims.Issuer != keys[0].PublicKey() {
			t.Fatalf("invocation not signed by host A's cluster key: %v %+v", err, claims)
		}
	})
	t.Run("actor on A calls actor on C", func(t *testing.T) {
		before := echoServed(c.m, echo.Key)
		out, err := a.forwardVia(t, fwd.Key, forward{Namespace: echo.Key, Operation: "Echo.Echo", Payload: []byte("by key")})
		if err != nil || string(out) != "by key" {
			t.Fatalf("%q %v", out, err)
		}
		// By call alias: A learnt C's actor's claims from the cache.
		testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			if _, ok := a.h.state.resolveAlias("c_echo"); !ok {
				return errors.New("host A cannot resolve host C's call alias")
			}
			return nil
		})
		out, err = a.forwardVia(t, fwd.Key, forward{Namespace: "c_echo", Operation: "Echo.Echo", Payload: []byte("by alias")})
		if err != nil || string(out) != "by alias" {
			t.Fatalf("%q %v", out, err)
		}
		if got := echoServed(c.m, echo.Key); got != before+2 {
			t.Fatalf("host C served %v echo calls, want %v", got, before+2)
		}
	})
}

// TestMultiNodeTrustUnknownIssuer: a host whose cluster key the others do not
// trust cannot invoke their actors, and they count the rejection.
func TestMultiNodeTrustUnknownIssuer(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	keys := clusterKeys(t, 4)
	trusted := pubKeys(keys[:3]...)
	a := startNode(t, srv.URL, "test", keys[0], trusted)
	b := startNode(t, srv.URL, "test", keys[1], trusted)
	_ = startNode(t, srv.URL, "test", keys[2], trusted)
	d := startNode(t, srv.URL, "test", keys[3], pubKeys(keys...)) // trusts everyone; nobody trusts it

	echo := a.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	fwd := d.startActor(t, hostcallPkg, 1, trust.SignActorOptions{Name: "fwd"})
	mustEchoVia(t, b, echo.Key) // trusted peers reach it

	before := testutil.ToFloat64(a.m.InvocationsRejected.WithLabelValues(string(lattice.ReasonUnknownIssuer)))
	okBefore := echoServed(a.m, echo.Key)
	_, err := d.forwardVia(t, fwd.Key, forward{Namespace: echo.Key, Operation: "Echo.Echo", Payload: []byte("x")})
	if err == nil || !strings.Contains(err.Error(), string(lattice.ReasonUnknownIssuer)) {
		t.Fatalf("untrusted host's call: %v, want an %s error", err, lattice.ReasonUnknownIssuer)
	}
	t.Logf("untrusted host's actor got: %v", err)
	// Directly, signed with the untrusted key, too.
	if _, err := invokeVia(d.nc, keys[3], "test", d.h.ID(), echo.Key, "Echo.Echo", []byte("x"), 5*time.Second); err == nil ||
		!strings.Contains(err.Error(), string(lattice.ReasonUnknownIssuer)) {
		t.Fatalf("direct untrusted call: %v", err)
	}
	if got := testutil.ToFloat64(a.m.InvocationsRejected.WithLabelValues(string(lattice.ReasonUnknownIssuer))); got != before+2 {
		t.Fatalf("host A rejections[unknown_issuer] = %v, want %v", got, before+2)
	}
	if echoServed(a.m, echo.Key) != okBefore {
		t.Fatal("an untrusted invocation reached the actor")
	}
}

func mustEchoVia(t *testing.T, n *mnode, key string) {
	t.Helper()
	out, err := invokeVia(n.nc, n.cluster, n.prefix, n.h.ID(), key, "Echo.Echo", []byte("ping"), 5*time.Second)
	if err != nil || string(out) != "ping" {
		t.Fatalf("echo via %s: %q %v", n.h.ID(), out, err)
	}
}

// caller calls one actor in a loop until stopped, counting outcomes.
type caller struct {
	signer     atomic.Pointer[trust.KeyPair]
	ok, failed atomic.Int64
	okBySigner sync.Map // public key -> *atomic.Int64
	mu         sync.Mutex
	errs       []string
	failStarts []time.Time // when each failed call was sent
	maxLatency atomic.Int64
	stop       chan struct{}
	done       chan struct{}
}

func startCaller(nc *nats.Conn, signer *trust.KeyPair, prefix, actorKey string, timeout time.Duration) *caller {
	c := &caller{stop: make(chan struct{}), done: make(chan struct{})}
	c.signer.Store(signer)
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			s := c.signer.Load()
			start := time.Now()
			out, err := invokeVia(nc, s, prefix, "", actorKey, "Echo.Echo", []byte("r"), timeout)
			if d := int64(time.Since(start)); d > c.maxLatency.Load() {
				c.maxLatency.Store(d)
			}
			if err == nil && string(out) != "r" {
				err = fmt.Errorf("wrong reply %q", out)
			}
			if err != nil {
				c.failed.Add(1)
				c.mu.Lock()
				c.errs = append(c.errs, fmt.Sprintf("%s after %v", err, time.Since(start)))
				c.failStarts = append(c.failStarts, start)
				c.mu.Unlock()
				continue
			}
			c.ok.Add(1)
			v, _ := c.okBySigner.LoadOrStore(s.PublicKey(), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
	}()
	return c
}

func (c *caller) okWith(k *trust.KeyPair) int64 {
	v, ok := c.okBySigner.Load(k.PublicKey())
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (c *caller) halt() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// waitCalls waits until the caller has made n more successful calls.
func (c *caller) waitCalls(t *testing.T, n int64) {
	t.Helper()
	target := c.ok.Load() + n
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := c.ok.Load(); got < target {
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("%d successful calls, waiting for %d; %d failed, last errors %v", got, target, c.failed.Load(), c.errs[max(0, len(c.errs)-3):])
		}
		return nil
	})
}

// stopHost stops n cleanly through the control interface and waits until it
// no longer answers ping.hosts (its Run has returned by then).
func stopHost(t *testing.T, via *nats.Conn, n *mnode) {
	t.Helper()
	var ack lattice.Ack
	b, _ := json.Marshal(lattice.StopHostCommand{})
	msg, err := via.Request(n.ctl.Cmd(n.h.ID(), lattice.CmdStopHost), b, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(msg.Data, &ack); err != nil || !ack.Accepted {
		t.Fatalf("stop %s: %s %v", n.h.ID(), ack.Error, err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, ok := pingHosts(t, via, n.prefix)[n.h.ID()]; ok {
			return fmt.Errorf("host %s still answers ping", n.h.ID())
		}
		return nil
	})
}

// TestMultiNodeIssuerRotation: a rolling restart from hosts trusting {K1} to
// hosts trusting {K1,K2}, then callers switching to K2, loses no call.
func TestMultiNodeIssuerRotation(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	keys := clusterKeys(t, 2)
	k1, k2 := keys[0], keys[1]
	old1 := startNode(t, srv.URL, "test", k1, pubKeys(k1))
	old2 := startNode(t, srv.URL, "test", k1, pubKeys(k1))
	echo := testenv.SignActor(t, old1.dir, echoPkg, trust.SignActorOptions{Name: "echo"})
	old1.launch(t, echo, 1)
	old2.launch(t, echo, 1)

	client := dial(t, srv.URL)
	cl := startCaller(client, k1, "test", echo.Key, 5*time.Second)
	defer cl.halt()
	cl.waitCalls(t, 20)

	// A K2-signed call is still refused by the old hosts (sanity).
	if _, err := invokeVia(client, k2, "test", "", echo.Key, "Echo.Echo", []byte("x"), 5*time.Second); err == nil ||
		!strings.Contains(err.Error(), string(lattice.ReasonUnknownIssuer)) {
		t.Fatalf("K2 call before rotation: %v", err)
	}

	// Rolling restart: each replacement trusts {K1,K2} and serves before the
	// host it replaces stops.
	both := pubKeys(k1, k2)
	var replacements []*mnode
	for _, old := range []*mnode{old1, old2} {
		r := startNode(t, srv.URL, "test", k2, both)
		r.launch(t, echo, 1)
		testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
			if echoServed(r.m, echo.Key) == 0 {
				return errors.New("replacement not serving yet")
			}
			return nil
		})
		stopHost(t, client, old)
		cl.waitCalls(t, 20)
		replacements = append(replacements, r)
	}

	// All hosts trust K2 now: switch the caller.
	cl.signer.Store(k2)
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := cl.okWith(k2); n < 50 {
			return fmt.Errorf("%d K2-signed calls succeeded", n)
		}
		return nil
	})
	cl.halt()
	t.Logf("rotation: %d calls succeeded (%d signed K1, %d signed K2), %d failed; slowest %v",
		cl.ok.Load(), cl.okWith(k1), cl.okWith(k2), cl.failed.Load(), time.Duration(cl.maxLatency.Load()))
	if f := cl.failed.Load(); f != 0 {
		t.Fatalf("%d calls failed during the rotation: %v", f, cl.errs)
	}
	for _, r := range replacements {
		if echoServed(r.m, echo.Key) == 0 {
			t.Fatalf("replacement %s served nothing", r.h.ID())
		}
	}
}

// TestMultiNodeDeath: a host dies abruptly; callers of an actor it shared with
// another host keep getting answers, and nothing hangs.
func TestMultiNodeDeath(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	keys := clusterKeys(t, 2)
	issuers := pubKeys(keys...)
	a := startNode(t, srv.URL, "test", keys[0], issuers)
	c := startNode(t, srv.URL, "test", keys[1], issuers)
	shared := testenv.SignActor(t, a.dir, echoPkg, trust.SignActorOptions{Name: "shared"})
	a.launch(t, shared, 1)
	c.launch(t, shared, 1)
	onlyC := c.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "only-on-c"})
	mustEchoVia(t, a, onlyC.Key)

	const callTimeout = 2 * time.Second
	client := dial(t, srv.URL)
	cl := startCaller(client, keys[0], "test", shared.Key, callTimeout)
	defer cl.halt()
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if echoServed(a.m, shared.Key) == 0 || echoServed(c.m, shared.Key) == 0 {
			cl.mu.Lock()
			defer cl.mu.Unlock()
			return fmt.Errorf("the queue group has not used both hosts yet: %d ok, %d failed %v", cl.ok.Load(), cl.failed.Load(), cl.errs[max(0, len(cl.errs)-3):])
		}
		return nil
	})
	failedBefore := cl.failed.Load()

	died := time.Now()
	c.crash()

	// ping.hosts is answered live: C vanishes from it as soon as it is gone.
	// gone is when the first ping that no longer lists C was sent; pings is
	// how many were sent until then.
	var gone time.Duration
	pings := 0
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		sent := time.Since(died)
		pings++
		if _, ok := pingHosts(t, client, "test", a.h.ID())[c.h.ID()]; ok {
			return errors.New("dead host still listed")
		}
		gone = sent
		return nil
	})

	// An actor that ran only on C.
	start := time.Now()
	_, err := invokeVia(client, keys[0], "test", "", onlyC.Key, "Echo.Echo", []byte("x"), 10*time.Second)
	onlyCAfter := time.Since(start)
	if err == nil {
		t.Fatal("a call to an actor that ran only on the dead host succeeded")
	}
	if !errors.Is(err, rpc.ErrNoResponders) {
		t.Errorf("call to an actor only on the dead host: %v, want no responders", err)
	}

	// Callers of the shared actor keep being served, by A.
	servedByA := echoServed(a.m, shared.Key)
	cl.waitCalls(t, 100)
	cl.halt()
	if got := echoServed(a.m, shared.Key); got < servedByA+100 {
		t.Fatalf("host A served %v calls after the death, want ≥ %v", got-servedByA, 100)
	}
	maxLat := time.Duration(cl.maxLatency.Load())
	t.Logf("node death: ping.hosts stopped listing C: ping #%d, sent %v (%.3fs) after the death, was the first without C", pings, gone, gone.Seconds())
	t.Logf("node death: call to actor only on C failed after %v (%.3fs): %v", onlyCAfter, onlyCAfter.Seconds(), err)
	t.Logf("node death: shared-actor calls: %d ok, %d failed (%d of them failed before the death), slowest %v (timeout %v); errors: %v",
		cl.ok.Load(), cl.failed.Load(), failedBefore, maxLat, callTimeout, cl.errs)
	if maxLat > callTimeout+time.Second {
		t.Fatalf("a call took %v, beyond its %v timeout", maxLat, callTimeout)
	}
	if failedBefore != 0 {
		t.Fatalf("%d calls failed before the death", failedBefore)
	}
	// Only a call in flight to C when it died may be lost (it times out);
	// every call sent after C left ping.hosts is answered.
	for i, at := range cl.failStarts {
		if at.After(died.Add(gone)) {
			t.Fatalf("a call sent %v after the death failed: %s", at.Sub(died), cl.errs[i])
		}
	}
}

// TestMultiNodePrefixIsolation: two lattices on one server share nothing.
func TestMultiNodePrefixIsolation(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	key := clusterKeys(t, 1)[0] // same trust on both: isolation comes from the prefix alone
	issuers := pubKeys(key)
	watch := dial(t, srv.URL)
	var mu sync.Mutex
	var redEvents []lattice.CloudEvent
	var redRaw []string
	sub, err := watch.Subscribe(lattice.Events("red"), func(m *nats.Msg) {
		var e lattice.CloudEvent
		if json.Unmarshal(m.Data, &e) == nil {
			mu.Lock()
			redEvents = append(redEvents, e)
			redRaw = append(redRaw, string(m.Data))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = watch.Flush()

	red := startNode(t, srv.URL, "red", key, issuers)
	blue := startNode(t, srv.URL, "blue", key, issuers)
	blue2 := startNode(t, srv.URL, "blue", key, issuers)

	redPing := pingHosts(t, watch, "red", red.h.ID())
	bluePing := pingHosts(t, watch, "blue", blue.h.ID(), blue2.h.ID())
	if len(redPing) != 1 || len(bluePing) != 2 {
		t.Fatalf("ping red %v, blue %v", redPing, bluePing)
	}
	for id := range redPing {
		if _, ok := bluePing[id]; ok {
			t.Fatalf("host %s answers both lattices", id)
		}
	}

	fwd := red.startActor(t, hostcallPkg, 1, trust.SignActorOptions{Name: "red-fwd", Caps: []string{wire.ContractKeyValue}})
	blueEcho := blue.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "blue-echo", CallAlias: "blue-echo", Caps: []string{wire.ContractKeyValue}})
	mustEchoVia(t, blue2, blueEcho.Key)

	// A red actor cannot reach the blue actor, by key or by alias.
	if _, err := red.forwardVia(t, fwd.Key, forward{Namespace: blueEcho.Key, Operation: "Echo.Echo", Payload: []byte("x")}); err == nil ||
		!strings.Contains(err.Error(), "Failed to perform RPC call: request timeout") { // wasmCloud's text for no responders too
		t.Fatalf("red actor → blue actor by key: %v", err)
	}
	if _, err := red.forwardVia(t, fwd.Key, forward{Namespace: "blue_echo", Operation: "Echo.Echo", Payload: []byte("x")}); err == nil ||
		!strings.Contains(err.Error(), "Could not identify suitable target") {
		t.Fatalf("red actor → blue alias: %v", err)
	}
	// Nor can an invocation sent on red's subjects.
	if _, err := invokeVia(watch, key, "red", "", blueEcho.Key, "Echo.Echo", []byte("x"), 5*time.Second); !errors.Is(err, rpc.ErrNoResponders) {
		t.Fatalf("red invocation of a blue actor: %v", err)
	}

	provider, _ := trust.CreateKeyPair(lattice.KindService)
	var ack lattice.Ack
	red.ctlRequest(t, red.ctl.LinkdefsPut(), kvLink(fwd.Key, provider.PublicKey()), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	blue.ctlRequest(t, blue.ctl.LinkdefsPut(), kvLink(blueEcho.Key, provider.PublicKey()), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	waitLink(t, red, fwd.Key, wire.ContractKeyValue)
	waitLink(t, blue2, blueEcho.Key, wire.ContractKeyValue)
	if _, ok := red.h.state.link(blueEcho.Key, wire.ContractKeyValue, "default"); ok {
		t.Fatal("red host knows a blue link")
	}
	for _, n := range []*mnode{blue, blue2} {
		if _, ok := n.h.state.link(fwd.Key, wire.ContractKeyValue, "default"); ok {
			t.Fatal("blue host knows a red link")
		}
	}
	var links lattice.LinksList
	red.ctlRequest(t, red.ctl.GetLinks(), nil, &links)
	if len(links.Links) != 1 || links.Links[0].ActorID != fwd.Key {
		t.Fatalf("red get.links: %+v", links)
	}

	// Streams: one per prefix, each with only its own entries.
	js, err := jetstream.New(watch)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := map[string]bool{}
	for n := range js.StreamNames(ctx).Name() {
		names[n] = true
	}
	for _, p := range []string{"red", "blue"} {
		if !names[lattice.CacheStream(p)] || !names[lattice.RevocationsStream(p)] {
			t.Fatalf("streams %v: want each prefix's cache and revocations bucket", names)
		}
	}
	if len(names) != 4 {
		t.Fatalf("streams %v", names)
	}
	for prefix, own := range map[string][]string{
		"red":  {lattice.CacheLinkdef("red", lattice.LinkID(fwd.Key, wire.ContractKeyValue, "default")), lattice.CacheClaims("red", fwd.Key)},
		"blue": {lattice.CacheLinkdef("blue", lattice.LinkID(blueEcho.Key, wire.ContractKeyValue, "default")), lattice.CacheClaims("blue", blueEcho.Key)},
	} {
		s, err := js.Stream(ctx, lattice.CacheStream(prefix))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != lattice.CacheSubjects(prefix) {
			t.Fatalf("%s subjects %v", info.Config.Name, info.Config.Subjects)
		}
		for subj := range info.State.Subjects {
			if !strings.HasPrefix(subj, "lc."+prefix+".") {
				t.Fatalf("%s holds %s", info.Config.Name, subj)
			}
		}
		for _, subj := range own {
			if info.State.Subjects[subj] == 0 {
				t.Fatalf("%s lacks %s: %v", info.Config.Name, subj, info.State.Subjects)
			}
		}
		// Besides refmap entries (one per launched actor file), only the
		// lattice's own claims and links.
		n := 0
		for subj := range info.State.Subjects {
			if !strings.HasPrefix(subj, "lc."+prefix+".refmap.") {
				n++
			}
		}
		if n != len(own) {
			t.Fatalf("%s holds %v, want only %v (and refmaps)", info.Config.Name, info.State.Subjects, own)
		}
	}

	// Events on wasmbus.evt.red: red's own (host_started, actor_started,
	// linkdef_set) and nothing from or about a blue host or actor.
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, e := range redEvents {
			seen[strings.TrimPrefix(e.Type, lattice.EventTypePrefix)] = true
		}
		for _, k := range []string{lattice.EventHostStarted, lattice.EventActorStarted, lattice.EventLinkdefSet} {
			if !seen[k] {
				return fmt.Errorf("no %s event on red yet: %v", k, seen)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for i, e := range redEvents {
		for _, other := range []string{blue.h.ID(), blue2.h.ID(), blueEcho.Key} {
			if e.Source == other || strings.Contains(redRaw[i], other) {
				t.Fatalf("red event mentions blue %s: %s", other, redRaw[i])
			}
		}
		if e.Source != red.h.ID() {
			t.Fatalf("red event from %s: %s", e.Source, redRaw[i])
		}
	}
}

// natsNode is one clustered nats-server process.
type natsNode struct {
	name   string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *strings.Builder
	outMu  *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (n *natsNode) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// startNATSCluster runs three nats-server processes clustered with
// JetStream, each with its own store, on free loopback ports.
func startNATSCluster(t *testing.T) []*natsNode {
	t.Helper()
	bin := testenv.NATSServerBinary(t)
	root := t.TempDir()
	const n = 3
	client, route := make([]int, n), make([]int, n)
	for i := range client {
		client[i], route[i] = testenv.FreePort(t), testenv.FreePort(t)
	}
	var routes []string
	for i := range route {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", route[i]))
	}
	nodes := make([]*natsNode, n)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(root, name)
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 256MB
}
cluster {
  name: latticetest
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, name, client[i], dir, route[i], strings.Join(routes, ", "))
		path := filepath.Join(root, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		nn := &natsNode{name: name, url: fmt.Sprintf("nats://127.0.0.1:%d", client[i]), exited: make(chan struct{}), out: &strings.Builder{}, outMu: &sync.Mutex{}}
		nn.cmd = exec.Command(bin, "-c", path)
		nn.cmd.Stdout = lockedWriter{nn.outMu, nn.out}
		nn.cmd.Stderr = nn.cmd.Stdout
		nn.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := nn.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = nn.cmd.Wait(); close(nn.exited) }()
		t.Cleanup(func() {
			_ = nn.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-nn.exited:
			case <-time.After(10 * time.Second):
				_ = nn.cmd.Process.Kill()
				<-nn.exited
			}
			if t.Failed() {
				nn.outMu.Lock()
				t.Logf("%s output:\n%s", nn.name, nn.out.String())
				nn.outMu.Unlock()
			}
		})
		nodes[i] = nn
	}
	// Ready when an R3 stream can be created: the meta group has a leader and
	// knows all three peers.
	admin, err := nats.Connect(nodes[0].url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		js, err := jetstream.New(admin)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "READY", Subjects: []string{"ready.>"}, Replicas: 3, Storage: jetstream.MemoryStorage}); err != nil {
			return err
		}
		return js.DeleteStream(ctx, "READY")
	})
	return nodes
}

// TestMultiNodeCluster: the lattice cache, replicated three times over a
// three-server NATS cluster, survives the loss of a server.
func TestMultiNodeCluster(t *testing.T) {
	servers := startNATSCluster(t)
	keys := clusterKeys(t, 4)
	issuers := pubKeys(keys...)
	r3 := func(o *Options) { o.CacheReplicas = 3 }
	h1 := startNode(t, servers[0].url, "test", keys[0], issuers, r3)
	h2 := startNode(t, servers[1].url, "test", keys[1], issuers, r3)
	h3 := startNode(t, servers[2].url, "test", keys[2], issuers, r3)
	if got := pingHosts(t, h1.nc, "test", h1.h.ID(), h2.h.ID(), h3.h.ID()); len(got) != 3 {
		t.Fatalf("ping over the cluster: %v", got)
	}

	fwd := testenv.SignActor(t, h1.dir, hostcallPkg, trust.SignActorOptions{Name: "fwd", Caps: []string{wire.ContractKeyValue}})
	h1.launch(t, fwd, 1)
	echo := h2.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	var ack lattice.Ack
	h1.ctlRequest(t, h1.ctl.LinkdefsPut(), kvLink(fwd.Key, provider.PublicKey()), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	for _, n := range []*mnode{h1, h2, h3} {
		waitLink(t, n, fwd.Key, wire.ContractKeyValue)
	}
	// Across servers: actor on h1 (server 1) → actor on h2 (server 2).
	if out, err := h1.forwardVia(t, fwd.Key, forward{Namespace: echo.Key, Operation: "Echo.Echo", Payload: []byte("x1")}); err != nil || string(out) != "x1" {
		t.Fatalf("cross-server call before the kill: %q %v", out, err)
	}

	js, err := jetstream.New(h1.nc)
	if err != nil {
		t.Fatal(err)
	}
	streamInfo := func() (*jetstream.StreamInfo, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, lattice.CacheStream("test"))
		if err != nil {
			return nil, err
		}
		return s.Info(ctx)
	}
	info, err := streamInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("LATTICECACHE_test: %d replicas, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	var victim *natsNode
	var survivors []*natsNode
	for _, s := range servers {
		if s.name == info.Cluster.Leader {
			victim = s
		} else {
			survivors = append(survivors, s)
		}
	}
	if victim == nil {
		t.Fatalf("stream leader %q is none of the servers", info.Cluster.Leader)
	}
	t.Logf("killing %s, the LATTICECACHE_test stream leader", victim.name)
	killed := time.Now()
	victim.kill()

	// Watch from a survivor: the stream gets a new leader among survivors.
	watch := dial(t, survivors[0].url)
	js, err = jetstream.New(watch)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		info, err := streamInfo()
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == victim.name {
			return fmt.Errorf("no new leader: %+v", info.Cluster)
		}
		return nil
	})
	t.Logf("stream has a new leader %v after the kill", time.Since(killed))

	// A new host on a survivor replays the link made before the kill: at
	// once, or, while the cluster still recovers, once its cache retry opens
	// the stream (the host refuses link changes until then).
	h4 := startNode(t, survivors[0].url, "test", keys[3], issuers, r3)
	testenv.CheckFor(t, 45*time.Second, 50*time.Millisecond, func() error {
		if _, ok := h4.h.state.link(fwd.Key, wire.ContractKeyValue, "default"); !ok {
			return errors.New("a host started after the kill does not know the link")
		}
		return nil
	})
	h4.launch(t, fwd, 1)
	// And uses it: h4's actor (survivor 0) → provider answering on survivor 1.
	provConn := dial(t, survivors[1].url)
	seen := make(chan *lattice.Invocation, 1)
	providerResponder(t, provConn, "test", provider.PublicKey(), issuers, seen)
	// fwd also runs on h1 (same queue group); retry until h4's own instance,
	// which knows the link only from the replay, served the call.
	arg, _ := lattice.Marshal(wire.KVIncrementRequest{Key: "c", Value: 1})
	b, _ := lattice.Marshal(forward{Namespace: wire.ContractKeyValue, Operation: wire.OpKVIncrement, Payload: arg})
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		before := testutil.ToFloat64(h4.m.InvocationsTotal.WithLabelValues(fwd.Key, "Call.Forward", metrics.ResultOK))
		out, err := invokeVia(watch, keys[3], "test", h4.h.ID(), fwd.Key, "Call.Forward", b, 5*time.Second)
		if err != nil {
			return err
		}
		var n int32
		if err := lattice.Unmarshal(out, &n); err != nil || n != 42 {
			return fmt.Errorf("reply %v %v", n, err)
		}
		if testutil.ToFloat64(h4.m.InvocationsTotal.WithLabelValues(fwd.Key, "Call.Forward", metrics.ResultOK)) == before {
			return errors.New("served by another host's instance; try again")
		}
		return nil
	})
	inv := <-seen
	if inv.Origin.PublicKey != fwd.Key {
		t.Fatalf("provider got %+v", inv)
	}

	// An actor call across the surviving servers: an echo on a host on
	// survivor 1, called by the actor on h4 (survivor 0).
	h5 := startNode(t, survivors[1].url, "test", keys[2], issuers, r3)
	echo2 := h5.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo2"})
	if out, err := h4.forwardVia(t, fwd.Key, forward{Namespace: echo2.Key, Operation: "Echo.Echo", Payload: []byte("x2")}); err != nil || string(out) != "x2" {
		t.Fatalf("cross-server call after the kill: %q %v", out, err)
	}
	if echoServed(h5.m, echo2.Key) != 1 {
		t.Fatal("echo2 not served by h5")
	}
	// The link also survives a put after the kill (cache still writable).
	provider2, _ := trust.CreateKeyPair(lattice.KindService)
	ld := kvLink(echo2.Key, provider2.PublicKey())
	h4.ctlRequest(t, h4.ctl.LinkdefsPut(), ld, &ack)
	if !ack.Accepted {
		t.Fatalf("link put after the kill: %s", ack.Error)
	}
	waitLink(t, h5, echo2.Key, wire.ContractKeyValue)
}

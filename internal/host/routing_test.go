package host

import (
	"encoding/json"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

type forward struct {
	Binding   string `msgpack:"binding"`
	Namespace string `msgpack:"namespace"`
	Operation string `msgpack:"operation"`
	Payload   []byte `msgpack:"payload"`
}

func (f *fixture) forward(t *testing.T, via string, fw forward) ([]byte, error) {
	t.Helper()
	b, err := lattice.Marshal(fw)
	if err != nil {
		t.Fatal(err)
	}
	return f.call(t, via, "Call.Forward", b)
}

// fakeProvider answers invocations on a provider subject after checking them
// with the same issuer check a real provider applies.
func fakeProvider(t *testing.T, f *fixture, key, link string, seen chan<- *lattice.Invocation) {
	t.Helper()
	trusted := trust.NewIssuers([]string{f.cluster.PublicKey()})
	sub, err := f.nc.Subscribe(lattice.RPCProvider("test", key, link), func(m *nats.Msg) {
		resp := &lattice.InvocationResponse{}
		inv, err := lattice.DecodeInvocation(m.Data)
		if err == nil {
			resp.InvocationID = inv.ID
			_, err = trusted.Check(inv, key)
		}
		if err != nil {
			resp.Error = err.Error()
		} else {
			seen <- inv
			resp.Msg, _ = lattice.Marshal(int32(42))
		}
		b, _ := resp.Encode()
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = f.nc.Flush()
}

func TestHostCallRouting(t *testing.T) {
	f := newFixture(t)
	fwd := f.startActor(t, hostcallPkg, 1, trust.SignActorOptions{Name: "fwd", Caps: []string{wire.ContractKeyValue}})
	noCaps := f.startActor(t, hostcallPkg, 1, trust.SignActorOptions{Name: "nocaps"})
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo", CallAlias: "the-echo"})
	provider, _ := trust.CreateKeyPair(lattice.KindService)

	t.Run("actor by key", func(t *testing.T) {
		out, err := f.forward(t, fwd.Key, forward{Namespace: echo.Key, Operation: "Echo.Echo", Payload: []byte("k")})
		if err != nil || string(out) != "k" {
			t.Fatalf("%q %v", out, err)
		}
	})
	t.Run("actor by call alias", func(t *testing.T) {
		out, err := f.forward(t, noCaps.Key, forward{Namespace: "the_echo", Operation: "Echo.Echo", Payload: []byte("a")})
		if err != nil || string(out) != "a" {
			t.Fatalf("%q %v", out, err)
		}
	})
	t.Run("unclaimed contract is refused", func(t *testing.T) {
		_, err := f.forward(t, noCaps.Key, forward{Namespace: wire.ContractKeyValue, Operation: wire.OpKVIncrement})
		// wasmCloud's text, exactly (docs/protocol.md §5).
		if err == nil || err.Error() != "Host call function failed: Invocation not authorized: missing capability claim for wasmcloud:keyvalue" {
			t.Fatal(err)
		}
	})
	t.Run("claimed contract without a link", func(t *testing.T) {
		_, err := f.forward(t, fwd.Key, forward{Namespace: wire.ContractKeyValue, Operation: wire.OpKVIncrement})
		if err == nil || err.Error() != "Host call function failed: Invocation not authorized: missing link definition for wasmcloud:keyvalue on test" {
			t.Fatal(err)
		}
	})
	t.Run("unknown target", func(t *testing.T) {
		_, err := f.forward(t, fwd.Key, forward{Namespace: "nobody", Operation: "X.Y"})
		if err == nil || !strings.Contains(err.Error(), "Could not identify suitable target") {
			t.Fatal(err)
		}
	})
	t.Run("linked provider gets a signed invocation", func(t *testing.T) {
		seen := make(chan *lattice.Invocation, 1)
		fakeProvider(t, f, provider.PublicKey(), "default", seen)
		var a lattice.Ack
		f.ctlRequest(t, f.ctl.LinkdefsPut(), lattice.LinkDefinition{ActorID: fwd.Key, ProviderID: provider.PublicKey(),
			ContractID: wire.ContractKeyValue, Values: map[string]string{"URL": "x"}}, &a)
		if !a.Accepted {
			t.Fatal(a.Error)
		}
		arg, _ := lattice.Marshal(wire.KVIncrementRequest{Key: "c", Value: 1})
		out, err := f.forward(t, fwd.Key, forward{Namespace: wire.ContractKeyValue, Operation: wire.OpKVIncrement, Payload: arg})
		if err != nil {
			t.Fatal(err)
		}
		var n int32
		if err := lattice.Unmarshal(out, &n); err != nil || n != 42 {
			t.Fatalf("reply %v %v", n, err)
		}
		inv := <-seen
		if inv.Origin.PublicKey != fwd.Key || inv.Target.ContractID != wire.ContractKeyValue || inv.HostID != f.h.ID() {
			t.Fatalf("invocation %+v", inv)
		}
	})
}

func TestBuiltinsNeedTheirClaims(t *testing.T) {
	f := newFixture(t)
	withCaps := f.startActor(t, loggerPkg, 1, trust.SignActorOptions{Name: "logger", Caps: []string{wire.ContractLogging, wire.ContractNumberGen}})
	without := f.startActor(t, loggerPkg, 1, trust.SignActorOptions{Name: "bare"})
	out, err := f.call(t, withCaps.Key, "Gen.Guid", nil)
	if err != nil || !regexp.MustCompile(`^[0-9a-f-]{36}$`).Match(out) {
		t.Fatalf("guid %q %v", out, err)
	}
	if _, err := f.call(t, without.Key, "Gen.Guid", nil); err == nil || !strings.Contains(err.Error(), "missing capability claim for wasmcloud:builtin:logging") {
		t.Fatalf("unclaimed builtin: %v", err)
	}
}

func TestControlInterfaceQueries(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		// A configured core label loses to the platform's, as in wasmCloud.
		o.Labels = map[string]string{"region": "eu", lattice.LabelOS: "plan9"}
		o.CtlHost, o.RPCHost, o.ProvRPCHost = "nats://127.0.0.1:4222", "tls://[::1]:4223,nats://10.0.0.7:4222", "10.0.0.6:4224"
	})
	events := f.events(t)
	echo := f.startActor(t, echoPkg, 2, trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}, CallAlias: "echo"})

	// ping.hosts: every host answers on the inbox.
	inbox := nats.NewInbox()
	replies, _ := f.nc.SubscribeSync(inbox)
	_ = f.nc.PublishRequest(f.ctl.PingHosts(), inbox, nil)
	msg, err := replies.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info lattice.HostInfo
	if err := json.Unmarshal(msg.Data, &info); err != nil || info.ID != f.h.ID() || info.Labels["region"] != "eu" ||
		!strings.Contains(info.ClusterIssuers, f.cluster.PublicKey()) || info.LatticePrefix != "test" {
		t.Fatalf("host info %+v %v", info, err)
	}
	// wasmCloud's values: Rust's platform names, bare hosts.
	for k, v := range lattice.CoreLabels(runtime.GOARCH, runtime.GOOS) {
		if info.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, info.Labels[k], v)
		}
	}
	if info.CtlHost != "127.0.0.1" || info.RPCHost != "::1" || info.ProvRPCHost != "10.0.0.6" {
		t.Errorf("ctl_host %q, rpc_host %q, prov_rpc_host %q: want bare hosts", info.CtlHost, info.RPCHost, info.ProvRPCHost)
	}

	var claims lattice.ClaimsList
	f.ctlRequest(t, f.ctl.GetClaims(), nil, &claims)
	if len(claims.Claims) != 1 || claims.Claims[0].Subject != echo.Key || claims.Claims[0].Caps != wire.ContractHTTPServer || claims.Claims[0].CallAlias != "echo" {
		t.Fatalf("claims %+v", claims)
	}
	// No rev in the claims: wasmCloud shows iat instead, as a string; an
	// actor's contract_id is there, empty.
	iat := strconv.FormatInt(echo.Claims.IssuedAt, 10)
	if echo.Claims.Wascap.Rev != 0 || claims.Claims[0].Rev != iat {
		t.Errorf("rev %q, want iat %s", claims.Claims[0].Rev, iat)
	}
	raw, err := f.nc.Request(f.ctl.GetClaims(), nil, 10*time.Second)
	if err != nil || !strings.Contains(string(raw.Data), `"contract_id":""`) {
		t.Errorf("get.claims %s %v: want an empty contract_id", raw.Data, err)
	}
	var inventory lattice.HostInventory
	f.ctlRequest(t, f.ctl.GetInventory(f.h.ID()), nil, &inventory)
	if len(inventory.Actors) != 1 || len(inventory.Actors[0].Instances) != 2 || strconv.Itoa(int(inventory.Actors[0].Instances[0].Revision)) != iat {
		t.Errorf("inventory %+v: want revision %s", inventory, iat)
	}

	provider, _ := trust.CreateKeyPair(lattice.KindService)
	var a lattice.Ack
	ld := lattice.LinkDefinition{ActorID: echo.Key, ProviderID: provider.PublicKey(), ContractID: wire.ContractHTTPServer, Values: map[string]string{"PORT": "8080"}}
	f.ctlRequest(t, f.ctl.LinkdefsPut(), ld, &a)
	var links lattice.LinksList
	f.ctlRequest(t, f.ctl.GetLinks(), nil, &links)
	if !a.Accepted || len(links.Links) != 1 || links.Links[0].ID != lattice.LinkID(echo.Key, wire.ContractHTTPServer, "default") || links.Links[0].Values["PORT"] != "8080" {
		t.Fatalf("links %+v ack %+v", links, a)
	}
	f.ctlRequest(t, f.ctl.LinkdefsDel(), lattice.LinkDefinition{ActorID: echo.Key, ContractID: wire.ContractHTTPServer}, &a)
	f.ctlRequest(t, f.ctl.GetLinks(), nil, &links)
	if !a.Accepted || len(links.Links) != 0 {
		t.Fatalf("after del: %+v", links)
	}

	// Auctions answer only when labels satisfy the constraints.
	auction := func(constraints map[string]string) bool {
		inbox := nats.NewInbox()
		s, _ := f.nc.SubscribeSync(inbox)
		defer s.Unsubscribe()
		b, _ := json.Marshal(lattice.ActorAuctionRequest{ActorRef: "x", Constraints: constraints})
		_ = f.nc.PublishRequest(f.ctl.AuctionActor(), inbox, b)
		_, err := s.NextMsg(500 * time.Millisecond)
		return err == nil
	}
	if !auction(map[string]string{"region": "eu"}) || auction(map[string]string{"region": "us"}) {
		t.Fatal("auction did not follow labels")
	}
	f.ctlRequest(t, f.ctl.LabelPut(f.h.ID()), lattice.LabelCommand{Key: "region", Value: "us"}, &a)
	if !a.Accepted || !auction(map[string]string{"region": "us"}) {
		t.Fatal("label put not applied")
	}
	f.ctlRequest(t, f.ctl.LabelDel(f.h.ID()), lattice.LabelCommand{Key: "region"}, &a)
	if !a.Accepted || auction(map[string]string{"region": "us"}) {
		t.Fatal("label del not applied")
	}
	// The core labels are the platform's: neither changed nor removed.
	f.ctlRequest(t, f.ctl.LabelPut(f.h.ID()), lattice.LabelCommand{Key: lattice.LabelArch, Value: "vax"}, &a)
	if a.Accepted {
		t.Fatal("core label changed")
	}
	f.ctlRequest(t, f.ctl.LabelDel(f.h.ID()), lattice.LabelCommand{Key: lattice.LabelOSFamily}, &a)
	if a.Accepted {
		t.Fatal("core label removed")
	}

	// Providers need a supervisor; without one the host says so.
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchProvider), lattice.LaunchProviderCommand{ProviderRef: "x"}, &a)
	if a.Accepted || !strings.Contains(a.Error, "cannot manage providers") {
		t.Fatalf("provider launch: %+v", a)
	}

	// Events: two actor_started, one actors_started, linkdef set and deleted.
	want := map[string]int{lattice.EventActorStarted: 2, lattice.EventActorsStarted: 1, lattice.EventLinkdefSet: 1, lattice.EventLinkdefDeleted: 1}
	checkEvents(t, events, want)
}

func checkEvents(t *testing.T, events <-chan lattice.CloudEvent, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	deadline := time.After(5 * time.Second)
	for {
		done := true
		for k, n := range want {
			if got[k] < n {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case e := <-events:
			if e.SpecVersion != "1.0" || e.DataContentType != "application/json" || e.ID == "" {
				t.Fatalf("bad envelope %+v", e)
			}
			got[strings.TrimPrefix(e.Type, lattice.EventTypePrefix)]++
		case <-deadline:
			t.Fatalf("events: got %v, want at least %v", got, want)
		}
	}
}

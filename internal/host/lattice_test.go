package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// peer starts another host on the same NATS server and lattice, trusting and
// signing with the same cluster key as f.
func peer(t *testing.T, f *fixture, url string) *fixture {
	t.Helper()
	p := newFixtureAt(t, url, func(o *Options) { o.ClusterKey = f.cluster })
	p.cluster = f.cluster
	return p
}

func TestLatticeCacheTeachesNewHosts(t *testing.T) {
	srv := testenv.NATS(t)
	a := newFixtureAt(t, srv.ClientURL())
	echo := a.startActor(t, echoPkg, 1, lattice.SignActorOptions{Name: "echo", CallAlias: "cached-echo"})
	provider, _ := lattice.CreateKeyPair(lattice.KindService)
	var ack lattice.Ack
	keep := lattice.LinkDefinition{ActorID: echo.Key, ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue}
	gone := lattice.LinkDefinition{ActorID: echo.Key, ProviderID: provider.PublicKey(), ContractID: wire.ContractHTTPServer}
	for _, ld := range []lattice.LinkDefinition{keep, gone} {
		a.ctlRequest(t, a.ctl.LinkdefsPut(), ld, &ack)
		if !ack.Accepted {
			t.Fatal(ack.Error)
		}
	}
	a.ctlRequest(t, a.ctl.LinkdefsDel(), gone, &ack)
	// A corrupt entry must not keep a host from starting.
	if err := a.nc.Publish(lattice.CacheLinkdef("test", "GARBAGE"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	b := peer(t, a, srv.ClientURL())
	if _, ok := b.h.state.link(echo.Key, wire.ContractKeyValue, "default"); !ok {
		t.Fatal("new host does not know the link made before it started")
	}
	if _, ok := b.h.state.link(echo.Key, wire.ContractHTTPServer, "default"); ok {
		t.Fatal("new host knows a deleted link")
	}
	if key, ok := b.h.state.resolveAlias("cached_echo"); !ok || key != echo.Key {
		t.Fatal("new host cannot resolve the call alias from cached claims")
	}

	// Changes made through one host reach the other live.
	a.ctlRequest(t, a.ctl.LinkdefsDel(), keep, &ack)
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if _, ok := b.h.state.link(echo.Key, wire.ContractKeyValue, "default"); ok {
			return errString("deletion not seen by the other host")
		}
		return nil
	})
}

type errString string

func (e errString) Error() string { return string(e) }

func TestTwoHostsShareAnActorsLoad(t *testing.T) {
	srv := testenv.NATS(t)
	a := newFixtureAt(t, srv.ClientURL())
	b := peer(t, a, srv.ClientURL())
	sa := testenv.SignActor(t, a.dir, lifePkg, lattice.SignActorOptions{Name: "life"})
	for _, f := range []*fixture{a, b} {
		var ack lattice.Ack
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path}, &ack)
		if !ack.Accepted {
			t.Fatal(ack.Error)
		}
	}
	// ping.hosts: both hosts answer.
	inbox := nats.NewInbox()
	replies, _ := a.nc.SubscribeSync(inbox)
	_ = a.nc.PublishRequest(a.ctl.PingHosts(), inbox, nil)
	ids := map[string]bool{}
	for len(ids) < 2 {
		m, err := replies.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("hosts answering ping: %v", ids)
		}
		var hi lattice.HostInfo
		_ = json.Unmarshal(m.Data, &hi)
		ids[hi.ID] = true
	}
	if !ids[a.h.ID()] || !ids[b.h.ID()] {
		t.Fatalf("ping answered by %v", ids)
	}
	// The queue group spreads calls over both hosts' instances.
	served := map[string]bool{}
	for i := 0; i < 200 && len(served) < 2; i++ {
		data, _ := a.invocation(t, a.cluster, lattice.ActorEntity(sa.Key), sa.Key, "Life.Count", nil).Encode()
		resp := a.raw(t, lattice.RPCActor("test", sa.Key), data)
		if resp.Error != "" {
			t.Fatal(resp.Error)
		}
		served[resp.InstanceID] = true
	}
	if len(served) != 2 {
		t.Fatalf("200 calls were all served by one instance: %v", served)
	}
}

// Without its lattice cache a host refuses link changes, which would
// otherwise be acknowledged yet reach no other host.
func TestLinkChangesAreRefusedWithoutTheLatticeCache(t *testing.T) {
	s := natsWithoutJetStream(t)
	f := newFixtureAt(t, s.ClientURL())
	actor, _ := lattice.CreateKeyPair(lattice.KindModule)
	provider, _ := lattice.CreateKeyPair(lattice.KindService)
	var ack lattice.Ack
	f.ctlRequest(t, f.ctl.LinkdefsPut(), lattice.LinkDefinition{ActorID: actor.PublicKey(), ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue}, &ack)
	if ack.Accepted || !strings.Contains(ack.Error, "lattice cache") || !strings.Contains(ack.Error, "JetStream") {
		t.Fatalf("link put without a cache: %+v", ack)
	}
	var links lattice.LinksList
	f.ctlRequest(t, f.ctl.GetLinks(), nil, &links)
	if len(links.Links) != 0 {
		t.Fatalf("refused link is listed: %+v", links)
	}
}

// A host whose JetStream was not ready at start runs actors all the same
// (their cache writes once dereferenced the cache it did not have, and the
// host panicked), and once the cache opens it writes what it runs, so the
// lattice's cache lists the actor as if it had been there all along.
func TestActorStartsBeforeTheLatticeCacheOpensAndIsCachedAfter(t *testing.T) {
	s := natsWithoutJetStream(t) // JetStream is enabled later
	f := newFixtureAt(t, s.ClientURL())
	echo := f.startActor(t, echoPkg, 1, lattice.SignActorOptions{Name: "echo", CallAlias: "late-cache-echo"})
	if out, err := f.call(t, echo.Key, "Echo.Echo", []byte("before the cache")); err != nil || len(out) == 0 {
		t.Fatalf("actor started without the cache does not answer: %q, %v", out, err)
	}

	// A link put made while the cache is not open waits for it (within
	// cacheWait) instead of being refused at once.
	provider, _ := lattice.CreateKeyPair(lattice.KindService)
	ld := lattice.LinkDefinition{ActorID: echo.Key, ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue}
	put := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(ld)
		msg, err := f.nc.Request(f.ctl.LinkdefsPut(), b, 30*time.Second)
		if err == nil {
			var ack lattice.Ack
			if err = json.Unmarshal(msg.Data, &ack); err == nil && !ack.Accepted {
				err = errString(ack.Error)
			}
		}
		put <- err
	}()
	time.Sleep(500 * time.Millisecond)

	if err := s.EnableJetStream(&server.JetStreamConfig{StoreDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := <-put; err != nil {
		t.Fatalf("link put made while the cache was opening: %v", err)
	}
	js, err := jetstream.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	// The host retries every cacheRetry (5 s); the bound allows for a
	// loaded machine.
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, lattice.CacheStream("test"))
		if err != nil {
			return err
		}
		if _, err := st.GetLastMsgForSubject(ctx, lattice.CacheClaims("test", echo.Key)); err != nil {
			return fmt.Errorf("claims of the running actor not in the cache: %w", err)
		}
		if _, err := st.GetLastMsgForSubject(ctx, lattice.CacheLinkdef("test", lattice.LinkID(ld.ActorID, ld.ContractID, "default"))); err != nil {
			return fmt.Errorf("the link put while the cache opened is not in it: %w", err)
		}
		return nil
	})
}

// natsWithoutJetStream is an embedded nats-server without JetStream, so a
// host cannot open its lattice cache on it.
func natsWithoutJetStream(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/builtin/keyvalue"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

var counterRE = regexp.MustCompile(`"counter":(\d+)`)

// httpCounter GETs kvcounter behind the httpserver provider until it
// answers 200, and returns the counter it reports.
func httpCounter(t *testing.T, port int) int {
	t.Helper()
	var n int
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		m := counterRE.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("no counter in %s", b)
		}
		n, _ = strconv.Atoi(string(m[1]))
		return nil
	})
	return n
}

// kvcounterNode runs kvcounter behind the built-in httpserver and keyvalue
// providers, linked, and returns the node, the actor and the HTTP port.
// beforeLinks, if given, run once the providers run, before the links are put.
func kvcounterNode(t *testing.T, beforeLinks ...func(*node)) (*node, testenv.SignedActor, int) {
	t.Helper()
	actor := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{
		Name: "kvcounter", Caps: []string{wire.ContractHTTPServer, wire.ContractKeyValue},
	})
	n := startNode(t, nil, "file://"+actor.Path)
	for _, ref := range []string{"builtin:httpserver", "builtin:keyvalue"} {
		n.launch(ref, "default", "")
		n.waitProviderState(ref, "default", child.StateRunning)
	}
	for _, f := range beforeLinks {
		f(n)
	}
	port := testenv.FreePort(t)
	http, _ := builtin.Lookup("builtin:httpserver")
	kv, _ := builtin.Lookup("builtin:keyvalue")
	n.putLinks(
		lattice.LinkDefinition{ActorID: actor.Key, ProviderID: http.Key(), LinkName: "default", ContractID: wire.ContractHTTPServer,
			Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}},
		lattice.LinkDefinition{ActorID: actor.Key, ProviderID: kv.Key(), LinkName: "default", ContractID: wire.ContractKeyValue},
	)
	return n, actor, port
}

// grantedCreds waits until the key-value provider's user grants exactly
// buckets, and returns those credentials: the ones the provider runs with.
func grantedCreds(t *testing.T, n *node, buckets ...string) Credentials {
	t.Helper()
	p := n.instance("builtin:keyvalue", "default")
	var c Credentials
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !slices.Equal(p.granted, buckets) {
			return fmt.Errorf("granted %v, want %v", p.granted, buckets)
		}
		c = p.creds
		return nil
	})
	return c
}

// Issue 18, hole 1, as the attack: with the key-value provider's own NATS
// credentials (those the supervisor handed the running provider), nothing
// in the JetStream API beyond reading and writing entries of its own
// bucket works: no stream (plain, with a republish rule, a mirror of the
// lattice cache), no change or deletion of its bucket's stream, no consumer
// on the cache, no other bucket. The provider still does its job, and a new
// link naming a new bucket moves its grant there.
func TestKeyValueProviderCannotEscapeThroughTheJetStreamAPI(t *testing.T) {
	waitBound(t)
	n, actor, port := kvcounterNode(t)
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("first count %d", got)
	}
	own, err := keyvalue.BucketName(nil, "default", "default")
	if err != nil {
		t.Fatal(err)
	}
	creds := grantedCreds(t, n, own)

	ctx := context.Background()
	admin, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	other, err := admin.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "OTHER_APP"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, "secret", []byte("theirs")); err != nil {
		t.Fatal(err)
	}

	nc, perms := connectAs(t, n.s.NATSURL(), creds)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cache := lattice.CacheStream("default")
	attacks := []struct {
		name    string
		attack  func(ctx context.Context) error
		subject string // the JetStream API subject the server refuses
	}{
		{"create a stream", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"wasmbus.rpc.default.>"}})
			return err
		}, "$JS.API.STREAM.CREATE.EVIL"},
		{"create a bucket-named stream with a republish rule", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KV_EVIL", Subjects: []string{"$KV.EVIL.>"},
				RePublish: &jetstream.RePublish{Source: "$KV.EVIL.>", Destination: "wasmbus.ctl.default.>"}})
			return err
		}, "$JS.API.STREAM.CREATE.KV_EVIL"},
		{"mirror the lattice cache", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SPY", Mirror: &jetstream.StreamSource{Name: cache}})
			return err
		}, "$JS.API.STREAM.CREATE.SPY"},
		{"widen its own bucket's stream", func(ctx context.Context) error {
			_, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: "KV_" + own, Subjects: []string{"$KV." + own + ".>", "wasmbus.ctl.default.>"}})
			return err
		}, "$JS.API.STREAM.UPDATE.KV_" + own},
		{"delete its own bucket", func(ctx context.Context) error { return js.DeleteKeyValue(ctx, own) }, "$JS.API.STREAM.DELETE.KV_" + own},
		{"delete another bucket", func(ctx context.Context) error { return js.DeleteKeyValue(ctx, "OTHER_APP") }, "$JS.API.STREAM.DELETE.KV_OTHER_APP"},
		{"consume the lattice cache", func(ctx context.Context) error {
			_, err := js.OrderedConsumer(ctx, cache, jetstream.OrderedConsumerConfig{})
			if err == nil {
				return errors.New("ordered consumer created")
			}
			return err
		}, "$JS.API.CONSUMER.CREATE." + cache},
		{"read another bucket", func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_OTHER_APP.$KV.OTHER_APP.secret", nil)
			return err
		}, "$JS.API.DIRECT.GET.KV_OTHER_APP"},
		{"write another bucket", func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$KV.OTHER_APP.secret", []byte("forged"))
			return err
		}, "$KV.OTHER_APP.secret"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			actx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if err := a.attack(actx); err == nil {
				t.Fatal("the attack succeeded")
			}
			testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				return perms.has(`Permissions Violation for Publish to "` + a.subject)
			})
		})
	}
	// Nothing changed on the server.
	for _, name := range []string{"EVIL", "KV_EVIL", "SPY"} {
		if _, err := admin.Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s: %v, want not found", name, err)
		}
	}
	if s, err := admin.Stream(ctx, "KV_"+own); err != nil || len(s.CachedInfo().Config.Subjects) != 1 {
		t.Errorf("own bucket's stream: %v", err)
	}
	if e, err := other.Get(ctx, "secret"); err != nil || string(e.Value()) != "theirs" {
		t.Errorf("other bucket's entry: %v", err)
	}

	// The provider still does its job with these credentials.
	if got := httpCounter(t, port); got != 2 {
		t.Fatalf("second count %d", got)
	}

	// A new link naming another bucket: the supervisor creates it and moves
	// the grant; counting starts afresh there, and the old bucket is no
	// longer granted.
	kv, _ := builtin.Lookup("builtin:keyvalue")
	var ack lattice.Ack
	n.ctlRequest(lattice.NewCtl("", "default").LinkdefsDel(), lattice.LinkDefinition{ActorID: actor.Key, ContractID: wire.ContractKeyValue, LinkName: "default"}, &ack)
	if !ack.Accepted {
		t.Fatalf("link del: %s", ack.Error)
	}
	n.putLinks(lattice.LinkDefinition{ActorID: actor.Key, ProviderID: kv.Key(), LinkName: "default", ContractID: wire.ContractKeyValue,
		Values: map[string]string{"bucket": "FRESH"}})
	fresh := grantedCreds(t, n, "FRESH")
	if fresh.UserKey != creds.UserKey {
		t.Errorf("re-mint changed the user key: %s → %s", creds.UserKey, fresh.UserKey)
	}
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("count in the new bucket %d", got)
	}
	nc2, perms2 := connectAs(t, n.s.NATSURL(), fresh)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := nc2.RequestWithContext(rctx, "$JS.API.DIRECT.GET.KV_"+own+".$KV."+own+".counter", nil); err == nil {
		t.Error("the re-minted user still reads the old bucket")
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		return perms2.has(`Permissions Violation for Publish to "$JS.API.DIRECT.GET.KV_` + own)
	})
	if err := nc2.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		t.Log(err)
	}
}

// sendLink publishes a key-value link of actor naming bucket to the
// node's key-value provider, as a host does (a put, or with del a deletion).
func sendLink(t *testing.T, n *node, del bool, actor, bucket string) {
	t.Helper()
	kv, _ := builtin.Lookup("builtin:keyvalue")
	ld := lattice.LinkDefinition{ActorID: actor, ProviderID: kv.Key(), LinkName: "default",
		ContractID: wire.ContractKeyValue, Values: map[string]string{"bucket": bucket}}
	if err := ld.Normalize(); err != nil {
		t.Fatal(err)
	}
	b, err := lattice.Marshal(&ld)
	if err != nil {
		t.Fatal(err)
	}
	subj := lattice.RPCLinkdefPut(n.cfg.LatticePrefix, kv.Key(), "default")
	if del {
		subj = lattice.RPCLinkdefDel(n.cfg.LatticePrefix, kv.Key(), "default")
	}
	if err := n.nc.Publish(subj, b); err != nil {
		t.Fatal(err)
	}
}

// The host sends a link's deletion and its new definition back to back
// (a link changed with `ctl link del` then `put`). The supervisor must apply
// them in that order: the other way round it would re-mint the key-value
// provider's user without the bucket the link now names, and the provider,
// waiting for its grant, would refuse the actor as not linked.
func TestKeyValueGrantsFollowLinkChangesInOrder(t *testing.T) {
	n := startNode(t, nil)
	n.launch("builtin:keyvalue", "default", "")
	n.waitProviderState("builtin:keyvalue", "default", child.StateRunning)
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	sendLink(t, n, false, actor.PublicKey(), "ORDER_0")
	grantedCreds(t, n, "ORDER_0")
	for i := 1; i <= 20; i++ {
		sendLink(t, n, true, actor.PublicKey(), fmt.Sprintf("ORDER_%d", i-1))
		sendLink(t, n, false, actor.PublicKey(), fmt.Sprintf("ORDER_%d", i))
		grantedCreds(t, n, fmt.Sprintf("ORDER_%d", i))
	}
	// And it stays so: no deletion is applied late.
	time.Sleep(500 * time.Millisecond)
	grantedCreds(t, n, "ORDER_20")
}

// A link whose bucket cannot be made when the link comes (here a stream of
// the operator's already holds the bucket's subjects) leaves the key-value
// provider without it. The supervisor tries again at each health check,
// logging the cause once as an error, and grants the bucket as soon as it
// can be made.
func TestKeyValueGrantIsRetriedUntilItsBucketCanBeMade(t *testing.T) {
	n := startNode(t, nil)
	n.launch("builtin:keyvalue", "default", "")
	n.waitProviderState("builtin:keyvalue", "default", child.StateRunning)
	ctx := context.Background()
	js, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BLOCKER", Subjects: []string{"$KV.LATER.>"}}); err != nil {
		t.Fatal(err)
	}
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	sendLink(t, n, false, actor.PublicKey(), "LATER")
	const failed = `"msg":"could not create a key-value bucket`
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if strings.Count(n.logs.String(), failed) < 3 {
			return errors.New("the failed bucket creation was not logged and retried twice")
		}
		return nil
	})
	if strings.Count(n.logs.String(), `"level":"ERROR",`+failed) != 1 {
		t.Errorf("the failure was not logged once at error level:\n%s", tail(n.logs.String(), 40))
	}
	grantedCreds(t, n) // nothing granted meanwhile
	if err := js.DeleteStream(ctx, "BLOCKER"); err != nil {
		t.Fatal(err)
	}
	grantedCreds(t, n, "LATER")
}

// A key-value link whose bucket cannot be made for longer than the
// provider waits for its grant (keyvalue.GrantWait) is refused by the
// provider. When the bucket can be made at last, the supervisor grants it
// and sends the provider the refused link again: kvcounter counts, without
// anyone putting the link again.
func TestKeyValueLinkComesUpWhenItsBucketIsGrantedLate(t *testing.T) {
	waitBound(t)
	own, err := keyvalue.BucketName(nil, "default", "default")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var js jetstream.JetStream
	n, _, port := kvcounterNode(t, func(n *node) {
		if js, err = jetstream.New(n.nc); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BLOCKER", Subjects: []string{"$KV." + own + ".>"}}); err != nil {
			t.Fatal(err)
		}
	})
	testenv.CheckFor(t, keyvalue.GrantWait+30*time.Second, 100*time.Millisecond, func() error {
		if !strings.Contains(n.logs.String(), `"msg":"provider refused a link"`) {
			return errors.New("the key-value provider has not refused its link")
		}
		return nil
	})
	if err := js.DeleteStream(ctx, "BLOCKER"); err != nil {
		t.Fatal(err)
	}
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("first count %d", got)
	}
	if !strings.Contains(n.logs.String(), "sent a key-value provider again the links it refused") {
		t.Error("the log does not say the refused link was sent again")
	}
}

// A renewal or re-mint sent while a provider is between connections is
// lost (core NATS). So with each health check the supervisor sends a
// healthy provider its current JWT again; the provider ignores a repeat of
// the one it has, and one it missed reaches it within a health interval.
func TestProviderIsSentItsCurrentCredentialsAgain(t *testing.T) {
	n := startNode(t, nil)
	n.launch("builtin:keyvalue", "default", "")
	n.waitProviderState("builtin:keyvalue", "default", child.StateRunning)
	kv, _ := builtin.Lookup("builtin:keyvalue")
	wantRepeats(t, n, lattice.RPCCredentials(n.cfg.LatticePrefix, kv.Key(), "default"), grantedCreds(t, n).JWT, "ignoring renewed credentials")
}

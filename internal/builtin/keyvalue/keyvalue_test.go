package keyvalue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/builtin/keyvalue"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/ptest"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ptest.Cleanup()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var kvBuiltin, _ = builtin.Lookup("keyvalue")

// kvEnv is a lattice without a host: the test plays the host and signs
// invocations with the cluster key, as an actor's host would.
type kvEnv struct {
	url     string
	nc      *nats.Conn
	cluster *trust.KeyPair
	hostID  string
	actor   string
}

func newKVEnv(t *testing.T, url string) *kvEnv {
	t.Helper()
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	host, _ := trust.CreateKeyPair(lattice.KindServer)
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &kvEnv{url: url, nc: nc, cluster: cluster, hostID: host.PublicKey(), actor: actor.PublicKey()}
}

func (e *kvEnv) link(actor string, values map[string]string) lattice.LinkDefinition {
	ld := lattice.LinkDefinition{ActorID: actor, ProviderID: kvBuiltin.Key(), ContractID: wire.ContractKeyValue, Values: values}
	if err := ld.Normalize(); err != nil {
		panic(err)
	}
	return ld
}

func (e *kvEnv) hostData(links ...lattice.LinkDefinition) lattice.HostData {
	return ptest.HostData(e.url, "test", e.hostID, e.cluster, kvBuiltin, links...)
}

// inProcess runs the keyvalue provider in this test process.
func (e *kvEnv) inProcess(t *testing.T, links ...lattice.LinkDefinition) {
	t.Helper()
	p, err := provider.New(provider.Config{HostData: e.hostData(links...),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}, keyvalue.New(metrics.NewProvider()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("provider: %v", err)
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *kvEnv) callAs(signer *trust.KeyPair, actor, op string, arg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := lattice.Entity{PublicKey: kvBuiltin.Key(), ContractID: wire.ContractKeyValue, LinkName: "default"}
	return rpc.Invoke(ctx, e.nc, signer, e.hostID, lattice.ActorEntity(actor), target,
		lattice.RPCProvider("test", kvBuiltin.Key(), "default"), op, arg)
}

func (e *kvEnv) call(t *testing.T, op string, arg any) []byte {
	t.Helper()
	out, err := e.callAs(e.cluster, e.actor, op, pack(t, arg))
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out
}

// pack encodes an argument as wasmbus-rpc does: structs as maps keyed by
// field name, bare strings and lists as themselves.
func pack(t testing.TB, v any) []byte {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := lattice.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unpack[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := msgpack.Unmarshal(b, &v); err != nil {
		t.Fatalf("reply %x: %v", b, err)
	}
	return v
}

type m = map[string]any

// Each operation with its argument encoded as the wasmcloud:keyvalue
// interface encodes it (bare string/list vs map, camelCase field names),
// and the exact msgpack reply.
func TestOperationShapes(t *testing.T) {
	e := newKVEnv(t, testenv.NATS(t).ClientURL())
	e.inProcess(t, e.link(e.actor, nil))
	steps := []struct {
		op   string
		arg  any
		want any // nil: empty reply
	}{
		{wire.OpKVGet, "greeting", m{"value": "", "exists": false}},
		{wire.OpKVSet, m{"key": "greeting", "value": "hello", "expires": 0}, nil},
		{wire.OpKVGet, "greeting", m{"value": "hello", "exists": true}},
		{wire.OpKVContains, "greeting", true},
		{wire.OpKVContains, "nothing", false},
		{wire.OpKVDel, "greeting", true},
		{wire.OpKVDel, "greeting", false},
		{wire.OpKVIncrement, m{"key": "n", "value": 5}, int8(5)},
		{wire.OpKVIncrement, m{"key": "n", "value": -7}, int8(-2)},
		{wire.OpKVGet, "n", m{"value": "-2", "exists": true}},
		{wire.OpKVListAdd, m{"listName": "l", "value": "a"}, uint8(1)},
		{wire.OpKVListAdd, m{"listName": "l", "value": "b"}, uint8(2)},
		{wire.OpKVListAdd, m{"listName": "l", "value": "a"}, uint8(3)},
		{wire.OpKVListRange, m{"listName": "l", "start": 0, "stop": 10}, []any{"a", "b", "a"}},
		{wire.OpKVListRange, m{"listName": "l", "start": 1, "stop": -1}, []any{"b", "a"}},
		{wire.OpKVListDel, m{"listName": "l", "value": "a"}, true}, // the first only
		{wire.OpKVListRange, m{"listName": "l", "start": 0, "stop": -1}, []any{"b", "a"}},
		{wire.OpKVListDel, m{"listName": "l", "value": "zz"}, false},
		{wire.OpKVListClear, "l", true},
		{wire.OpKVListClear, "l", false},
		{wire.OpKVListRange, m{"listName": "l", "start": 0, "stop": -1}, []any{}},
		{wire.OpKVSetAdd, m{"setName": "s1", "value": "x"}, uint8(1)},
		{wire.OpKVSetAdd, m{"setName": "s1", "value": "x"}, uint8(0)},
		{wire.OpKVSetAdd, m{"setName": "s1", "value": "y"}, uint8(1)},
		{wire.OpKVSetAdd, m{"setName": "s2", "value": "y"}, uint8(1)},
		{wire.OpKVSetAdd, m{"setName": "s2", "value": "z"}, uint8(1)},
		{wire.OpKVSetQuery, "s1", []any{"x", "y"}},
		{wire.OpKVSetIntersect, []string{"s1", "s2"}, []any{"y"}},
		{wire.OpKVSetUnion, []string{"s1", "s2"}, []any{"x", "y", "z"}},
		{wire.OpKVSetDel, m{"setName": "s1", "value": "x"}, uint8(1)},
		{wire.OpKVSetDel, m{"setName": "s1", "value": "x"}, uint8(0)},
		{wire.OpKVSetClear, "s2", true},
		{wire.OpKVSetQuery, "s2", []any{}},
		{wire.OpKVSetClear, "s2", false},
		// Keys that are not valid JetStream KV keys still work.
		{wire.OpKVSet, m{"key": "user:1 name*>", "value": "ann"}, nil},
		{wire.OpKVGet, "user:1 name*>", m{"value": "ann", "exists": true}},
		{wire.OpKVGet, "user:1 name*", m{"value": "", "exists": false}},
	}
	for i, s := range steps {
		out := e.call(t, s.op, s.arg)
		if s.want == nil {
			if len(out) != 0 {
				t.Fatalf("step %d %s: reply %x, want none", i, s.op, out)
			}
			continue
		}
		want := pack(t, s.want)      // compact integers, as rmp encodes them
		if m, ok := s.want.(m); ok { // maps: compare decoded, key order is free
			got := unpack[map[string]any](t, out)
			if fmt.Sprint(got) != fmt.Sprint(map[string]any(m)) {
				t.Fatalf("step %d %s(%v): %v, want %v", i, s.op, s.arg, got, m)
			}
			continue
		}
		if string(out) != string(want) {
			t.Fatalf("step %d %s(%v): reply %x (%v), want %x (%v)", i, s.op, s.arg, out, unpack[any](t, out), want, s.want)
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	e := newKVEnv(t, testenv.NATS(t).ClientURL())
	e.inProcess(t, e.link(e.actor, nil))
	e.call(t, wire.OpKVSet, m{"key": "text", "value": "abc"})
	for _, c := range []struct {
		name, op string
		arg      []byte
		want     string
	}{
		{"map where a bare string belongs", wire.OpKVGet, pack(t, m{"key": "x"}), "want a string"},
		{"bare string where a map belongs", wire.OpKVIncrement, pack(t, "x"), "want a map"},
		{"empty key", wire.OpKVGet, pack(t, ""), "key must not be empty"},
		{"increment of text", wire.OpKVIncrement, pack(t, m{"key": "text", "value": 1}), `value at key "text" is not an integer`},
		{"list op on text", wire.OpKVListAdd, pack(t, m{"listName": "text", "value": "v"}), `value at key "text" is not a list`},
		{"i32 overflow in argument", wire.OpKVIncrement, pack(t, m{"key": "k", "value": int64(1) << 40}), "does not fit an i32"},
		{"trailing bytes", wire.OpKVGet, append(pack(t, "a"), 0x01), "trailing bytes"},
		{"unknown operation", "KeyValue.Frobnicate", nil, `"KeyValue.Frobnicate"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.callAs(e.cluster, e.actor, c.op, c.arg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	e.call(t, wire.OpKVIncrement, m{"key": "big", "value": int32(1<<31 - 1)})
	if _, err := e.callAs(e.cluster, e.actor, wire.OpKVIncrement, pack(t, m{"key": "big", "value": 1})); err == nil || !strings.Contains(err.Error(), "overflows an i32") {
		t.Fatalf("overflow: %v", err)
	}
}

// 8 callers × 50 increments: compare-and-set loses none.
func TestConcurrentIncrementsAreAtomic(t *testing.T) {
	e := newKVEnv(t, testenv.NATS(t).ClientURL())
	e.inProcess(t, e.link(e.actor, nil))
	const callers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for range callers {
		wg.Go(func() {
			for range each {
				if _, err := e.callAs(e.cluster, e.actor, wire.OpKVIncrement, pack(t, m{"key": "hits", "value": 1})); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := unpack[wire.KVGetResponse](t, e.call(t, wire.OpKVGet, "hits")); got.Value != fmt.Sprint(callers*each) {
		t.Fatalf("hits = %q, want %d", got.Value, callers*each)
	}
}

func TestSetWithExpiryExpires(t *testing.T) {
	e := newKVEnv(t, testenv.NATS(t).ClientURL())
	e.inProcess(t, e.link(e.actor, nil))
	e.call(t, wire.OpKVSet, m{"key": "session", "value": "old"})
	e.call(t, wire.OpKVSet, m{"key": "session", "value": "s3cret", "expires": 1})
	e.call(t, wire.OpKVSet, m{"key": "keep", "value": "v", "expires": 0})
	if got := unpack[wire.KVGetResponse](t, e.call(t, wire.OpKVGet, "session")); got.Value != "s3cret" {
		t.Fatalf("before expiry: %+v", got)
	}
	testenv.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if got := unpack[wire.KVGetResponse](t, e.call(t, wire.OpKVGet, "session")); got.Exists {
			return fmt.Errorf("still there: %+v", got)
		}
		return nil
	})
	if !unpack[bool](t, e.call(t, wire.OpKVContains, "keep")) {
		t.Fatal("a key without expiry expired")
	}
	// An expired key can be set again.
	e.call(t, wire.OpKVSet, m{"key": "session", "value": "new", "expires": 60})
	if got := unpack[wire.KVGetResponse](t, e.call(t, wire.OpKVGet, "session")); got.Value != "new" {
		t.Fatalf("after re-set: %+v", got)
	}
}

func TestLinksGetTheirBuckets(t *testing.T) {
	srv := testenv.NATS(t)
	e := newKVEnv(t, srv.ClientURL())
	other, _ := trust.CreateKeyPair(lattice.KindModule)
	third, _ := trust.CreateKeyPair(lattice.KindModule)
	e.inProcess(t, e.link(e.actor, nil), e.link(other.PublicKey(), map[string]string{"BUCKET": "mine"}),
		e.link(third.PublicKey(), nil))
	e.call(t, wire.OpKVSet, m{"key": "k", "value": "shared"})
	if _, err := e.callAs(e.cluster, other.PublicKey(), wire.OpKVSet, pack(t, m{"key": "k", "value": "own"})); err != nil {
		t.Fatal(err)
	}
	out, err := e.callAs(e.cluster, third.PublicKey(), wire.OpKVGet, pack(t, "k"))
	if err != nil || unpack[wire.KVGetResponse](t, out).Value != "shared" {
		t.Fatalf("default bucket is shared by link name: %v", err)
	}
	js, _ := jetstream.New(e.nc)
	for bucket, want := range map[string]string{"LATTICED_KV_test_default": "shared", "mine": "own"} {
		kv, err := js.KeyValue(context.Background(), bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		en, err := kv.Get(context.Background(), "k")
		if err != nil || string(en.Value()) != want {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		st, _ := kv.Status(context.Background())
		if info := st.(*jetstream.KeyValueBucketStatus).StreamInfo(); info.Config.Storage != jetstream.FileStorage {
			t.Fatalf("bucket %s storage %v", bucket, info.Config.Storage)
		}
	}
}

func TestBucketName(t *testing.T) {
	for _, c := range []struct {
		values       map[string]string
		prefix, link string
		want, err    string
	}{
		{nil, "default", "default", "LATTICED_KV_default_default", ""},
		{nil, "my.lattice", "link one", "LATTICED_KV_my_lattice_link_one", ""},
		{map[string]string{"bucket": "orders"}, "p", "l", "orders", ""},
		{map[string]string{"Bucket": "a-b_C9"}, "p", "l", "a-b_C9", ""},
		{map[string]string{"bucket": "bad.name"}, "p", "l", "", "letters, digits"},
	} {
		got, err := keyvalue.BucketName(c.values, c.prefix, c.link)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("BucketName(%v, %q, %q) = %q, %v", c.values, c.prefix, c.link, got, err)
		}
	}
}

// The real process: unknown operations and untrusted signers are refused,
// and data survives a restart of the provider and of the NATS server.
func TestProviderProcess(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	e := newKVEnv(t, srv.URL)
	ld := e.link(e.actor, nil)
	p := ptest.Start(t, "keyvalue", e.hostData(ld))

	for i := 0; i < 3; i++ {
		e.call(t, wire.OpKVIncrement, m{"key": "visits", "value": 1})
	}
	hm, err := e.nc.Request(lattice.RPCHealth("test", kvBuiltin.Key(), "default"), pack(t, m{"placeholder": true}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if h := unpack[provider.Health](t, hm.Data); !h.Healthy {
		t.Fatalf("health: %+v", h)
	}
	if _, err := e.callAs(e.cluster, e.actor, "KeyValue.Frobnicate", nil); err == nil || !strings.Contains(err.Error(), "KeyValue.Frobnicate") {
		t.Fatalf("unknown operation: %v", err)
	}
	rogue, _ := trust.CreateKeyPair(lattice.KindCluster)
	if _, err := e.callAs(rogue, e.actor, wire.OpKVGet, pack(t, "visits")); err == nil || !strings.Contains(err.Error(), "not a trusted cluster issuer") {
		t.Fatalf("untrusted signer: %v", err)
	}
	stranger, _ := trust.CreateKeyPair(lattice.KindModule)
	if _, err := e.callAs(e.cluster, stranger.PublicKey(), wire.OpKVGet, pack(t, "visits")); err == nil || !strings.Contains(err.Error(), "is not linked") {
		t.Fatalf("unlinked actor: %v", err)
	}

	p.Stop() // SIGTERM: exit 0
	p = ptest.Start(t, "keyvalue", e.hostData(ld))
	if got := unpack[int32](t, e.call(t, wire.OpKVIncrement, m{"key": "visits", "value": 1})); got != 4 {
		t.Fatalf("after provider restart: %d", got)
	}

	srv.Stop()
	srv.Start()
	testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		out, err := e.callAs(e.cluster, e.actor, wire.OpKVIncrement, pack(t, m{"key": "after", "value": 1}))
		if err != nil {
			return err
		}
		_ = out
		return nil
	})
	if got := unpack[int32](t, e.call(t, wire.OpKVIncrement, m{"key": "visits", "value": 1})); got != 5 {
		t.Fatalf("after NATS restart: %d", got)
	}
	p.Signal(syscall.SIGINT)
	if code := p.Wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

func TestUnstartedStoreRefusesLinks(t *testing.T) {
	s := keyvalue.New(nil)
	err := s.PutLink(context.Background(), lattice.LinkDefinition{ActorID: "M"})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

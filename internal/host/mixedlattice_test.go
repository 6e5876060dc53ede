package host

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/revstore"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// otpHost is a wasmCloud 0.60-0.63 host's lattice cache, as docs/protocol.md
// §11.2 describes it from the OTP host's source (jetstream/client.ex,
// legacy_cache_loader.ex, metadata_cache_loader.ex): it creates the bucket
// with raw JetStream API requests, watches it with an ephemeral push
// consumer (last per subject, no acks), migrates LATTICECACHE_{prefix} into
// it and deletes the stream. Its migration fails, as the OTP one crashes,
// on any key type but claims, linkdefs and refmap.
type otpHost struct {
	t      *testing.T
	nc     *nats.Conn
	prefix string

	mu   sync.Mutex
	keys map[string]json.RawMessage // the watcher's view: key -> value
}

func startOTPHost(t *testing.T, url, prefix string) *otpHost {
	t.Helper()
	o := &otpHost{t: t, nc: dial(t, url), prefix: prefix, keys: map[string]json.RawMessage{}}
	bucket := "LATTICEDATA_" + prefix
	// 1. The bucket (client.ex create_kv_bucket): "already in use" is fine.
	o.api("$JS.API.STREAM.CREATE.KV_"+bucket, map[string]any{
		"name": "KV_" + bucket, "subjects": []string{"$KV." + bucket + ".>"}, "max_msgs_per_subject": 1,
		"storage": "file", "num_replicas": 1, "max_age": 0, "retention": "limits", "discard": "new",
		"allow_direct": true, "mirror_direct": false, "deny_delete": true, "deny_purge": false, "allow_rollup_hdrs": true,
		"duplicate_window": int64(120 * time.Second), "max_msgs": -1, "max_bytes": -1, "max_msg_size": -1, "max_consumers": -1,
	}, true)
	// 2. The watcher: subscribe, then the consumer.
	inbox := "INBOX." + nats.NewInbox()[len("_INBOX."):]
	sub, err := o.nc.Subscribe(inbox, o.watch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	o.api("$JS.API.CONSUMER.CREATE.KV_"+bucket, map[string]any{"stream_name": "KV_" + bucket, "config": map[string]any{
		"deliver_subject": inbox, "filter_subject": ">", "deliver_policy": "last_per_subject", "ack_policy": "none", "replay_policy": "instant",
	}}, false)
	// 3. The migration, when the stream exists.
	if err := o.migrate(); err != nil {
		t.Fatalf("wasmCloud host's migration crashed: %v", err)
	}
	return o
}

// api sends a JetStream API request and fails the test on an error reply,
// unless okInUse and the error says the stream exists.
func (o *otpHost) api(subject string, body any, okInUse bool) map[string]any {
	o.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	m, err := o.nc.Request(subject, b, 10*time.Second)
	if err != nil {
		o.t.Fatalf("%s: %v", subject, err)
	}
	var r map[string]any
	_ = json.Unmarshal(m.Data, &r)
	if e, ok := r["error"]; ok && !(okInUse && strings.Contains(fmt.Sprint(e), "already in use")) {
		o.t.Fatalf("%s: %v", subject, e)
	}
	return r
}

// watch is metadata_cache_loader.ex: a kv-operation of DEL or PURGE deletes.
func (o *otpHost) watch(m *nats.Msg) {
	tokens := strings.Split(m.Subject, ".")
	if len(tokens) != 3 {
		return // ignored with a warning
	}
	key := tokens[2]
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, vals := range m.Header { // Gnat lowercases header names
		if strings.EqualFold(name, "kv-operation") && len(vals) > 0 && (vals[0] == "DEL" || vals[0] == "PURGE") {
			delete(o.keys, key)
			return
		}
	}
	o.keys[key] = append(json.RawMessage(nil), m.Data...)
}

// migrate is legacy_cache_loader.ex: read the stream (last per subject)
// until 200 ms pass without a message, copy each entry, delete the stream.
func (o *otpHost) migrate() error {
	stream := "LATTICECACHE_" + o.prefix
	m, err := o.nc.Request("$JS.API.STREAM.INFO."+stream, nil, 10*time.Second)
	if err != nil {
		return err
	}
	var info map[string]any
	_ = json.Unmarshal(m.Data, &info)
	if _, ok := info["config"]; !ok {
		return nil // no legacy cache
	}
	inbox := nats.NewInbox()
	msgs := make(chan *nats.Msg, 1024)
	sub, err := o.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	o.api("$JS.API.CONSUMER.CREATE."+stream, map[string]any{"stream_name": stream, "config": map[string]any{
		"deliver_subject": inbox, "ack_policy": "explicit", "filter_subject": ">", "deliver_policy": "last_per_subject",
		"max_ack_pending": 20000, "max_deliver": -1, "replay_policy": "instant",
	}}, false)
	for {
		select {
		case m := <-msgs:
			if err := o.migrateOne(m); err != nil {
				return err // the OTP host crashes here: the stream stays, the rest is not copied
			}
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	o.api("$JS.API.STREAM.DELETE."+stream, nil, false)
	return nil
}

func (o *otpHost) migrateOne(m *nats.Msg) error {
	parts := strings.SplitN(m.Subject, ".", 3) // lc, prefix, rest
	rest := strings.Split(parts[2], ".")
	if len(rest) != 2 {
		return fmt.Errorf("FunctionClauseError: no clause for %s", m.Subject)
	}
	var v map[string]any
	if err := json.Unmarshal(m.Data, &v); err != nil {
		return fmt.Errorf("decode %s: %w", m.Subject, err)
	}
	var key string
	switch rest[0] {
	case "linkdefs":
		if d, _ := v["deleted"].(bool); d {
			return nil
		}
		v["id"] = lattice.LinkID(fmt.Sprint(v["actor_id"]), fmt.Sprint(v["contract_id"]), fmt.Sprint(v["link_name"]))
		key = "LINKDEF_" + v["id"].(string)
	case "claims":
		key = "CLAIMS_" + rest[1]
	case "refmap":
		key = "REFMAP_" + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprint(v["oci_url"])))
	default:
		return fmt.Errorf("FunctionClauseError: no clause for %s", m.Subject)
	}
	o.put(key, v)
	return nil
}

// put is client.ex kv_put: a request with the JSON body.
func (o *otpHost) put(key string, v any) {
	b, _ := json.Marshal(v)
	if _, err := o.nc.Request("$KV.LATTICEDATA_"+o.prefix+"."+key, b, 10*time.Second); err != nil {
		o.t.Fatalf("put %s: %v", key, err)
	}
}

// purge is client.ex kv_del: an empty body with KV-Operation: PURGE.
func (o *otpHost) purge(key string) {
	m := nats.NewMsg("$KV.LATTICEDATA_" + o.prefix + "." + key)
	m.Header.Set("KV-Operation", "PURGE")
	if _, err := o.nc.RequestMsg(m, 10*time.Second); err != nil {
		o.t.Fatalf("purge %s: %v", key, err)
	}
}

func (o *otpHost) value(key string) (map[string]any, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	raw, ok := o.keys[key]
	if !ok {
		return nil, false
	}
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return v, true
}

// TestMixedLatticeWithAWasmCloud060Host: latticed hosts on the stream, with
// a revocation an older latticed left in it, and a wasmCloud 0.60+ host that
// starts beside them. Its migration completes (no key type it cannot
// handle), every link, claim, alias and reference latticed wrote is in its
// view, the latticed host in auto mode switches to the bucket, and each side
// sees what the other writes and deletes from then on.
func TestMixedLatticeWithAWasmCloud060Host(t *testing.T) {
	srv := testenv.NATS(t)
	url := srv.ClientURL()
	a := newFixtureAt(t, url) // auto: no bucket yet, so the stream
	if a.h.cache.Load() == nil || a.h.cache.Load().kv {
		t.Fatal("host in auto mode without a bucket should use the stream")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(a.nc)
	if err != nil {
		t.Fatal(err)
	}
	// A revocation as an older latticed wrote it; the node's start moves it.
	signing, _ := trust.CreateKeyPair(lattice.KindService)
	rv, _ := json.Marshal(lattice.DelegationRevocation{SigningKey: signing.PublicKey(), RevokedAt: time.Now(), Until: time.Now().Add(time.Hour)})
	legacy := strings.TrimSuffix(lattice.LegacyCacheRevocationsFilter("test"), ">") + signing.PublicKey()
	if _, err := js.Publish(ctx, legacy, rv); err != nil {
		t.Fatal(err)
	}
	if n, err := revstore.MoveLegacy(ctx, js, "test"); err != nil || n != 1 {
		t.Fatalf("move revocations: %d, %v", n, err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !a.h.issuers.Revoked(signing.PublicKey()) {
			return fmt.Errorf("moved revocation not applied")
		}
		return nil
	})

	// What latticed writes on the stream: an actor's claims with a call
	// alias, its reference map, two links (one deleted again).
	sa := a.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo", Caps: []string{wire.ContractKeyValue}, CallAlias: "mixed/echo", Rev: 3})
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	link := func(name string) lattice.LinkDefinition {
		return lattice.LinkDefinition{ActorID: sa.Key, ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue, LinkName: name, Values: map[string]string{"bucket": name}}
	}
	for _, name := range []string{"default", "gone"} {
		var ack lattice.Ack
		a.ctlRequest(t, a.ctl.LinkdefsPut(), link(name), &ack)
		if !ack.Accepted {
			t.Fatal(ack.Error)
		}
	}
	var ack lattice.Ack
	a.ctlRequest(t, a.ctl.LinkdefsDel(), link("gone"), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}

	// The wasmCloud host starts: its migration must not crash.
	o := startOTPHost(t, url, "test")
	keep := "LINKDEF_" + lattice.LinkID(sa.Key, wire.ContractKeyValue, "default")
	gone := "LINKDEF_" + lattice.LinkID(sa.Key, wire.ContractKeyValue, "gone")
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		ld, ok := o.value(keep)
		if !ok || ld["id"] != strings.TrimPrefix(keep, "LINKDEF_") || ld["provider_id"] != provider.PublicKey() {
			return fmt.Errorf("link in the wasmCloud host's view: %v", ld)
		}
		if _, ok := o.value(gone); ok {
			return fmt.Errorf("deleted link %s came back", gone)
		}
		cl, ok := o.value("CLAIMS_" + sa.Key)
		if !ok || cl["call_alias"] != "mixed/echo" || cl["rev"] != "3" || cl["sub"] != sa.Key {
			return fmt.Errorf("claims in the wasmCloud host's view: %v", cl)
		}
		rm, ok := o.value("REFMAP_" + base64.RawURLEncoding.EncodeToString([]byte("file://"+sa.Path)))
		if !ok || rm["public_key"] != sa.Key {
			return fmt.Errorf("reference map in the wasmCloud host's view: %v", rm)
		}
		return nil
	})
	if _, err := js.Stream(ctx, lattice.CacheStream("test")); err == nil {
		t.Fatal("the wasmCloud host's migration should have deleted the stream")
	}

	// The latticed host switches to the bucket.
	testenv.CheckFor(t, 4*dataPoll, 50*time.Millisecond, func() error {
		if c := a.h.cache.Load(); c == nil || !c.kv {
			return fmt.Errorf("host still on the stream")
		}
		return nil
	})
	// What the wasmCloud host writes and deletes, latticed sees.
	other, _ := trust.CreateKeyPair(lattice.KindModule)
	theirs := lattice.LinkDefinition{ActorID: other.PublicKey(), ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue, LinkName: "default", Values: map[string]string{}}
	theirs.ID = lattice.LinkID(theirs.ActorID, theirs.ContractID, theirs.LinkName)
	o.put("LINKDEF_"+theirs.ID, theirs)
	o.put("CLAIMS_"+other.PublicKey(), map[string]any{"call_alias": "otp/actor", "iss": "AISSUER", "name": "theirs", "caps": wire.ContractKeyValue,
		"rev": "7", "tags": "", "version": nil, "sub": other.PublicKey(), "contract_id": ""})
	o.purge(keep)
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, ok := a.h.state.link(other.PublicKey(), wire.ContractKeyValue, "default"); !ok {
			return fmt.Errorf("wasmCloud host's link not seen")
		}
		if k, ok := a.h.state.resolveAlias("otp/actor"); !ok || k != other.PublicKey() {
			return fmt.Errorf("wasmCloud host's call alias not seen")
		}
		if _, ok := a.h.state.link(sa.Key, wire.ContractKeyValue, "default"); ok {
			return fmt.Errorf("link the wasmCloud host deleted still there")
		}
		return nil
	})
	// What latticed writes and deletes from now on, the wasmCloud host sees.
	a.ctlRequest(t, a.ctl.LinkdefsPut(), link("again"), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	again := "LINKDEF_" + lattice.LinkID(sa.Key, wire.ContractKeyValue, "again")
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, ok := o.value(again); !ok {
			return fmt.Errorf("latticed's new link not in the wasmCloud host's view")
		}
		return nil
	})
	a.ctlRequest(t, a.ctl.LinkdefsDel(), link("again"), &ack)
	if !ack.Accepted {
		t.Fatal(ack.Error)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, ok := o.value(again); ok {
			return fmt.Errorf("latticed's deleted link still in the wasmCloud host's view")
		}
		return nil
	})
	// A latticed host starting now (kv, as auto finds the bucket) knows it all.
	b := newFixtureAt(t, url, func(o *Options) { o.Cache = config.CacheKV })
	if _, ok := b.h.state.link(other.PublicKey(), wire.ContractKeyValue, "default"); !ok {
		t.Error("new latticed host lacks the wasmCloud host's link")
	}
	if k, ok := b.h.state.resolveAlias("mixed/echo"); !ok || k != sa.Key {
		t.Error("new latticed host lacks latticed's call alias")
	}
	if !b.h.issuers.Revoked(signing.PublicKey()) {
		t.Error("new latticed host lacks the revocation")
	}
	// Nothing but the three key types was ever written to the bucket.
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.keys {
		if !strings.HasPrefix(k, "LINKDEF_") && !strings.HasPrefix(k, "CLAIMS_") && !strings.HasPrefix(k, "REFMAP_") {
			t.Errorf("key %s in the bucket: no wasmCloud host handles it", k)
		}
	}
}

// TestKVHostCopiesTheStreamAndLeavesIt: a latticed host in kv mode starting
// beside one on the stream copies the stream into the bucket but does not
// delete it; the auto host switches to the bucket; and a stream left behind
// never brings back a link deleted in the bucket since.
func TestKVHostCopiesTheStreamAndLeavesIt(t *testing.T) {
	srv := testenv.NATS(t)
	url := srv.ClientURL()
	a := newFixtureAt(t, url)
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	link := func(name string) lattice.LinkDefinition {
		return lattice.LinkDefinition{ActorID: actor.PublicKey(), ProviderID: provider.PublicKey(), ContractID: wire.ContractKeyValue, LinkName: name, Values: map[string]string{}}
	}
	put := func(f *fixture, ld lattice.LinkDefinition, subject string) {
		t.Helper()
		var ack lattice.Ack
		f.ctlRequest(t, subject, ld, &ack)
		if !ack.Accepted {
			t.Fatal(ack.Error)
		}
	}
	put(a, link("first"), a.ctl.LinkdefsPut())
	b := newFixtureAt(t, url, func(o *Options) { o.Cache = config.CacheKV })
	if c := b.h.cache.Load(); c == nil || !c.kv {
		t.Fatal("host in kv mode is not on the bucket")
	}
	if _, ok := b.h.state.link(actor.PublicKey(), wire.ContractKeyValue, "first"); !ok {
		t.Fatal("kv host did not copy the stream's link")
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.Stream(ctx, lattice.CacheStream("test")); err != nil {
		t.Fatalf("the stream should stay: %v", err)
	}
	testenv.CheckFor(t, 4*dataPoll, 50*time.Millisecond, func() error {
		if c := a.h.cache.Load(); c == nil || !c.kv {
			return fmt.Errorf("auto host still on the stream")
		}
		return nil
	})
	put(b, link("second"), b.ctl.LinkdefsPut())
	put(b, link("first"), b.ctl.LinkdefsDel())
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, ok := a.h.state.link(actor.PublicKey(), wire.ContractKeyValue, "second"); !ok {
			return fmt.Errorf("auto host does not see the kv host's link")
		}
		if _, ok := a.h.state.link(actor.PublicKey(), wire.ContractKeyValue, "first"); ok {
			return fmt.Errorf("auto host still has the deleted link")
		}
		return nil
	})
	// The stream still has "first"; a new kv host copies it again, but the
	// bucket's delete wins.
	c := newFixtureAt(t, url, func(o *Options) { o.Cache = config.CacheKV })
	if _, ok := c.h.state.link(actor.PublicKey(), wire.ContractKeyValue, "first"); ok {
		t.Error("the stream left behind brought back a link deleted in the bucket")
	}
	if _, ok := c.h.state.link(actor.PublicKey(), wire.ContractKeyValue, "second"); !ok {
		t.Error("new kv host lacks the bucket's link")
	}
}

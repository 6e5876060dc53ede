package cacheread

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/revstore"
	"github.com/latticed/latticed/internal/testing/cachefill"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func keys(t *testing.T) (actor, provider string) {
	t.Helper()
	a, err := trust.CreateKeyPair(lattice.KindModule)
	if err != nil {
		t.Fatal(err)
	}
	p, err := trust.CreateKeyPair(lattice.KindService)
	if err != nil {
		t.Fatal(err)
	}
	return a.PublicKey(), p.PublicKey()
}

// A cache far larger than one NATS message (20,000 links in wasmCloud's
// format, ~7 MB of JSON against a 2 MiB max payload) is read whole: every
// live link once, tombstones and replaced entries applied, a corrupt entry
// skipped and reported, claims apart from links, and no consumer left
// behind.
func TestReadsACacheLargerThanAnyMessageWhole(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const prefix, n = "big", 20000
	if err := cachefill.EnsureStream(ctx, js, prefix); err != nil {
		t.Fatal(err)
	}
	actor, provider := keys(t)
	links := cachefill.Links(actor, provider, n)
	if err := cachefill.Put(ctx, js, prefix, links); err != nil {
		t.Fatal(err)
	}
	// 100 links removed as wasmCloud removes them, one replaced, one entry corrupt.
	for _, l := range links[:100] {
		l.Deleted = true
		b, _ := json.Marshal(l)
		if _, err := js.Publish(ctx, lattice.CacheLinkdef(prefix, l.ID), b); err != nil {
			t.Fatal(err)
		}
	}
	changed := links[500]
	changed.Values = map[string]string{"changed": "yes"}
	b, _ := json.Marshal(changed)
	if _, err := js.Publish(ctx, lattice.CacheLinkdef(prefix, changed.ID), b); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, lattice.CacheLinkdef(prefix, "CORRUPT"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		a, _ := keys(t)
		b, _ := json.Marshal(lattice.CachedClaims{Subject: a, Name: "a", Issuer: "A"})
		if _, err := js.Publish(ctx, lattice.CacheClaims(prefix, a), b); err != nil {
			t.Fatal(err)
		}
	}

	// Three links of another provider; one of them later moves to a third
	// (same actor, contract and link name: same id, same subject).
	_, providerB := keys(t)
	_, providerC := keys(t)
	ofB := cachefill.Links(actor, providerB, 3)
	for i := range ofB {
		ofB[i].ContractID = "other:contract" + string(rune('a'+i))
		ofB[i].ID = lattice.LinkID(actor, ofB[i].ContractID, "default")
	}
	if err := cachefill.Put(ctx, js, prefix, ofB); err != nil {
		t.Fatal(err)
	}
	moved := ofB[2]
	moved.ProviderID = providerC
	if err := cachefill.Put(ctx, js, prefix, []lattice.LinkDefinition{moved}); err != nil {
		t.Fatal(err)
	}

	r, err := New(nc, "", prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		provider, link string
		want           int
	}{{provider, "default", n - 100}, {providerB, "default", 2}, {providerC, "default", 1}, {providerB, "other", 0}} {
		got, err := r.LinksOf(ctx, tc.provider, tc.link)
		if err != nil || len(got) != tc.want {
			t.Errorf("LinksOf(%s, %s): %d links, %v; want %d", tc.provider, tc.link, len(got), err, tc.want)
		}
		for _, l := range got {
			if l.ProviderID != tc.provider || l.LinkName != tc.link {
				t.Errorf("LinksOf(%s, %s) returned %+v", tc.provider, tc.link, l)
			}
		}
	}
	var skipped []Skipped
	r.OnSkipped = func(sk Skipped) { skipped = append(skipped, sk) }
	got, err := r.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n-100+3 {
		t.Fatalf("read %d links, want %d", len(got), n-100+3)
	}
	if reply, _ := json.Marshal(lattice.LinksList{Links: got}); int64(len(reply)) <= nc.MaxPayload() {
		t.Fatalf("the links (%d bytes) fit one message of %d bytes: the test proves nothing", len(reply), nc.MaxPayload())
	}
	seen := map[string]bool{}
	for i, l := range got {
		if seen[l.ID] {
			t.Fatalf("link %s twice", l.ID)
		}
		seen[l.ID] = true
		if i > 0 && got[i-1].ID >= l.ID {
			t.Fatalf("links not sorted by id at %d", i)
		}
		if l.ID == changed.ID && l.Values["changed"] != "yes" {
			t.Errorf("the replaced link reads %v", l.Values)
		}
	}
	for _, l := range links[:100] {
		if seen[l.ID] {
			t.Fatalf("deleted link %s listed", l.ID)
		}
	}
	if len(skipped) != 1 || !strings.HasSuffix(skipped[0].Subject, ".CORRUPT") {
		t.Errorf("skipped %v, want the corrupt entry only", skipped)
	}
	claims, err := r.Claims(ctx)
	if err != nil || len(claims) != 50 {
		t.Fatalf("claims: %d %v", len(claims), err)
	}
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		info, err := js.Stream(ctx, lattice.CacheStream(prefix))
		if err != nil {
			return err
		}
		si, err := info.Info(ctx)
		if err != nil {
			return err
		}
		if si.State.Consumers != 0 {
			return errors.New("the reader's consumers are still there")
		}
		return nil
	})
}

// Reading a lattice whose cache does not exist, or where JetStream is off,
// says ErrUnavailable at once, so callers can fall back to asking a host;
// an empty filter reads as no entries, without waiting.
func TestNoCacheIsUnavailableAndAnEmptyOneIsEmpty(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	noJS, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go noJS.Start()
	if !noJS.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(noJS.Shutdown)
	plain, err := nats.Connect(noJS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)

	cases := []struct {
		name   string
		nc     *nats.Conn
		domain string
	}{
		{"no stream", nc, ""},
		{"unknown JetStream domain", nc, "elsewhere"},
		{"no JetStream", plain, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r, err := New(tc.nc, tc.domain, "nothing")
			if err == nil {
				_, err = r.Links(ctx)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s to find out", d)
			}
		})
	}

	js, _ := jetstream.New(nc)
	if err := cachefill.EnsureStream(ctx, js, "claimsonly"); err != nil {
		t.Fatal(err)
	}
	a, _ := keys(t)
	b, _ := json.Marshal(lattice.CachedClaims{Subject: a})
	if _, err := js.Publish(ctx, lattice.CacheClaims("claimsonly", a), b); err != nil {
		t.Fatal(err)
	}
	r, _ := New(nc, "", "claimsonly")
	start := time.Now()
	links, err := r.Links(ctx)
	if err != nil || len(links) != 0 {
		t.Fatalf("links of a cache without any: %v %v", links, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("an empty read took %s: it should not wait for entries", d)
	}
}

// With the bucket LATTICEDATA_{prefix} present (a wasmCloud 0.60+ host, or
// latticed in kv mode), the reader reads it, not a stream left behind: link
// keys whose last message is a purge are gone, other key types are skipped.
func TestReadsTheDataBucketWhenItExists(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "kv"
	if err := cachefill.EnsureStream(ctx, js, prefix); err != nil {
		t.Fatal(err)
	}
	actor, provider := keys(t)
	links := cachefill.Links(actor, provider, 3)
	// The stream still holds a link the bucket no longer has.
	if err := cachefill.Put(ctx, js, prefix, links); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, revstore.BucketStream(lattice.DataBucket(prefix), 1)); err != nil {
		t.Fatal(err)
	}
	put := func(subject string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := js.Publish(ctx, subject, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range links {
		put(lattice.DataLinkdef(prefix, l.ID), l)
	}
	purge := nats.NewMsg(lattice.DataLinkdef(prefix, links[0].ID))
	purge.Header.Set(lattice.KVOperationHeader, lattice.KVOperationPurge)
	if _, err := js.PublishMsg(ctx, purge); err != nil {
		t.Fatal(err)
	}
	put(lattice.DataClaims(prefix, actor), lattice.CachedClaims{Subject: actor, Name: "a", Issuer: "A", Rev: "1"})
	put(lattice.DataRefmap(prefix, "registry/a:1"), map[string]string{"oci_url": "registry/a:1", "public_key": actor})
	r, err := New(nc, "", prefix)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []Skipped
	r.OnSkipped = func(s Skipped) { skipped = append(skipped, s) }
	got, err := r.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID == links[0].ID || got[1].ID == links[0].ID {
		t.Fatalf("links from the bucket: %+v; want the two not purged", got)
	}
	of, err := r.LinksOf(ctx, provider, "default")
	if err != nil || len(of) != 2 {
		t.Fatalf("LinksOf: %+v, %v", of, err)
	}
	claims, err := r.Claims(ctx)
	if err != nil || len(claims) != 1 || claims[0].Subject != actor {
		t.Fatalf("claims from the bucket: %+v, %v", claims, err)
	}
	if len(skipped) != 0 {
		t.Errorf("skipped: %+v", skipped)
	}
}

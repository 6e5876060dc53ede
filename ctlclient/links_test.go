package ctlclient

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/testing/cachefill"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// More links than one NATS message holds: Links reads them all from the
// lattice cache; the host, asked on get.links, answers with an error that
// says why (never silence), and a client that cannot read the cache (a
// JetStream domain without it) returns that error rather than a partial or
// empty list.
func TestLinksBeyondOneMessageComeFromTheCacheAndHostsSaySoWhenTheyCannotFit(t *testing.T) {
	l := newLattice(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(l.c.nc)
	if err != nil {
		t.Fatal(err)
	}
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	prov, _ := trust.CreateKeyPair(lattice.KindService)
	const n = 8000
	if err := cachefill.EnsureStream(ctx, js, "ct"); err != nil {
		t.Fatal(err)
	}
	if err := cachefill.Put(ctx, js, "ct", cachefill.Links(actor.PublicKey(), prov.PublicKey(), n)); err != nil {
		t.Fatal(err)
	}

	links, err := l.c.Links(ctx)
	if err != nil || len(links) != n {
		t.Fatalf("Links: %d links, %v; want %d", len(links), err, n)
	}
	if b, _ := json.Marshal(lattice.LinksList{Links: links}); int64(len(b)) <= l.c.nc.MaxPayload() {
		t.Fatalf("%d bytes of links fit one message of %d: the test proves nothing", len(b), l.c.nc.MaxPayload())
	}

	// The host has followed the cache; its one-message reply cannot hold it.
	var reply string
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		msg, err := l.c.nc.Request(lattice.NewCtl("", "ct").GetLinks(), nil, 10*time.Second)
		if err != nil {
			return err
		}
		reply = string(msg.Data)
		if !strings.Contains(reply, "max payload") {
			return errTooShort(reply)
		}
		return nil
	})
	var ack lattice.Ack
	if err := json.Unmarshal([]byte(reply), &ack); err != nil || ack.Accepted || !strings.Contains(ack.Error, lattice.CacheStream("ct")) {
		t.Fatalf("error reply %q: want {accepted: false, error: …} naming the cache stream", reply)
	}

	blind := New(l.c.nc, "", "ct")
	blind.JSDomain = "elsewhere"
	if got, err := blind.Links(ctx); err == nil || !strings.Contains(err.Error(), "max payload") {
		t.Fatalf("a client that cannot read the cache got %d links, %v; want the host's error", len(got), err)
	}
	// What fits still comes back by request when the cache is unreadable.
	if claims, err := blind.Claims(ctx); err != nil {
		t.Fatalf("claims by request: %v %v", claims, err)
	}
}

type errTooShort string

func (e errTooShort) Error() string {
	s := string(e)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return "get.links answered " + s
}

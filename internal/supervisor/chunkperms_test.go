package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// The roles that send and receive invocations may put, get and delete
// objects in their own lattice's object store, through the real object-store
// client, and nothing else of it or of any other lattice's: no other
// bucket, no stream creation, update or deletion. host-ctl gets none of it.
func TestChunkStorePermissions(t *testing.T) {
	waitBound(t)
	s, a, _ := operatorServer(t)
	url := s.ClientURL()
	admin, err := a.Mint(RoleAdmin, "admin", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	adminNC, _ := connectAs(t, url, admin, nats.CustomInboxPrefix(admin.InboxPrefix))
	adminJS, err := jetstream.New(adminNC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The supervisor's part (ensureChunkBucket), for this lattice and for
	// another one sharing the account.
	for _, prefix := range []string{"default", "other"} {
		if _, err := rpc.EnsureChunkBucket(ctx, adminJS, prefix); err != nil {
			t.Fatal(err)
		}
	}
	own, other := lattice.ChunkStream("default"), lattice.ChunkStream("other")
	denied := []roleAction{
		{actPub, "$O.other.C.probe", false},
		{actPub, "$O.other.M.probe", false},
		{actPub, "$JS.API.STREAM.INFO." + other, false},
		{actPub, "$JS.API.STREAM.PURGE." + other, false},
		{actPub, "$JS.API.DIRECT.GET." + other, false},
		{actCreate, "$JS.API.CONSUMER.CREATE." + other, false},
		{actCreate, "$JS.API.STREAM.CREATE.OBJ_new", false},
		{actPub, "$JS.API.STREAM.CREATE." + own, false},
		{actPub, "$JS.API.STREAM.UPDATE." + own, false},
		{actPub, "$JS.API.STREAM.DELETE." + own, false},
		{actPub, "$JS.API.STREAM.DELETE." + other, false},
	}
	for _, r := range []struct {
		name  string
		role  Role
		scope Scope
		uses  bool // may use its lattice's store
	}{
		{"host-rpc", RoleHostRPC, Scope{}, true},
		{"provider", RoleProvider, Scope{ProviderKey: trust.FileProviderKey([32]byte{1}), LinkName: "default"}, true},
		{"host-ctl", RoleHostCtl, Scope{}, false},
	} {
		c, err := a.Mint(r.role, r.name, r.scope)
		if err != nil {
			t.Fatal(err)
		}
		nc, errs := connectAs(t, url, c, nats.CustomInboxPrefix(c.InboxPrefix))
		t.Run(r.name+"/object store round trip", func(t *testing.T) {
			err := roundTrip(ctx, nc)
			if (err == nil) != r.uses {
				t.Errorf("put, get and delete in its own lattice's store: %v; want allowed=%v", err, r.uses)
			}
		})
		actions := append([]roleAction{{actPub, "$O.default.C.probe", r.uses}}, denied...)
		for _, act := range actions {
			t.Run(r.name+"/"+act.kind+" "+act.subject, func(t *testing.T) {
				if got := tryAction(t, adminNC, nc, errs, act.kind, act.subject); got != act.allowed {
					t.Errorf("%s %s: allowed=%v, want %v", act.kind, act.subject, got, act.allowed)
				}
			})
		}
	}
}

// roundTrip puts an object of several chunks in lattice "default"'s store
// as nc, reads it back and deletes it: what a chunking sender and receiver do.
func roundTrip(ctx context.Context, nc *nats.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	store, err := js.ObjectStore(ctx, lattice.ChunkBucket("default"))
	if err != nil {
		return err
	}
	want := bytes.Repeat([]byte("chunk"), 1_000_000) // 5 MB: 39 chunks, enough for flow control
	if _, err := store.PutBytes(ctx, "inv-1", want); err != nil {
		return err
	}
	got, err := store.GetBytes(ctx, "inv-1")
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("read back %d bytes that differ from the %d put", len(got), len(want))
	}
	return store.Delete(ctx, "inv-1")
}

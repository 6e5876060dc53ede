package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// pattern is n bytes that differ from position to position, so a chunk
// out of order or missing shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/4096)
	}
	return b
}

func chunkStore(t *testing.T, nc *nats.Conn) jetstream.ObjectStore {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := js.ObjectStore(ctx, lattice.ChunkBucket("default"))
	if err != nil {
		t.Fatalf("lattice object store: %v", err)
	}
	return store
}

// A payload over the threshold travels through the object store both ways:
// the callee reads the whole invocation payload and the caller the whole
// reply, and nothing is left in the store afterwards (the receiver deletes).
// The bucket the first chunking host creates expires what nobody fetches.
func TestChunkedInvocationAndReply(t *testing.T) {
	l := newLattice(t)
	provider := lattice.Entity{PublicKey: "VPROVIDER", ContractID: wire.ContractHTTPServer, LinkName: "default"}
	for _, tc := range []struct {
		name       string
		in, out    int
		wantStored bool // the invocation went through the store
	}{
		{"both chunked", 5 << 20, 5<<20 + 1, true},
		{"threshold inline", rpc.ChunkThreshold, rpc.ChunkThreshold, false},
		{"small in, chunked reply", 10, rpc.ChunkThreshold + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out := pattern(tc.in), pattern(tc.out)
			var got []byte
			c := l.serve(t, lattice.KindModule, "", &rpc.Server{Conn: l.nc,
				Handle: func(_ context.Context, inv *lattice.Invocation) (rpc.Result, error) {
					got = inv.Msg
					return rpc.Result{Msg: out}, nil
				}})
			// What travels on the subject: the marker, not the payload.
			raw, err := l.nc.SubscribeSync(c.subject)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = raw.Unsubscribe() })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			reply, err := l.call(ctx, provider, c, wire.OpHTTPHandleRequest, in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, in) || !bytes.Equal(reply, out) {
				t.Fatalf("callee read %d bytes (equal %v), caller %d bytes (equal %v)", len(got), bytes.Equal(got, in), len(reply), bytes.Equal(reply, out))
			}
			m, err := raw.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := lattice.DecodeInvocation(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if stored := len(inv.Msg) == 0; stored != tc.wantStored || inv.ContentLength != uint64(tc.in) {
				t.Errorf("invocation on the wire: msg %d bytes, content_length %d; want stored %v, content_length %d", len(inv.Msg), inv.ContentLength, tc.wantStored, tc.in)
			}
			if tc.wantStored && !bytes.Contains(m.Data, []byte("\xa3msg\xc4\x00")) {
				t.Errorf("chunked invocation's msg is not an empty bin (C4 00)")
			}
			store := chunkStore(t, l.nc)
			for _, name := range []string{inv.ID, lattice.ChunkResponseObject(inv.ID)} {
				if _, err := store.GetInfo(ctx, name); !errors.Is(err, jetstream.ErrObjectNotFound) {
					t.Errorf("object %s after the call: %v; want it deleted by its receiver", name, err)
				}
			}
			st, err := store.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.TTL() != rpc.ChunkMaxAge {
				t.Errorf("bucket max age %s, want %s", st.TTL(), rpc.ChunkMaxAge)
			}
		})
	}
}

// A bucket another host made (wasmCloud's: no max age) is used as it is.
func TestChunkingAcceptsAnotherHostsBucket(t *testing.T) {
	l := newLattice(t)
	js, err := jetstream.New(l.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: lattice.ChunkBucket("default")}); err != nil {
		t.Fatal(err)
	}
	c := l.serve(t, lattice.KindModule, "", &rpc.Server{Conn: l.nc,
		Handle: func(_ context.Context, inv *lattice.Invocation) (rpc.Result, error) {
			return rpc.Result{Msg: inv.Msg}, nil
		}})
	in := pattern(2 << 20)
	out, err := l.call(ctx, lattice.ActorEntity("MCALLER"), c, "Echo.Echo", in)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("echo of %d bytes: %d bytes, %v", len(in), len(out), err)
	}
	st, err := chunkStore(t, l.nc).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 0 {
		t.Errorf("another host's bucket changed: max age %s", st.TTL())
	}
}

// Chunked invocations are refused by what their content_length says, before
// anything is fetched, and when the stored payload is missing or is not what
// the token signed. Handle never runs.
func TestChunkedRefusals(t *testing.T) {
	l := newLattice(t)
	handled := make(chan struct{}, 4)
	srv := &rpc.Server{Conn: l.nc, MaxPayloadBytes: 2 << 20,
		Handle: func(context.Context, *lattice.Invocation) (rpc.Result, error) {
			handled <- struct{}{}
			return rpc.Result{}, nil
		}}
	c := l.serve(t, lattice.KindModule, "", srv)
	origin := lattice.ActorEntity("MCALLER")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Over the limit: the typed error, and the sender's object is left to
	// expire.
	_, err := l.call(ctx, origin, c, "Echo.Echo", pattern(3<<20))
	if !errors.Is(err, rpc.ErrTooLarge) || !strings.Contains(err.Error(), "chunked invocation of 3145728 bytes exceeds the 2097152 byte limit") {
		t.Errorf("3 MiB to a 2 MiB callee: %v; want ErrTooLarge", err)
	}

	// Missing, and swapped for other bytes of the same length.
	signed := pattern(1 << 20)
	store := chunkStore(t, l.nc)
	for _, tc := range []struct {
		name   string
		stored []byte // nil: nothing stored
		reason lattice.RejectReason
	}{
		{"missing", nil, lattice.ReasonChunkFetch},
		{"tampered", bytes.Repeat([]byte("x"), len(signed)), lattice.ReasonHashMismatch},
	} {
		inv, err := trust.NewInvocation(l.cluster, l.host.PublicKey(), origin, c.entity, "Echo.Echo", signed)
		if err != nil {
			t.Fatal(err)
		}
		if tc.stored != nil {
			if _, err := store.PutBytes(ctx, inv.ID, tc.stored); err != nil {
				t.Fatal(err)
			}
		}
		inv.Msg = []byte{}
		data, err := inv.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m, err := l.nc.RequestWithContext(ctx, c.subject, data)
		if err != nil {
			t.Fatal(err)
		}
		if code := m.Header.Get(lattice.HeaderErrorCode); code != string(tc.reason) {
			resp, _ := lattice.DecodeInvocationResponse(m.Data)
			t.Errorf("%s: code %q (%+v), want %s", tc.name, code, resp, tc.reason)
		}
	}
	select {
	case <-handled:
		t.Error("a refused chunked invocation reached Handle")
	default:
	}
}

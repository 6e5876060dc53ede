package supervisor

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// httpActorNode starts a node running the actor built from pkg, signed with
// the httpserver capability, and the built-in httpserver provider (not yet
// linked to it).
func httpActorNode(t *testing.T, pkg, name string, tweak ...func(*Supervisor)) (*node, testenv.SignedActor) {
	t.Helper()
	actor := testenv.SignActor(t, t.TempDir(), pkg, trust.SignActorOptions{Name: name, Caps: []string{wire.ContractHTTPServer}})
	n := startNodeWith(t, nil, func(s *Supervisor) {
		for _, f := range tweak {
			f(s)
		}
	}, "file://"+actor.Path)
	n.launch("builtin:httpserver", "default", "")
	n.waitProviderState("builtin:httpserver", "default", child.StateRunning)
	return n, actor
}

// Large bodies cross a real node byte for byte: HTTP POST → httpserver
// provider (child process) → NATS → host child → pass-through actor → back.
// Sizes straddle the msgpack length classes (bin8/16/32) and the chunking
// threshold: from 900 KiB (with the request around it) the invocation and
// the reply travel through the object store the supervisor made
// (docs/protocol.md §3), under the provider's and the host's minted users;
// four different 2 MiB bodies at once catch a buffer or an object shared
// between calls.
func TestLargeBodiesRoundTripThroughANode(t *testing.T) {
	n, actor := httpActorNode(t, "./internal/testing/actors/passthrough", "passthrough")
	port := testenv.FreePort(t)
	provider, _ := builtin.Lookup("builtin:httpserver")
	// A generous actor timeout: 900 KiB on a loaded 2-core machine, where
	// the actor may still run interpreted code, is not what is tested here.
	n.putLinks(lattice.LinkDefinition{ActorID: actor.Key, ProviderID: provider.Key(), LinkName: "default",
		ContractID: wire.ContractHTTPServer, Values: map[string]string{
			"address": "127.0.0.1:" + strconv.Itoa(port), "timeout_ms": "60000"}})
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/bytes"
	c := &http.Client{Timeout: 90 * time.Second}
	post := func(body []byte) error {
		resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("%d bytes: status %d: %.200s", len(body), resp.StatusCode, got)
		case !bytes.Equal(got, body):
			i := 0
			for i < len(got) && i < len(body) && got[i] == body[i] {
				i++
			}
			return fmt.Errorf("%d bytes sent, %d came back, first difference at byte %d", len(body), len(got), i)
		}
		return nil
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error { return post([]byte("ready?")) })

	js, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := js.ObjectStore(ctx, lattice.ChunkBucket(n.cfg.LatticePrefix))
	if err != nil {
		t.Fatalf("the supervisor made no object store: %v", err)
	}
	if st, err := store.Status(ctx); err != nil || st.TTL() != rpc.ChunkMaxAge {
		t.Fatalf("object store status %v, %v; want max age %s", st, err, rpc.ChunkMaxAge)
	}
	for _, size := range []int{0, 1, 255, 256, 65535, 65536, 256 << 10, 900 << 10, 5 << 20} {
		if err := post(random(size)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- post(random(2 << 20))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

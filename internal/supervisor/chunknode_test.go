package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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

// A node chunks through the bucket its supervisor made, under the minted
// users' own rights: a 3 MiB call of the echo actor (the host's RPC user
// fetches the invocation and puts the reply), and a 3 MiB HTTP body through
// the built-in HTTP server provider (the provider's user puts the
// invocation and fetches the reply), with no permission violation.
func TestNodeChunksThroughTheSupervisorsBucket(t *testing.T) {
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{
		Name: "echo", Caps: []string{wire.ContractHTTPServer},
	})
	n := startNode(t, nil, "file://"+echo.Path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	js, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := js.ObjectStore(ctx, lattice.ChunkBucket(n.cfg.LatticePrefix))
	if err != nil {
		t.Fatalf("the supervisor made no object store: %v", err)
	}
	if st, err := store.Status(ctx); err != nil || st.TTL() != rpc.ChunkMaxAge {
		t.Fatalf("object store status %v, %v; want max age %s", st, err, rpc.ChunkMaxAge)
	}

	sent := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 3<<20/26)
	callCtx, callCancel := context.WithTimeout(ctx, rpc.ChunkTimeout)
	out, err := n.invokeEcho(callCtx, echo.Key, sent)
	callCancel()
	if err != nil || !bytes.Equal(out, sent) {
		t.Fatalf("echo of %d bytes: %d bytes back, %v", len(sent), len(out), err)
	}

	n.launch("builtin:httpserver", "default", "")
	n.waitProviderState("builtin:httpserver", "default", child.StateRunning)
	port := testenv.FreePort(t)
	hs, _ := builtin.Lookup("builtin:httpserver")
	n.putLinks(lattice.LinkDefinition{ActorID: echo.Key, ProviderID: hs.Key(), LinkName: "default", ContractID: wire.ContractHTTPServer,
		Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}})
	var got struct{ Body string }
	testenv.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/large", "text/plain", bytes.NewReader(sent))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
		}
		return json.Unmarshal(b, &got)
	})
	if got.Body != string(sent) {
		t.Fatalf("HTTP echo of %d bytes: %d bytes back, different", len(sent), len(got.Body))
	}
	if strings.Contains(n.logs.String(), "Permissions Violation") {
		t.Errorf("a permission violation was logged:\n%s", n.logs.String())
	}
}

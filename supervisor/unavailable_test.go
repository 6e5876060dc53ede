package supervisor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider/httpserver"
)

// Issue 17.7: while the key-value provider kvcounter calls is not running
// (a node starting, or the provider stopped), an HTTP client gets 503 with
// Retry-After and a request id, not 500, and nothing internal: the actor's
// host codes the reply unavailable (lattice.ErrorCodeUnavailable), and the
// HTTP server provider branches on that code.
func TestHTTPAnswers503WithRetryAfterWhileACalledProviderIsDown(t *testing.T) {
	n, actor, port := kvcounterNode(t)
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("first count %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.admin.StopProvider(ctx, lattice.StopProviderCommand{ProviderRef: "builtin:keyvalue", LinkName: "default"}); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if _, ok := n.provider("builtin:keyvalue", "default"); ok {
			return fmt.Errorf("key-value provider still listed")
		}
		return nil
	})
	kv, _ := lattice.LookupBuiltin("builtin:keyvalue")
	for i := range 3 {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("request %d: status %d, want 503: %s", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Retry-After"); got != httpserver.RetryAfterSeconds {
			t.Errorf("Retry-After %q, want %q", got, httpserver.RetryAfterSeconds)
		}
		id := resp.Header.Get(httpserver.RequestIDHeader)
		if id == "" || !strings.Contains(body, id) {
			t.Errorf("request id %q not in the body %q", id, body)
		}
		for _, internal := range []string{"wasmbus", n.cfg.LatticePrefix + ".", kv.Key(), actor.Key, "counter"} {
			if strings.Contains(body, internal) {
				t.Errorf("the body shows %q: %s", internal, body)
			}
		}
	}
	// Back once the provider runs again, counting on where it left off.
	n.launch("builtin:keyvalue", "default", "")
	n.waitProviderState("builtin:keyvalue", "default", stateRunning)
	if got := httpCounter(t, port); got != 2 {
		t.Fatalf("count after the provider returned %d, want 2", got)
	}
}

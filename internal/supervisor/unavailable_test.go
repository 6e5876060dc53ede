package supervisor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/builtin/httpserver"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
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
	kv, _ := builtin.Lookup("builtin:keyvalue")
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
	n.waitProviderState("builtin:keyvalue", "default", child.StateRunning)
	if got := httpCounter(t, port); got != 2 {
		t.Fatalf("count after the provider returned %d, want 2", got)
	}
}

// Issue 17.7: a node restarted under steady HTTP load (`up --apply` with
// kvcounter behind the built-in HTTP server and key-value providers, the
// HTTP server listed first) never answers 500: each response is 200 or 503
// with Retry-After. The key-value provider starts before the HTTP server
// (manifest.startOrder), and a call that still finds it down is coded
// unavailable by the actor's host.
func TestRestartUnderHTTPLoadAnswersNo500(t *testing.T) {
	actor := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{
		Name: "kvcounter", Caps: []string{wire.ContractHTTPServer, wire.ContractKeyValue},
	})
	port := testenv.FreePort(t)
	path := filepath.Join(t.TempDir(), "lattice.yaml")
	body := fmt.Sprintf(`actors:
  - ref: file://%[1]s
providers:
  - ref: builtin:httpserver
  - ref: builtin:keyvalue
links:
  - actor: file://%[1]s
    provider: builtin:httpserver
    contract: wasmcloud:httpserver
    values: {address: "127.0.0.1:%[2]d"}
  - actor: file://%[1]s
    provider: builtin:keyvalue
    contract: wasmcloud:keyvalue
`, actor.Path, port)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	first := launchUpIn(t, dataDir, nil, "--apply", path)
	first.waitReady()
	httpCounter(t, port)

	// Steady load: one request at a time, as fast as answers come.
	type result struct {
		status     int
		retryAfter string
		body       string
	}
	var (
		mu      sync.Mutex
		results []result
		ok      atomic.Int64 // 200s so far
	)
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
			if err != nil { // the port is closed between the two runs
				time.Sleep(10 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok.Add(1)
			}
			mu.Lock()
			results = append(results, result{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)})
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-loadDone
	})
	waitOK := func(n int64) {
		t.Helper()
		testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
			if got := ok.Load(); got < n {
				return fmt.Errorf("%d successful requests, want %d", got, n)
			}
			return nil
		})
	}
	waitOK(5)

	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(60 * time.Second):
		t.Fatal("latticed up did not stop within 60s of SIGTERM")
	}
	before := ok.Load()
	second := launchUpIn(t, dataDir, nil, "--apply", path)
	second.waitReady()
	waitOK(before + 20)
	close(stop)
	<-loadDone

	mu.Lock()
	defer mu.Unlock()
	var unavailable int
	for _, r := range results {
		switch r.status {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			unavailable++
			if r.retryAfter != httpserver.RetryAfterSeconds {
				t.Errorf("503 with Retry-After %q, want %q: %s", r.retryAfter, httpserver.RetryAfterSeconds, r.body)
			}
		default:
			t.Errorf("status %d during the restart, want 200 or 503: %s", r.status, r.body)
		}
	}
	t.Logf("%d responses across the restart: %d of them 503", len(results), unavailable)
}

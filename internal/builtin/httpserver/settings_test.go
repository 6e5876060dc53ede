package httpserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/wire"
)

func TestParseSettings(t *testing.T) {
	b64 := base64.RawStdEncoding.EncodeToString([]byte(`{"address":"127.0.0.1:9001","max_content_len":"2k"}`))
	for _, c := range []struct {
		name   string
		values map[string]string
		want   Settings
		err    string
	}{
		{"defaults: loopback, 64 MiB", nil, Settings{Address: "127.0.0.1:8000", MaxContentLen: 64 << 20}, ""},
		{"PORT binds loopback", map[string]string{"PORT": "8080"}, Settings{Address: "127.0.0.1:8080", MaxContentLen: 64 << 20}, ""},
		{"port in any case", map[string]string{"Port": "8081"}, Settings{Address: "127.0.0.1:8081", MaxContentLen: 64 << 20}, ""},
		{"address wins over port", map[string]string{"ADDRESS": "0.0.0.0:9000", "port": "8080"}, Settings{Address: "0.0.0.0:9000", MaxContentLen: 64 << 20}, ""},
		{"ipv6 address", map[string]string{"address": "[::1]:9000"}, Settings{Address: "[::1]:9000", MaxContentLen: 64 << 20}, ""},
		{"config_json", map[string]string{"config_json": `{"address":"127.0.0.1:9002","timeout_ms":1500,"max_content_len":4096,"tls":{}}`},
			Settings{Address: "127.0.0.1:9002", MaxContentLen: 4096, Timeout: 1500 * time.Millisecond}, ""},
		{"config_b64", map[string]string{"config_b64": b64}, Settings{Address: "127.0.0.1:9001", MaxContentLen: 2048}, ""},
		{"values override config_json", map[string]string{"config_json": `{"address":"127.0.0.1:9002"}`, "address": "127.0.0.1:9003", "max_content_len": "10M", "timeout_ms": "250"},
			Settings{Address: "127.0.0.1:9003", MaxContentLen: 10 << 20, Timeout: 250 * time.Millisecond}, ""},
		{"duplicate key in two cases", map[string]string{"port": "1", "PORT": "2"}, Settings{}, "more than once"},
		{"bad port", map[string]string{"port": "http"}, Settings{}, "port"},
		{"port out of range", map[string]string{"port": "70000"}, Settings{}, "port"},
		{"bad address", map[string]string{"address": "localhost"}, Settings{}, "host:port"},
		{"zero size", map[string]string{"max_content_len": "0"}, Settings{}, "positive size"},
		{"huge size", map[string]string{"max_content_len": "2g"}, Settings{}, "exceeds"},
		{"bad timeout", map[string]string{"timeout_ms": "-1"}, Settings{}, "timeout_ms"},
		{"bad config_json", map[string]string{"config_json": "{"}, Settings{}, "config_json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSettings(c.values)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("%+v %v, want %+v", got, err, c.want)
			}
		})
	}
}

// fakeInvoker answers HandleRequest with a canned reply or error.
type fakeInvoker struct {
	reply []byte
	err   error
	wait  bool // block until the context ends
	got   wire.HTTPRequest
}

func (f *fakeInvoker) RPCTimeout() time.Duration { return time.Second }
func (f *fakeInvoker) Invoke(ctx context.Context, _, op string, payload []byte) ([]byte, error) {
	if op != wire.OpHTTPHandleRequest {
		return nil, fmt.Errorf("operation %s", op)
	}
	if err := lattice.Unmarshal(payload, &f.got); err != nil {
		return nil, err
	}
	if f.wait {
		<-ctx.Done()
		return nil, errors.New("Failed to perform RPC call to x: request timeout")
	}
	return f.reply, f.err
}

// The status of a failed call follows its reason, as the callee coded it in
// its reply (rpc's sentinels), wrapped or not, and never its text: a
// reworded error keeps its status, and the old texts without a code are
// plain failures.
func TestReasonsMapToStatus(t *testing.T) {
	remote := func(code, msg string) error { return &rpc.RemoteError{Msg: msg, Code: code} }
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"unavailable", remote(lattice.ErrorCodeUnavailable, "kv provider not running"), http.StatusServiceUnavailable},
		{"busy", remote(lattice.ErrorCodeBusy, "reworded: no room"), http.StatusServiceUnavailable},
		{"busy, wrapped", fmt.Errorf("call: %w", remote(lattice.ErrorCodeBusy, "x")), http.StatusServiceUnavailable},
		{"capability not claimed", remote(string(lattice.ReasonCapabilityNotClaimed), "reworded"), http.StatusForbidden},
		{"too large", remote(string(lattice.ReasonTooLarge), "reworded"), http.StatusRequestEntityTooLarge},
		{"too large for NATS", fmt.Errorf("Failed to perform RPC call: %w", nats.ErrMaxPayload), http.StatusRequestEntityTooLarge},
		{"no responders", fmt.Errorf("Failed to perform RPC call: %w", rpc.ErrNoResponders), http.StatusServiceUnavailable},
		{"another rejection", remote(string(lattice.ReasonPolicyDenied), "Policy evaluation rejected invocation attempt: no"), http.StatusInternalServerError},
		{"failed", remote("", "actor trapped"), http.StatusInternalServerError},
		{"busy text, no code", remote("", "actor is busy: all instances in use"), http.StatusInternalServerError},
		{"claim text, no code", remote("", "Invocation source does not have the required capability claim wasmcloud:httpserver"), http.StatusInternalServerError},
		{"too large text, no code", remote("", "invocation rejected (too_large): invocation of 2000000 bytes exceeds"), http.StatusInternalServerError},
		{"unknown code", remote("some_future_code", "x"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := classify(context.Background(), tc.err, time.Second); code != tc.code {
				t.Errorf("classify(%v) = %d, want %d", tc.err, code, tc.code)
			}
		})
	}
}

func TestResponsesAndFailuresMapToStatusCodes(t *testing.T) {
	reply := func(r wire.HTTPResponse) []byte {
		b, _ := lattice.Marshal(r)
		return b
	}
	for _, c := range []struct {
		name   string
		inv    *fakeInvoker
		code   int
		body   string
		header http.Header
	}{
		{"status 0 is 200", &fakeInvoker{reply: reply(wire.HTTPResponse{Body: []byte("hi")})}, 200, "hi", nil},
		{"actor headers and status", &fakeInvoker{reply: reply(wire.HTTPResponse{StatusCode: 404, Header: map[string][]string{"x-a": {"1", "2"}, "Content-Length": {"999"}}, Body: []byte("nf")})},
			404, "nf", http.Header{"X-A": {"1", "2"}}},
		{"invalid status", &fakeInvoker{reply: reply(wire.HTTPResponse{StatusCode: 42})}, 500, "actor returned an invalid HTTP status\n", nil},
		{"malformed reply", &fakeInvoker{reply: []byte{0xc1}}, 500, "actor returned a malformed HTTP response\n", nil},
		{"no responders", &fakeInvoker{err: fmt.Errorf("Failed to perform RPC call: %w", rpc.ErrNoResponders)}, 503, "actor unavailable: it is not running in this lattice\n", nil},
		{"busy", &fakeInvoker{err: &rpc.RemoteError{Msg: "actor MX: actor is busy: all instances in use", Code: lattice.ErrorCodeBusy}}, 503, "actor busy: retry later\n", nil},
		{"timeout", &fakeInvoker{wait: true}, 504, "actor did not answer within 200ms\n", nil},
		{"missing claim", &fakeInvoker{err: &rpc.RemoteError{Msg: "Invocation source does not have the required capability claim wasmcloud:httpserver", Code: string(lattice.ReasonCapabilityNotClaimed)}}, 403,
			"actor may not handle HTTP requests: its claims lack the wasmcloud:httpserver capability\n", nil},
		{"too large for the host", &fakeInvoker{err: &rpc.RemoteError{Msg: "invocation rejected (too_large): invocation of 2000000 bytes exceeds", Code: string(lattice.ReasonTooLarge)}}, 413, "request too large for the lattice\n", nil},
		{"too large for NATS", &fakeInvoker{err: fmt.Errorf("Failed to perform RPC call: %w", nats.ErrMaxPayload)}, 413, "request too large for the lattice\n", nil},
		{"trap", &fakeInvoker{err: errors.New("actor trapped: wasm error: out of bounds memory access")}, 500, "actor failed to handle the request\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &listener{actor: "MX", timeout: 200 * time.Millisecond, maxBody: 16, inv: c.inv, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			rec := httptest.NewRecorder()
			req, _ := http.NewRequest(http.MethodPut, "http://example.test/a%20b/c?q=1&r", strings.NewReader("body"))
			req.Header.Add("X-Multi", "1")
			req.Header.Add("X-Multi", "2")
			l.ServeHTTP(rec, req)
			body := rec.Body.String()
			if strings.HasSuffix(c.body, "\n") {
				// The provider's own errors (the actor's bodies are returned
				// as they are) end in the id its log line carries.
				id := rec.Header().Get(RequestIDHeader)
				suffix := " (request id " + id + ")\n"
				if id == "" || !strings.HasSuffix(body, suffix) {
					t.Fatalf("error body %q without the request id of header %s=%q", body, RequestIDHeader, id)
				}
				body = strings.TrimSuffix(body, suffix) + "\n"
			}
			if rec.Code != c.code || body != c.body {
				t.Fatalf("%d %q, want %d %q", rec.Code, body, c.code, c.body)
			}
			for k, v := range c.header {
				if got := rec.Header()[k]; fmt.Sprint(got) != fmt.Sprint(v) {
					t.Fatalf("header %s = %v, want %v", k, got, v)
				}
			}
			if rec.Header().Get("Content-Length") == "999" {
				t.Fatal("the actor set Content-Length")
			}
			g := c.inv.got
			if g.Method != "PUT" || g.Path != "/a%20b/c" || g.QueryString != "q=1&r" || string(g.Body) != "body" ||
				fmt.Sprint(g.Header["x-multi"]) != "[1 2]" || fmt.Sprint(g.Header["host"]) != "[example.test]" {
				t.Fatalf("request as the actor saw it: %+v", g)
			}
		})
	}
	t.Run("oversized body never reaches the actor", func(t *testing.T) {
		inv := &fakeInvoker{}
		l := &listener{actor: "MX", timeout: time.Second, maxBody: 3, inv: inv, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(http.MethodPost, "http://x/", strings.NewReader("four"))
		l.ServeHTTP(rec, req)
		if rec.Code != 413 || inv.got.Method != "" {
			t.Fatalf("%d, actor saw %+v", rec.Code, inv.got)
		}
	})
}

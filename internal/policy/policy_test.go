package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/testenv"
)

const topic = "wasmcloud.policy"

func hostInfo() Host {
	return Host{PublicKey: "NHOST", LatticeID: "default", Labels: map[string]string{}}
}

// responder answers policy requests with decide(req); it counts requests.
func responder(t testing.TB, nc *nats.Conn, decide func(Request) any) *atomic.Int32 {
	t.Helper()
	return responderOn(t, nc, topic, decide)
}

func responderOn(t testing.TB, nc *nats.Conn, subject string, decide func(Request) any) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		n.Add(1)
		var req Request
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Errorf("policy request is not JSON: %v", err)
			return
		}
		out := decide(req)
		b, ok := out.([]byte)
		if !ok {
			b, _ = json.Marshal(out)
		}
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()
	return &n
}

func TestDecisionsAreAskedOnceThenCached(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	svc := New(testenv.Connect(t, s), topic, time.Second, hostInfo)
	var seen Request
	asked := responder(t, nc, func(r Request) any {
		seen = r
		return map[string]any{"permitted": r.Target.PublicKey != "MBAD", "message": "actor MBAD is banned", "requestId": r.RequestID}
	})
	ctx := context.Background()
	src := Source{PublicKey: "VPROV", ContractID: "wasmcloud:httpserver", LinkName: "default"}
	for i, wantCached := range []bool{false, true} {
		cached, err := svc.Decide(ctx, ActionPerformInvocation, src, Target{PublicKey: "MGOOD"})
		if err != nil || cached != wantCached {
			t.Fatalf("call %d: cached %v, err %v", i, cached, err)
		}
	}
	if asked.Load() != 1 {
		t.Fatalf("asked %d times", asked.Load())
	}
	if seen.Action != ActionPerformInvocation || seen.Source.PublicKey != "VPROV" || seen.Host.PublicKey != "NHOST" || seen.RequestID == "" || seen.Source.Capabilities == nil {
		t.Fatalf("request %+v", seen)
	}
	_, err := svc.Decide(ctx, ActionPerformInvocation, src, Target{PublicKey: "MBAD"})
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "actor MBAD is banned") {
		t.Fatalf("denial: %v", err)
	}
}

func TestNoDecisionMeansDenyAndIsNotCached(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	svc := New(testenv.Connect(t, s), topic, 200*time.Millisecond, hostInfo)
	ctx := context.Background()
	tgt := Target{PublicKey: "MX"}
	if _, err := svc.Decide(ctx, ActionStartActor, Source{}, tgt); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "no decision") {
		t.Fatalf("no service: %v", err)
	}
	garbage := responder(t, nc, func(Request) any { return []byte("not json") })
	if _, err := svc.Decide(ctx, ActionStartActor, Source{}, tgt); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "undecodable") {
		t.Fatalf("garbage: %v", err)
	}
	if garbage.Load() != 1 {
		t.Fatal("garbage reply not asked")
	}
	// Nothing was cached: a working service is asked the same question again.
	ok := responderOn(t, nc, "policy.ok", func(r Request) any { return Decision{RequestID: r.RequestID, Permitted: true} })
	svc2 := New(testenv.Connect(t, s), "policy.ok", time.Second, hostInfo)
	if _, err := svc2.Decide(ctx, ActionStartActor, Source{}, tgt); err != nil || ok.Load() != 1 {
		t.Fatalf("working service: %v (asked %d)", err, ok.Load())
	}
	// A service that never answers in time is a denial too.
	silent, _ := nc.Subscribe("policy.silent", func(*nats.Msg) {})
	defer silent.Unsubscribe()
	_ = nc.Flush()
	svc3 := New(testenv.Connect(t, s), "policy.silent", 100*time.Millisecond, hostInfo)
	if _, err := svc3.Decide(ctx, ActionStartActor, Source{}, tgt); !errors.Is(err, ErrDenied) {
		t.Fatalf("timeout: %v", err)
	}
}

func TestChangeNoticeReplacesACachedDecision(t *testing.T) {
	s := testenv.NATS(t)
	nc := testenv.Connect(t, s)
	svc := New(testenv.Connect(t, s), topic, time.Second, hostInfo)
	var reqID atomic.Value
	responder(t, nc, func(r Request) any {
		reqID.Store(r.RequestID)
		return Decision{RequestID: r.RequestID, Permitted: true}
	})
	sub, err := svc.SubscribeChanges("wasmcloud.policy.changes", func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx := context.Background()
	tgt := Target{PublicKey: "MX"}
	if _, err := svc.Decide(ctx, ActionStartActor, Source{}, tgt); err != nil {
		t.Fatal(err)
	}
	// wasmCloud's change notices use snake_case request_id; the reply says whether it applied.
	body, _ := json.Marshal(map[string]any{"request_id": reqID.Load(), "permitted": false, "message": "revoked by admin"})
	reply, err := nc.Request("wasmcloud.policy.changes", body, time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"success":true`) {
		t.Fatalf("change reply %v %v", reply, err)
	}
	if _, err := svc.Decide(ctx, ActionStartActor, Source{}, tgt); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "revoked by admin") {
		t.Fatalf("after change: %v", err)
	}
}

// The cached path is what every invocation pays when a policy service is
// configured: it must be negligible next to an invocation (~100 µs).
func BenchmarkDecideCached(b *testing.B) {
	s := testenv.NATS(b)
	nc := testenv.Connect(b, s)
	svc := New(testenv.Connect(b, s), topic, time.Second, hostInfo)
	responder(b, nc, func(r Request) any { return Decision{RequestID: r.RequestID, Permitted: true} })
	ctx := context.Background()
	src, tgt := Source{PublicKey: "VPROV", ContractID: "wasmcloud:httpserver", LinkName: "default"}, Target{PublicKey: "MX"}
	if _, err := svc.Decide(ctx, ActionPerformInvocation, src, tgt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Decide(ctx, ActionPerformInvocation, src, tgt); err != nil {
			b.Fatal(err)
		}
	}
}

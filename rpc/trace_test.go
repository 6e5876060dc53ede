package rpc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/builtin/httpserver"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/internal/testing/otlptest"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/wire"
)

// tracingOn turns tracing on as a latticed process does, exporting to a
// loopback OTLP/HTTP receiver; the returned function turns it off again.
func tracingOn(t *testing.T) (*otlptest.Receiver, func()) {
	t.Helper()
	recv := otlptest.Start(t)
	vars := map[string]string{config.EnvOTelTracesExporter: config.TracesExporterOTLP, config.EnvOTelEndpoint: recv.Endpoint()}
	shutdown, err := telemetry.Setup(context.Background(), func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, "svc", "inst", nil)
	if err != nil {
		t.Fatal(err)
	}
	off := func() {
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(off)
	return recv, off
}

// Off, before tracing was ever on and after it was turned off: an
// invocation's span and the trace context of its calls out cost nothing,
// even for an invocation that carries a trace context; nor do an actor's
// call out and an HTTP request.
func TestTracingOffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	inv := &lattice.Invocation{Operation: wire.OpHTTPHandleRequest, ID: "id",
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	resp := &lattice.InvocationResponse{Error: "x"}
	errFailed := errors.New("x")
	h := http.NotFoundHandler()
	check := func(when string) {
		t.Helper()
		if rpc.Tracer() != nil {
			t.Fatalf("%s: tracing on", when)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			c, s := rpc.StartServerSpan(ctx, inv, "MACTOR")
			if rpc.Inject(c) != nil {
				t.Fatal("trace context injected while tracing is off")
			}
			s.End(resp)
			_, hs := rpc.StartHostCall(c, "MACTOR", wire.ContractKeyValue, "default", wire.OpKVIncrement)
			hs.End(errFailed)
			if httpserver.Traced(h, "MACTOR") == nil {
				t.Fatal("nil handler")
			}
		})
		if allocs != 0 {
			t.Errorf("tracing off %s: the invocation path allocates %v times per invocation, want 0", when, allocs)
		}
	}
	check("before Setup")
	_, off := tracingOn(t)
	off()
	check("after shutdown")
}

// On: one trace runs from an HTTP request through an invocation of an
// actor, its call out and the provider's invocation, across real NATS
// (the traceContext of the wire form), to a real OTLP/HTTP receiver.
func TestSpansCrossAnInvocation(t *testing.T) {
	l := newLattice(t)
	recv, off := tracingOn(t)
	kv := l.serve(t, lattice.KindService, wire.ContractKeyValue, &rpc.Server{
		Handle: func(context.Context, *lattice.Invocation) (rpc.Result, error) {
			return rpc.Result{Msg: []byte("1")}, nil
		}})
	var actor callee
	actor = l.serve(t, lattice.KindModule, "", &rpc.Server{
		Handle: func(ctx context.Context, inv *lattice.Invocation) (rpc.Result, error) {
			ctx, s := rpc.StartHostCall(ctx, actor.entity.PublicKey, wire.ContractKeyValue, "default", wire.OpKVIncrement)
			_, err := l.call(ctx, actor.entity, kv, wire.OpKVIncrement, nil)
			s.End(err)
			if err != nil {
				return rpc.Result{}, err
			}
			return rpc.Result{}, errors.New("boom")
		}})
	httpProvider := lattice.Entity{PublicKey: "VHTTP", ContractID: wire.ContractHTTPServer, LinkName: "default"}
	srv := httptest.NewServer(httpserver.Traced(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := l.call(r.Context(), httpProvider, actor, wire.OpHTTPHandleRequest, nil)
		if err == nil || err.Error() != "boom" {
			t.Errorf("actor call: %v, want boom", err)
		}
		w.WriteHeader(http.StatusTeapot)
	}), actor.entity.PublicKey))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/p")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	off()
	if telemetry.Enabled() || rpc.Tracer() != nil {
		t.Error("tracing still on after shutdown")
	}

	var spans []otlptest.Span
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if spans = recv.Spans(); len(spans) < 4 {
			return errors.New("fewer than 4 spans received")
		}
		return nil
	})
	by := map[string]otlptest.Span{}
	for _, sp := range spans {
		by[sp.Name+"/"+sp.Kind.String()] = sp
		if sp.Service != "svc" {
			t.Errorf("span %v: service %q, want svc", sp, sp.Service)
		}
	}
	httpSpan, hostSpan := by["GET/SPAN_KIND_SERVER"], by[wire.OpHTTPHandleRequest+"/SPAN_KIND_SERVER"]
	callSpan, kvSpan := by[wire.OpKVIncrement+"/SPAN_KIND_CLIENT"], by[wire.OpKVIncrement+"/SPAN_KIND_SERVER"]
	for _, link := range []struct{ child, parent otlptest.Span }{{hostSpan, httpSpan}, {callSpan, hostSpan}, {kvSpan, callSpan}} {
		if link.child.SpanID == "" || link.child.ParentSpanID != link.parent.SpanID || link.child.TraceID != httpSpan.TraceID {
			t.Errorf("span %v: want a child of %v", link.child, link.parent)
		}
	}
	if httpSpan.ParentSpanID != "" || httpSpan.Attributes["http.response.status_code"] != "418" {
		t.Errorf("HTTP span %v %v: want a root span with status 418", httpSpan, httpSpan.Attributes)
	}
	if hostSpan.StatusCode.String() != "STATUS_CODE_ERROR" || kvSpan.StatusCode.String() == "STATUS_CODE_ERROR" {
		t.Errorf("status: failed invocation %v, ok invocation %v", hostSpan.StatusCode, kvSpan.StatusCode)
	}
	if hostSpan.Attributes["latticed.invocation.id"] == "" || hostSpan.Attributes["rpc.method"] != wire.OpHTTPHandleRequest ||
		hostSpan.Attributes["latticed.target"] != actor.entity.PublicKey {
		t.Errorf("invocation span attributes: %v", hostSpan.Attributes)
	}
}

package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/otlptest"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestCheckEnv(t *testing.T) {
	for _, tc := range []struct {
		value   string
		set     bool
		on      bool
		wantErr bool
	}{
		{"", false, false, false},
		{"none", true, false, false},
		{"otlp", true, true, false},
		{"OTLP", true, true, false},
		{"otlp,none", true, true, false},
		{"jaeger", true, false, true},
		{"console", true, false, true},
	} {
		vars := map[string]string{}
		if tc.set {
			vars[config.EnvOTelTracesExporter] = tc.value
		}
		on, err := exporterWanted(env(vars))
		if on != tc.on || (err != nil) != tc.wantErr {
			t.Errorf("%s=%q: on %v, err %v; want on %v, error %v", config.EnvOTelTracesExporter, tc.value, on, err, tc.on, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), config.EnvOTelTracesExporter) {
			t.Errorf("error %q does not name the setting", err)
		}
		if got := CheckEnv(env(vars)); (got != nil) != tc.wantErr {
			t.Errorf("CheckEnv(%q) = %v", tc.value, got)
		}
	}
}

// Off by default: Setup without the setting turns nothing on, and every hook
// on the invocation path allocates nothing.
func TestOffAllocatesNothing(t *testing.T) {
	shutdown, err := Setup(context.Background(), env(nil), ServiceHost, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if Enabled() {
		t.Fatal("tracing on without OTEL_TRACES_EXPORTER")
	}
	ctx := context.Background()
	inv := &lattice.Invocation{Operation: wire.OpHTTPHandleRequest, ID: "id",
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	resp := &lattice.InvocationResponse{}
	err = errors.New("x")
	h := http.NotFoundHandler()
	allocs := testing.AllocsPerRun(1000, func() {
		c, s := StartInvocation(ctx, inv, "MACTOR")
		c2, s2 := StartHostCall(c, "MACTOR", wire.ContractKeyValue, "default", wire.OpKVIncrement)
		if Inject(c2) != nil {
			t.Fatal("trace context injected while tracing is off")
		}
		s2.End(err)
		s.EndResponse(resp)
		if HTTPHandler(h, "MACTOR") == nil {
			t.Fatal("nil handler")
		}
	})
	if allocs != 0 {
		t.Errorf("tracing off: the invocation path's hooks allocate %v times per invocation, want 0", allocs)
	}
}

// On: spans cross an invocation as they cross processes (through the
// traceContext map of the wire form), and reach a real OTLP/HTTP receiver.
func TestSpansExported(t *testing.T) {
	recv := otlptest.Start(t)
	ctx := context.Background()
	shutdown, err := Setup(ctx, env(map[string]string{
		config.EnvOTelTracesExporter: "otlp", config.EnvOTelEndpoint: recv.Endpoint(),
	}), "svc", "inst", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	if !Enabled() {
		t.Fatal("tracing off with OTEL_TRACES_EXPORTER=otlp")
	}

	// An HTTP request → an invocation (encoded, decoded) → a host call → an invocation.
	var inner []byte
	srv := httptest.NewServer(HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inv := &lattice.Invocation{Operation: wire.OpHTTPHandleRequest, ID: "inv-1", TraceContext: Inject(r.Context())}
		b, err := inv.Encode()
		if err != nil {
			t.Error(err)
		}
		inner = b
		w.WriteHeader(http.StatusTeapot)
	}), "MACTOR"))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/p")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	inv, err := lattice.DecodeInvocation(inner)
	if err != nil {
		t.Fatal(err)
	}
	if inv.TraceContext["traceparent"] == "" {
		t.Fatalf("invocation carries no traceparent: %v", inv.TraceContext)
	}
	c, s := StartInvocation(ctx, inv, "MACTOR")
	c2, s2 := StartHostCall(c, "MACTOR", wire.ContractKeyValue, "default", wire.OpKVIncrement)
	out := &lattice.Invocation{Operation: wire.OpKVIncrement, ID: "inv-2", TraceContext: Inject(c2)}
	s2.End(nil)
	s.EndResponse(&lattice.InvocationResponse{Error: "boom"})
	c3, s3 := StartInvocation(ctx, out, "VPROVIDER")
	_ = c3
	s3.EndResponse(&lattice.InvocationResponse{})
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if Enabled() {
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
	if hostSpan.StatusCode != tracepb.Status_STATUS_CODE_ERROR || kvSpan.StatusCode == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("status: failed invocation %v, ok invocation %v", hostSpan.StatusCode, kvSpan.StatusCode)
	}
	if hostSpan.Attributes["latticed.invocation.id"] != "inv-1" || hostSpan.Attributes["rpc.method"] != wire.OpHTTPHandleRequest {
		t.Errorf("invocation span attributes: %v", hostSpan.Attributes)
	}
}

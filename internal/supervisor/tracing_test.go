package supervisor

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/internal/testing/otlptest"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// putLinks puts link definitions through the control interface.
func (n *node) putLinks(lds ...lattice.LinkDefinition) {
	n.t.Helper()
	ctl := lattice.NewCtl("", n.cfg.LatticePrefix)
	for _, ld := range lds {
		if err := ld.Normalize(); err != nil {
			n.t.Fatal(err)
		}
		var ack lattice.Ack
		n.ctlRequest(ctl.LinkdefsPut(), ld, &ack)
		if !ack.Accepted {
			n.t.Fatalf("link %s → %s: %s", ld.ActorID, ld.ContractID, ack.Error)
		}
	}
}

// Issue 8's trace: one HTTP request to kvcounter behind the httpserver and
// keyvalue providers gives one trace across three processes, exported over
// OTLP/HTTP to a real receiver: the httpserver provider's request span, the
// host's span of the actor's invocation (its child, through the
// invocation's traceContext), the host's span of the actor's call to
// keyvalue, and the keyvalue provider's span of that invocation.
func TestNodeTraceAcrossProcesses(t *testing.T) {
	recv := otlptest.Start(t)
	kvc := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{
		Name: "kvcounter", Caps: []string{wire.ContractHTTPServer, wire.ContractKeyValue},
	})
	n := startNode(t, map[string]string{
		config.EnvOTelTracesExporter: config.TracesExporterOTLP,
		config.EnvOTelEndpoint:       recv.Endpoint(),
		"OTEL_BSP_SCHEDULE_DELAY":    "50", // ms: export at once, not every 5 s
	}, "file://"+kvc.Path)
	const httpRef, kvRef = "builtin:httpserver", "builtin:keyvalue"
	for _, ref := range []string{httpRef, kvRef} {
		n.launch(ref, "default", "")
		n.waitProviderState(ref, "default", child.StateRunning)
	}
	httpB, _ := builtin.Lookup(httpRef)
	kvB, _ := builtin.Lookup(kvRef)
	port := testenv.FreePort(t)
	n.putLinks(
		lattice.LinkDefinition{ActorID: kvc.Key, ProviderID: httpB.Key(), LinkName: "default", ContractID: httpB.Contract, Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(port)}},
		lattice.LinkDefinition{ActorID: kvc.Key, ProviderID: kvB.Key(), LinkName: "default", ContractID: kvB.Contract},
	)
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		code, err := httpGet(url) // 200 once both links reached their providers
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		return err
	})

	// The request, as part of a trace the client started.
	const traceID, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("kvcounter: status %d", resp.StatusCode)
	}

	type want struct {
		service, name string
		kind          tracepb.Span_SpanKind
	}
	chain := []want{ // each the parent of the next
		{telemetry.ServiceProviderPrefix + httpB.Name, http.MethodGet, tracepb.Span_SPAN_KIND_SERVER},
		{telemetry.ServiceHost, wire.OpHTTPHandleRequest, tracepb.Span_SPAN_KIND_SERVER},
		{telemetry.ServiceHost, wire.OpKVIncrement, tracepb.Span_SPAN_KIND_CLIENT},
		{telemetry.ServiceProviderPrefix + kvB.Name, wire.OpKVIncrement, tracepb.Span_SPAN_KIND_SERVER},
	}
	var found []otlptest.Span
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		found = found[:0]
		var inTrace []string
		for _, s := range recv.Spans() {
			if s.TraceID == traceID {
				inTrace = append(inTrace, s.String())
			}
		}
		for _, w := range chain {
			var match []otlptest.Span
			for _, s := range recv.Spans() {
				if s.TraceID == traceID && s.Service == w.service && s.Name == w.name && s.Kind == w.kind {
					match = append(match, s)
				}
			}
			if len(match) != 1 {
				return fmt.Errorf("%d spans %s %q %v in the trace, want 1; the trace has:\n%s", len(match), w.service, w.name, w.kind, strings.Join(inTrace, "\n"))
			}
			found = append(found, match[0])
		}
		return nil
	})
	parent := clientSpan
	for i, s := range found {
		if s.ParentSpanID != parent {
			t.Errorf("span %v: parent %q, want %q (%v)", s, s.ParentSpanID, parent, chain[i])
		}
		if s.StatusCode == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("span %v failed", s)
		}
		parent = s.SpanID
	}
	if got := found[1].Attributes["latticed.target"]; got != kvc.Key {
		t.Errorf("host span's latticed.target = %q, want the actor %s", got, kvc.Key)
	}
	if got := found[3].Attributes["latticed.origin"]; got != kvc.Key {
		t.Errorf("keyvalue span's latticed.origin = %q, want the actor %s", got, kvc.Key)
	}
	for _, s := range found {
		t.Logf("%v", s)
	}
}

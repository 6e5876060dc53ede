package providermain

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/metrics"
)

// TestMetricsEndpointIsAnnounced: the announced address serves the
// registry, until stopped.
func TestMetricsEndpointIsAnnounced(t *testing.T) {
	m := metrics.NewProvider()
	metrics.NewProviderCounts(m).Invocation("KeyValue.Set", true)
	var out bytes.Buffer
	stop, err := serveMetrics(m, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	var line map[string]string
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("announcement %q: %v", out.String(), err)
	}
	addr := line[metrics.AnnounceKey]
	if !strings.HasPrefix(addr, "127.0.0.1:") || line["level"] != "INFO" {
		t.Fatalf("announcement %q: want level INFO and a loopback address under %s", out.String(), metrics.AnnounceKey)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `latticed_provider_invocations_total{operation="KeyValue.Set",result="ok"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("GET /metrics: no %s in\n%s", want, body)
	}
	stop()
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("the endpoint still answers after stop")
	}
}

package supervisor

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
)

// The counters that alert rules read with increase() exist at 0 on the
// /metrics of a freshly started `latticed up` (and of an actor as soon as it
// runs), before any event: increase() cannot see a series' first sample, so
// a counter that appeared at its first event would never fire
// LatticedRevocationFailed, LatticedProviderRevoked,
// LatticedChildRestarting or LatticedActorInstanceFailures for it.
func TestFreshUpExposesAlertCountersAtZero(t *testing.T) {
	echo := echoActor(t)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	startUp(t, map[string]string{config.EnvMetricsAddr: addr}, "--start-actor", "file://"+echo.Path)

	type series struct {
		name   string
		labels map[string]string
	}
	want := []series{
		{"latticed_revocations_total", map[string]string{"result": metrics.ResultOK}},
		{"latticed_revocations_total", map[string]string{"result": metrics.ResultError}},
	}
	for _, role := range []string{metrics.RoleHost, metrics.RoleProvider} {
		for _, r := range child.ExitReasons {
			want = append(want,
				series{"latticed_child_restarts_total", map[string]string{"role": role, "reason": string(r)}},
				series{"latticed_child_exits_total", map[string]string{"role": role, "reason": string(r)}})
		}
	}
	for _, kind := range []string{metrics.FailureTimeout, metrics.FailureTrap, metrics.FailureExit} {
		want = append(want, series{"latticed_actor_instance_failures_total", map[string]string{"actor": echo.Key, "kind": kind}})
	}

	// The host's series reach the node's scrape once the supervisor merged
	// the host's metrics: poll until every one is there.
	var missing []string
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		fams := scrapeFamilies(t, "http://"+addr+"/metrics")
		missing = missing[:0]
		for _, w := range want {
			v, ok := familyValue(fams, w.name, w.labels)
			switch {
			case !ok:
				missing = append(missing, w.name+labelString(w.labels)+" absent")
			case v != 0:
				t.Fatalf("%s%s = %v on a fresh node, want 0", w.name, labelString(w.labels), v)
			}
		}
		if len(missing) > 0 {
			return errors.New(strings.Join(missing, "; "))
		}
		return nil
	})
}

func labelString(l map[string]string) string {
	var b strings.Builder
	b.WriteString("{")
	for k, v := range l {
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(k + "=" + strconv.Quote(v))
	}
	return b.String() + "}"
}

// scrapeFamilies reads and parses one /metrics.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// familyValue is the sum of the samples of name whose labels include want.
func familyValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	return scrape{fams: fams}.value(name, want)
}

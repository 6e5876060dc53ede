package supervisor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// scrape is one parse of the node's merged /metrics.
type scrape struct {
	text string
	fams map[string]*dto.MetricFamily
}

// scrapeNode reads the supervisor's /metrics, the node's one target.
func (n *node) scrape() (scrape, time.Duration) {
	n.t.Helper()
	start := time.Now()
	resp, err := http.Get("http://" + n.s.health.Addr() + "/metrics")
	if err != nil {
		n.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		n.t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		n.t.Fatalf("parse /metrics: %v", err)
	}
	return scrape{text: string(b), fams: fams}, took
}

// value is the sample of family name whose labels include want (0, false
// when there is none; the sum when several match).
func (s scrape) value(name string, want map[string]string) (float64, bool) {
	f, ok := s.fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

// waitDelta polls /metrics until the series reaches base+delta, then checks
// it is exactly that (a counter overshooting is an error, not a wait).
func (n *node) waitDelta(what, name string, labels map[string]string, base, delta float64) scrape {
	n.t.Helper()
	var s scrape
	var got float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, _ = n.scrape()
		got, _ = s.value(name, labels)
		if got >= base+delta || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything late would overshoot now
	s, _ = n.scrape()
	got, _ = s.value(name, labels)
	if got-base != delta {
		n.t.Errorf("%s: %s%v went from %v to %v: delta %v, want exactly %v", what, name, labels, base, got, got-base, delta)
	}
	return s
}

func promtoolBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LATTICED_PROMTOOL_BIN"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../../.tools/bin/promtool"); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	t.Fatal("promtool not found: run `make tools` (it installs promtool into .tools/bin), or set LATTICED_PROMTOOL_BIN")
	return ""
}

// httpGet fetches url and returns the status code.
func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Issue 8's acceptance test: a node with echo + kvcounter behind the
// built-in httpserver and keyvalue providers, traffic driven through it, and
// the exact counter deltas read from the one merged /metrics endpoint.
func TestNodeMetricsMergedAcrossComponents(t *testing.T) {
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{
		Name: "echo", Caps: []string{wire.ContractHTTPServer},
	})
	kvc := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{
		Name: "kvcounter", Caps: []string{wire.ContractHTTPServer, wire.ContractKeyValue},
	})
	trap := testenv.SignActor(t, t.TempDir(), "./internal/testing/actors/trap", trust.SignActorOptions{Name: "trap"})
	n := startNode(t, nil, "file://"+echo.Path, "file://"+kvc.Path, "file://"+trap.Path)
	const httpRef, kvRef = "builtin:httpserver", "builtin:keyvalue"
	for _, ref := range []string{httpRef, kvRef} {
		n.launch(ref, "default", "")
		n.waitProviderState(ref, "default", child.StateRunning)
	}
	httpB, _ := builtin.Lookup(httpRef)
	kvB, _ := builtin.Lookup(kvRef)
	httpComp, kvComp := providerComponent(httpB.Key(), "default"), providerComponent(kvB.Key(), "default")

	echoPort, kvPort := testenv.FreePort(t), testenv.FreePort(t)
	ctl := lattice.NewCtl("", "default")
	for _, ld := range []lattice.LinkDefinition{
		{ActorID: echo.Key, ProviderID: httpB.Key(), LinkName: "default", ContractID: httpB.Contract, Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(echoPort)}},
		{ActorID: kvc.Key, ProviderID: httpB.Key(), LinkName: "default", ContractID: httpB.Contract, Values: map[string]string{"address": "127.0.0.1:" + strconv.Itoa(kvPort)}},
		{ActorID: kvc.Key, ProviderID: kvB.Key(), LinkName: "default", ContractID: kvB.Contract},
	} {
		if err := ld.Normalize(); err != nil {
			t.Fatal(err)
		}
		var ack lattice.Ack
		n.ctlRequest(ctl.LinkdefsPut(), ld, &ack)
		if !ack.Accepted {
			t.Fatalf("link %s → %s: %s", ld.ActorID, ld.ContractID, ack.Error)
		}
	}
	echoURL, kvURL := "http://127.0.0.1:"+strconv.Itoa(echoPort)+"/", "http://127.0.0.1:"+strconv.Itoa(kvPort)+"/"
	for _, u := range []string{echoURL, kvURL} {
		testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			code, err := httpGet(u)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d", code)
			}
			return err
		})
	}
	// Every component's metrics are merged (the providers announce their
	// endpoints at start, so wait for both).
	var base scrape
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		base, _ = n.scrape()
		for _, c := range []string{componentSupervisor, componentHost, httpComp, kvComp} {
			if v, ok := base.value("latticed_component_up", map[string]string{"component": c}); !ok || v != 1 {
				return fmt.Errorf("latticed_component_up{component=%q} = %v (present %v)", c, v, ok)
			}
		}
		// Wait for the last readiness request's counters to settle.
		if v, _ := base.value("latticed_http_requests_total", map[string]string{"component": httpComp}); v < 2 {
			return fmt.Errorf("httpserver counted %v requests", v)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	base, took := n.scrape()
	t.Logf("scrape of the merged /metrics (supervisor, host, 2 providers): %v, %d bytes, %d families", took, len(base.text), len(base.fams))

	t.Run("actor names for keys", func(t *testing.T) {
		for _, a := range []struct{ key, name string }{{echo.Key, "echo"}, {kvc.Key, "kvcounter"}, {trap.Key, "trap"}} {
			if v, ok := base.value("latticed_actor_info", map[string]string{"component": componentHost, "actor": a.key, "name": a.name}); !ok || v != 1 {
				t.Errorf("latticed_actor_info{actor=%q,name=%q} = %v (present %v), want 1", a.key, a.name, v, ok)
			}
		}
	})

	t.Run("child metrics under their component label", func(t *testing.T) {
		for _, c := range []struct{ family, component string }{
			{"latticed_build_info", componentSupervisor}, {"latticed_build_info", componentHost},
			{"latticed_build_info", httpComp}, {"latticed_build_info", kvComp},
			{"go_goroutines", componentSupervisor}, {"go_goroutines", componentHost}, {"go_goroutines", httpComp}, {"go_goroutines", kvComp},
			{"process_resident_memory_bytes", componentHost}, {"process_resident_memory_bytes", kvComp},
			{"latticed_providers", componentSupervisor},
			{"latticed_nats_connected", componentSupervisor}, {"latticed_nats_connected", componentHost},
			{"latticed_nats_connected", httpComp}, {"latticed_nats_connected", kvComp},
			{"latticed_lattice_cache_entries", componentHost},
		} {
			if _, ok := base.value(c.family, map[string]string{"component": c.component}); !ok {
				t.Errorf("no %s{component=%q} in /metrics", c.family, c.component)
			}
		}
		for _, conn := range []string{"rpc", "ctl"} {
			if v, _ := base.value("latticed_nats_connected", map[string]string{"component": componentHost, "conn": conn}); v != 1 {
				t.Errorf("host's %s connection: latticed_nats_connected = %v, want 1", conn, v)
			}
			if v, _ := base.value("latticed_nats_out_msgs_total", map[string]string{"component": componentHost, "conn": conn}); v == 0 {
				t.Errorf("host's %s connection sent no messages", conn)
			}
		}
		if v, _ := base.value("latticed_lattice_cache_entries", map[string]string{"component": componentHost, "kind": "links"}); v != 3 {
			t.Errorf("lattice cache links = %v, want 3", v)
		}
		// No series escapes the component label.
		for name, f := range base.fams {
			for _, m := range f.Metric {
				has := false
				for _, lp := range m.Label {
					has = has || lp.GetName() == metrics.ComponentLabel
				}
				if !has {
					t.Errorf("%s has a series without a component label", name)
					break
				}
			}
		}
	})

	// Provider processes set their own collector (internal/gcpolicy): with
	// a heap of a few MiB it runs at a raised GOGC; the operator's GOGC is
	// not passed to them, so nothing else raises it.
	t.Run("provider GC policy", func(t *testing.T) {
		for _, c := range []string{httpComp, kvComp} {
			if v, ok := base.value("go_gc_gogc_percent", map[string]string{"component": c}); !ok || v <= 100 {
				t.Errorf("go_gc_gogc_percent{component=%q} = %v (present %v), want above 100", c, v, ok)
			}
		}
	})

	// 50 requests to echo: exactly 50 more ok invocations of echo, 50 more
	// 2xx requests in the httpserver provider.
	echoOK := map[string]string{"component": componentHost, "actor": echo.Key, "operation": wire.OpHTTPHandleRequest, "result": metrics.ResultOK}
	echo0, _ := base.value("latticed_invocations_total", echoOK)
	http2xx := map[string]string{"component": httpComp, "status_class": "2xx"}
	http0, _ := base.value("latticed_http_requests_total", http2xx)
	httpDur0, _ := base.value("latticed_http_request_duration_seconds", map[string]string{"component": httpComp})
	kvInc := map[string]string{"component": kvComp, "operation": wire.OpKVIncrement, "result": metrics.ResultOK}
	kv0, _ := base.value("latticed_kv_operations_total", kvInc)
	kvInv0, _ := base.value("latticed_provider_invocations_total", kvInc)
	for i := 0; i < 50; i++ {
		if code, err := httpGet(echoURL); err != nil || code != http.StatusOK {
			t.Fatalf("request %d to echo: %d %v", i, code, err)
		}
	}
	for i := 0; i < 7; i++ {
		if code, err := httpGet(kvURL); err != nil || code != http.StatusOK {
			t.Fatalf("request %d to kvcounter: %d %v", i, code, err)
		}
	}
	n.waitDelta("50 echo requests", "latticed_invocations_total", echoOK, echo0, 50)
	n.waitDelta("57 HTTP requests", "latticed_http_requests_total", http2xx, http0, 57)
	n.waitDelta("57 HTTP requests timed", "latticed_http_request_duration_seconds", map[string]string{"component": httpComp}, httpDur0, 57)
	n.waitDelta("7 kvcounter requests", "latticed_kv_operations_total", kvInc, kv0, 7)
	traffic := n.waitDelta("7 kvcounter requests", "latticed_provider_invocations_total", kvInc, kvInv0, 7)

	// A rejected invocation, counted by reason: signed by an issuer the
	// lattice does not trust.
	rejected := map[string]string{"component": componentHost, "reason": string(lattice.ReasonUnknownIssuer)}
	rej0, ok := base.value("latticed_invocations_rejected_total", rejected)
	if !ok {
		t.Errorf("no pre-created latticed_invocations_rejected_total%v series", rejected)
	}
	rogue, err := trust.CreateKeyPair(lattice.KindCluster)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	origin := lattice.Entity{PublicKey: "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"}
	if _, err := rpcInvoke(ctx, n, rogue, origin, echo.Key); err == nil || !strings.Contains(err.Error(), string(lattice.ReasonUnknownIssuer)) {
		t.Errorf("invocation signed by an untrusted issuer: err %v, want an %s rejection", err, lattice.ReasonUnknownIssuer)
	}
	n.waitDelta("one rejected invocation", "latticed_invocations_rejected_total", rejected, rej0, 1)

	// An actor instance that exits is counted, by kind (the series appears
	// only then; the dashboard and an alert use it).
	if _, err := rpc.Invoke(ctx, n.nc, n.cluster, n.s.HostID(), origin, lattice.ActorEntity(trap.Key),
		lattice.RPCActor(n.cfg.LatticePrefix, trap.Key), "Trap.Exit", nil); err == nil {
		t.Error("Trap.Exit succeeded")
	}
	failed := n.waitDelta("one instance exit", "latticed_actor_instance_failures_total",
		map[string]string{"component": componentHost, "actor": trap.Key, "kind": "exit"}, 0, 1)

	// A provider restart: the keyvalue provider is killed, the supervisor
	// restarts it, and its new process is merged again.
	restarts := map[string]string{"component": componentSupervisor, "role": roleProvider, "reason": string(child.ExitCrash)}
	cur, _ := n.scrape()
	restart0, _ := cur.value("latticed_child_restarts_total", restarts)
	p := n.instance(kvRef, "default")
	p.mu.Lock()
	pid := p.pid()
	p.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		d, _ := n.provider(kvRef, "default")
		if d.Restarts != 1 || d.State != child.StateRunning {
			return fmt.Errorf("keyvalue provider: %s, %d restarts", d.State, d.Restarts)
		}
		return nil
	})
	n.waitDelta("one provider restart", "latticed_child_restarts_total", restarts, restart0, 1)
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, _ := n.scrape()
		if v, _ := s.value("latticed_component_up", map[string]string{"component": kvComp}); v != 1 {
			return fmt.Errorf("restarted keyvalue provider: component_up %v", v)
		}
		if _, ok := s.value("go_goroutines", map[string]string{"component": kvComp}); !ok {
			return fmt.Errorf("restarted keyvalue provider's metrics not merged")
		}
		return nil
	})

	// A revocation: counted, and the revoked provider is reported as down,
	// not dropped.
	revoked := map[string]string{"component": componentSupervisor, "result": metrics.ResultOK}
	cur, _ = n.scrape()
	rev0, _ := cur.value("latticed_revocations_total", revoked)
	revDur0, _ := cur.value("latticed_revocation_duration_seconds", map[string]string{"component": componentSupervisor})
	if _, err := n.admin.Revoke(ctx, lattice.StopProviderCommand{ProviderRef: kvRef, LinkName: "default"}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	final := n.waitDelta("one revocation", "latticed_revocations_total", revoked, rev0, 1)
	n.waitDelta("one revocation timed", "latticed_revocation_duration_seconds", map[string]string{"component": componentSupervisor}, revDur0, 1)
	if v, ok := final.value("latticed_component_up", map[string]string{"component": kvComp}); !ok || v != 0 {
		t.Errorf("revoked keyvalue provider: latticed_component_up = %v (present %v), want 0", v, ok)
	}
	if _, ok := final.value("go_goroutines", map[string]string{"component": kvComp}); ok {
		t.Errorf("a revoked provider's metrics are still served")
	}
	if v, _ := final.value("latticed_component_up", map[string]string{"component": httpComp}); v != 1 {
		t.Errorf("httpserver provider: latticed_component_up = %v, want 1", v)
	}

	// promtool's lint finds nothing in the merged exposition.
	check := exec.Command(promtoolBin(t), "check", "metrics")
	check.Stdin = strings.NewReader(final.text)
	if out, err := check.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	_, took = n.scrape()
	t.Logf("scrape of the merged /metrics (one provider revoked): %v", took)

	// Every metric the dashboard and the alert rules use is served, seen
	// after traffic, the rejection, the restart and the revocation.
	checkDeployNamesLive(t, traffic, failed, cur, final)

	// The dashboard's per-actor panels, evaluated by promtool on this
	// node's scrape, name the actors by their claims.
	t.Run("dashboard panels show actor names", func(t *testing.T) {
		checkDashboardNamesLive(t, final, map[string]string{echo.Key: "echo", kvc.Key: "kvcounter", trap.Key: "trap"})
	})
}

// rpcInvoke calls Echo.Echo on actor, signed by signer.
func rpcInvoke(ctx context.Context, n *node, signer *trust.KeyPair, origin lattice.Entity, actor string) ([]byte, error) {
	return rpc.Invoke(ctx, n.nc, signer, n.s.HostID(), origin, lattice.ActorEntity(actor),
		lattice.RPCActor(n.cfg.LatticePrefix, actor), "Echo.Echo", []byte("x"))
}

package deploy

import (
	"errors"
	"fmt"
	"github.com/latticed/latticed/internal/testing/testenv"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// liveStopBound is how long a node may take to stop after SIGTERM; the
// systemd unit's TimeoutStopSec must not be shorter.
const liveStopBound = 20 * time.Second

// liveNode is a `latticed up` lattice of one on free loopback ports.
type liveNode struct {
	cmd     *exec.Cmd
	metrics string // http://host:port
	output  *testenv.SyncBuffer
	exited  chan struct{}
	waitErr error
	notify  *net.UnixConn // the NOTIFY_SOCKET given to the node
}

func startNode(t *testing.T) *liveNode {
	t.Helper()
	dir := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notify.Close() })
	n := &liveNode{metrics: "http://" + metricsAddr, output: &testenv.SyncBuffer{}, exited: make(chan struct{}), notify: notify}
	n.cmd = exec.Command(binPath, "up")
	n.cmd.Dir = dir
	n.cmd.Env = cleanEnv(
		"HOME="+dir,
		"LATTICED_DATA_DIR="+filepath.Join(dir, "data"),
		fmt.Sprintf("LATTICED_NATS_LISTEN=127.0.0.1:%d", freePort(t)),
		"LATTICED_METRICS_ADDR="+metricsAddr,
		"NOTIFY_SOCKET="+notifyPath,
	)
	n.cmd.Stdout, n.cmd.Stderr = n.output, n.output
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.waitErr = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		select {
		case <-n.exited:
			return
		default:
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(liveStopBound):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := n.get("/readyz")
		if err == nil && code == http.StatusOK {
			return n
		}
		select {
		case <-n.exited:
			t.Fatalf("latticed up exited before it was ready (%v):\n%s", n.waitErr, n.output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("latticed up not ready after 60s (last /readyz: %d %q %v):\n%s", code, body, err, n.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *liveNode) get(p string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.metrics + p)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (n *liveNode) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// A running node, as the manifests, the unit, the rules and the dashboard
// expect it: /healthz and /readyz answer, /metrics passes promtool's lint
// and holds only metrics the code defines, SIGHUP does not stop it, SIGTERM
// stops it cleanly within the unit's TimeoutStopSec.
func TestLiveNode(t *testing.T) {
	requireLinux(t, "the live node test (unix signals, NOTIFY_SOCKET)")
	pt := tool(t, "promtool", "LATTICED_PROMTOOL_BIN")
	n := startNode(t)

	if code, body, err := n.get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}
	code, scrape, err := n.get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}

	// promtool's lint finds no problems.
	check := exec.Command(pt, "check", "metrics")
	check.Stdin = strings.NewReader(scrape)
	out, err := check.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Every family exposed is one the code defines (so the rules and the
	// dashboard, checked against the code, see what a node serves).
	known := knownSeries(t)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(scrape))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for name := range fams {
		if !known[name] {
			t.Errorf("/metrics exposes %s, which metrics.New() does not define", name)
		}
	}
	for _, must := range []string{"latticed_build_info", "latticed_invocations_rejected_total", "process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := fams[must]; !ok {
			t.Errorf("/metrics lacks %s (used by the dashboard and alerts)", must)
		}
	}

	t.Run("sd_notify", func(t *testing.T) {
		_ = n.notify.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []string
		buf := make([]byte, 4096)
		for {
			k, err := n.notify.Read(buf)
			if err != nil {
				t.Fatalf("no READY=1 on NOTIFY_SOCKET once /readyz said ready (got %q): %v", got, err)
			}
			got = append(got, string(buf[:k]))
			if slicesContainsLine(string(buf[:k]), "READY=1") {
				return
			}
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		// systemctl reload sends SIGHUP (ExecReload); the node must survive it.
		if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if !n.alive() {
			t.Fatalf("SIGHUP stopped latticed up (%v): `systemctl reload latticed` would stop the node:\n%s", n.waitErr, n.output)
		}
		if code, _, err := n.get("/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("/healthz after SIGHUP: %d %v", code, err)
		}
	})

	t.Run("SIGTERM", func(t *testing.T) {
		if !n.alive() {
			n = startNode(t)
		}
		start := time.Now()
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-n.exited:
		case <-time.After(liveStopBound):
			t.Fatalf("latticed up still running %s after SIGTERM:\n%s", liveStopBound, n.output)
		}
		var exit *exec.ExitError
		if errors.As(n.waitErr, &exit) || n.waitErr != nil {
			t.Errorf("latticed up exited with %v after SIGTERM, want status 0 (systemd counts anything else as a failure):\n%s", n.waitErr, n.output)
		}
		t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	})
}

func slicesContainsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

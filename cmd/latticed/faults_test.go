package main

// Issue 25 acceptance at process level: a `latticed up` node (echo behind
// the httpserver provider, the cache stream replicated 3 times) on a
// 3-server cluster of the pinned nats-server, under bounded HTTP load, while
// servers are killed (SIGKILL) and frozen (SIGSTOP). docs/operations.md,
// "When NATS fails", says what an operator sees.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// loadResult is one HTTP request of the load.
type loadResult struct {
	start time.Time
	ok    bool
}

// httpLoad sends one echo request every 20 ms (each bounded by 3 s) until
// ctx ends: bounded load, a few requests in flight at most.
type httpLoad struct {
	mu      sync.Mutex
	results []loadResult
}

func (l *httpLoad) run(ctx context.Context, url string) {
	c := http.Client{Timeout: 3 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			ok := false
			if resp, err := c.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK && len(b) > 0
			}
			l.mu.Lock()
			l.results = append(l.results, loadResult{start, ok})
			l.mu.Unlock()
		}()
	}
}

// recovered is how long after at the first request started after at that
// succeeded took to start, once one has; false while none has.
func (l *httpLoad) recovered(at time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := time.Duration(-1)
	for _, r := range l.results {
		if r.ok && r.start.After(at) && (best < 0 || r.start.Sub(at) < best) {
			best = r.start.Sub(at)
		}
	}
	return best, best >= 0
}

func getBody(url string) (int, string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestNATSClusterFaults(t *testing.T) {
	const prefix = "faults"
	cluster, err := trust.CreateKeyPair(lattice.KindCluster)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	_, manifestPath, httpPort := echoBehindHTTP(t, root)

	// Ports first: the node starts while no server answers. The first
	// entry of the list is a port nobody listens on.
	c := testenv.NewCluster(t, "faults", 3)
	list := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	for _, s := range c {
		list += "," + s.URL()
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(binPath, "up", "--apply", manifestPath)
	cmd.Env = nodeEnviron(map[string]string{
		"HOME": filepath.Join(root, "home"), config.EnvDataDir: filepath.Join(root, "data"),
		config.EnvMetricsAddr: metricsAddr, config.EnvLogLevel: "info", config.EnvLatticePrefix: prefix,
		config.EnvClusterSeed: cluster.Seed(), config.EnvRPCHost: list, config.EnvCtlHost: list,
		config.EnvAllowFileLoad: "true", config.EnvCacheReplicas: "3",
	})
	cmd.Stdout, cmd.Stderr = logs, logs
	exited := runNode(t, cmd, logs)
	alive := func(t *testing.T) {
		t.Helper()
		select {
		case <-exited:
			t.Fatalf("latticed up exited: %v", cmd.ProcessState)
		default:
		}
	}

	t.Run("no server reachable: alive, not ready, says why", func(t *testing.T) {
		testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
			alive(t)
			code, body, err := getBody("http://" + metricsAddr + "/readyz")
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS supervisor connection") {
				return fmt.Errorf("/readyz = %d %q, want 503 naming the supervisor's NATS connection", code, body)
			}
			return nil
		})
		if code, _, err := getBody("http://" + metricsAddr + "/healthz"); err != nil || code != http.StatusOK {
			t.Fatalf("/healthz = %d, %v; want 200", code, err)
		}
	})

	c.Start(t)
	serversUp := time.Now()
	echoURL := fmt.Sprintf("http://127.0.0.1:%d/faults", httpPort)
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		alive(t)
		code, body, err := getBody("http://" + metricsAddr + "/readyz")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("/readyz = %d %q %v", code, body, err)
		}
		if code, body, err = getBody(echoURL); err != nil || code != http.StatusOK {
			return fmt.Errorf("echo = %d %q %v", code, body, err)
		}
		return nil
	})
	t.Logf("the node, started with no server up and the first of its list never up, served %v after the servers started",
		time.Since(serversUp).Round(time.Millisecond))

	stream := lattice.CacheStream(prefix)
	c.Healthy(t, stream, 30*time.Second)
	cacheSubjects := func(t *testing.T) map[string]uint64 {
		t.Helper()
		nc, err := nats.Connect(c[0].URL()+","+c[1].URL()+","+c[2].URL(), nats.Timeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			t.Fatal(err)
		}
		var info *nats.StreamInfo
		testenv.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
			info, err = js.StreamInfo(stream, &nats.StreamInfoRequest{SubjectsFilter: ">"})
			return err
		})
		return info.State.Subjects
	}
	before := cacheSubjects(t)
	if len(before) == 0 {
		t.Fatalf("the cache stream %s holds nothing: the node put no claims or links", stream)
	}

	ctx, stopLoad := context.WithCancel(context.Background())
	load := &httpLoad{}
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.run(ctx, echoURL) }()
	t.Cleanup(func() { stopLoad(); <-loadDone })

	// Each fault: which server, and how. Killed servers are started again,
	// frozen ones thawed, and the cluster is healthy again before the next.
	type fault struct {
		name   string
		target func(t *testing.T) *testenv.ClusterServer
		freeze bool
		bound  time.Duration // asserted; the goals are 1 s (kill) and 5 s (freeze)
	}
	nodeServer := func(t *testing.T) *testenv.ClusterServer { return c.ServerOf(t, prefix+"-rpc") }
	streamLeader := func(t *testing.T) *testenv.ClusterServer {
		_, l := c.Healthy(t, stream, 30*time.Second)
		return c.ByName(l)
	}
	metaLeader := func(t *testing.T) *testenv.ClusterServer {
		m, _ := c.Healthy(t, stream, 30*time.Second)
		return c.ByName(m)
	}
	faults := []fault{
		{"kill the node's server", nodeServer, false, 5 * time.Second},
		{"freeze the node's server", nodeServer, true, 15 * time.Second},
		{"kill the stream leader", streamLeader, false, 5 * time.Second},
		{"freeze the stream leader", streamLeader, true, 15 * time.Second},
		{"kill the meta leader", metaLeader, false, 5 * time.Second},
		{"freeze the meta leader", metaLeader, true, 15 * time.Second},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			alive(t)
			s := f.target(t)
			if s == nil {
				t.Fatal("no target server")
			}
			at := time.Now()
			if f.freeze {
				s.Signal(t, syscall.SIGSTOP)
			} else {
				s.Signal(t, syscall.SIGKILL)
			}
			var outage time.Duration
			testenv.CheckFor(t, 2*f.bound, 50*time.Millisecond, func() error {
				var ok bool
				if outage, ok = load.recovered(at); !ok {
					return fmt.Errorf("no request started after the fault succeeded yet")
				}
				return nil
			})
			t.Logf("%s (%s): first request started after the fault to succeed started %v after it", f.name, s.Name, outage.Round(time.Millisecond))
			if outage > f.bound {
				t.Errorf("%s: requests succeeded again %v after the fault, want within %v", f.name, outage, f.bound)
			}
			if f.freeze {
				// Through the other servers the node is ready again.
				testenv.CheckFor(t, f.bound, 100*time.Millisecond, func() error {
					code, body, err := getBody("http://" + metricsAddr + "/readyz")
					if err != nil || code != http.StatusOK {
						return fmt.Errorf("/readyz = %d %q %v", code, body, err)
					}
					return nil
				})
				s.Signal(t, syscall.SIGCONT)
			} else {
				s.Start(t)
			}
			c.Healthy(t, stream, 30*time.Second)
		})
	}

	t.Run("no cache entry lost", func(t *testing.T) {
		after := cacheSubjects(t)
		for subj := range before {
			if after[subj] == 0 {
				t.Errorf("cache entry %s lost (before: %d subjects, after: %d)", subj, len(before), len(after))
			}
		}
	})
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Logf("errors in the node's log (not failing the test):\n%s", logs.String())
	}
}

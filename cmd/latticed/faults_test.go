package main

// Issue 25 acceptance at process level: a `latticed up` node (echo behind
// the httpserver provider, the cache stream replicated 3 times) on a
// 3-server cluster of the pinned nats-server, under bounded HTTP load, while
// servers are killed (SIGKILL) and frozen (SIGSTOP). docs/operations.md,
// "When NATS fails", says what an operator sees.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/config"
	"github.com/latticed/latticed/internal/testenv"
	"github.com/latticed/latticed/lattice"
)

// clusterServer is one nats-server process of the test cluster.
type clusterServer struct {
	name                     string
	port, routePort, monPort int
	dir                      string
	routes                   string
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

func (s *clusterServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// start (re)starts the server on its ports and store and waits until it
// accepts clients.
func (s *clusterServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(testenv.NATSServerBinary(t), "-n", s.name, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-m", strconv.Itoa(s.monPort), "-js", "-sd", s.dir, "--cluster_name", "faults",
		"--cluster", "nats://127.0.0.1:"+strconv.Itoa(s.routePort), "--routes", s.routes)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start nats-server %s: %v", s.name, err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.exited)
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.monPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// signal sends sig; SIGKILL also reaps the process.
func (s *clusterServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s %s: %v", sig, s.name, err)
	}
	if sig == syscall.SIGKILL {
		<-s.exited
	}
}

// stop ends the process at test end (SIGCONT first: it may be frozen).
func (s *clusterServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// monitor decodes one of the server's monitoring endpoints.
func (s *clusterServer) monitor(path string, v any) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.monPort, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// jszInfo is the part of /jsz?accounts=true&streams=true the test reads.
type jszInfo struct {
	Meta *struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name    string `json:"name"`
			Cluster *struct {
				Leader   string `json:"leader"`
				Replicas []struct {
					Current bool `json:"current"`
				} `json:"replicas"`
			} `json:"cluster"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

type natsCluster []*clusterServer

func (c natsCluster) byName(name string) *clusterServer {
	for _, s := range c {
		if s.name == name {
			return s
		}
	}
	return nil
}

// healthy waits until the cluster has a meta leader and stream's leader with
// every replica current, and returns both leaders' names.
func (c natsCluster) healthy(t *testing.T, stream string, within time.Duration) (meta, streamLeader string) {
	t.Helper()
	testenv.CheckFor(t, within, 100*time.Millisecond, func() error {
		for _, s := range c {
			var j jszInfo
			if err := s.monitor("/jsz?accounts=true&streams=true", &j); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if j.Meta == nil || j.Meta.Leader == "" {
				return fmt.Errorf("%s: no meta leader", s.name)
			}
			meta = j.Meta.Leader
			for _, a := range j.Accounts {
				for _, st := range a.Streams {
					if st.Name != stream || st.Cluster == nil || st.Cluster.Leader == "" {
						continue
					}
					if st.Cluster.Leader != s.name {
						continue // the leader's view says whether followers are current
					}
					if len(st.Cluster.Replicas) != 2 {
						return fmt.Errorf("%s: stream %s has %d followers, want 2", s.name, stream, len(st.Cluster.Replicas))
					}
					for _, r := range st.Cluster.Replicas {
						if !r.Current {
							return fmt.Errorf("stream %s: a replica is not current", stream)
						}
					}
					streamLeader = st.Cluster.Leader
				}
			}
		}
		if streamLeader == "" {
			return fmt.Errorf("stream %s has no leader yet", stream)
		}
		return nil
	})
	return meta, streamLeader
}

// serverOf is the server the named client connection is on.
func (c natsCluster) serverOf(t *testing.T, connName string) *clusterServer {
	t.Helper()
	var found *clusterServer
	testenv.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		for _, s := range c {
			var connz struct {
				Conns []struct {
					Name string `json:"name"`
				} `json:"connections"`
			}
			if err := s.monitor("/connz?limit=1024", &connz); err != nil {
				continue // a frozen or dead server
			}
			for _, cn := range connz.Conns {
				if cn.Name == connName {
					found = s
					return nil
				}
			}
		}
		return fmt.Errorf("no server has connection %q", connName)
	})
	return found
}

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
	cluster, err := lattice.CreateKeyPair(lattice.KindCluster)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	echo := testenv.SignActor(t, root, "./actor/examples/echo", lattice.SignActorOptions{Name: "echo", Caps: []string{lattice.ContractHTTPServer}})
	httpPort := testenv.FreePort(t)
	manifestPath := filepath.Join(root, "faults.yaml")
	if err := os.WriteFile(manifestPath, []byte(fmt.Sprintf(`actors:
  - ref: %s
links:
  - actor: %s
    provider: builtin:httpserver
    contract: wasmcloud:httpserver
    values: {port: "%d"}
providers:
  - ref: builtin:httpserver
`, echo.Path, echo.Path, httpPort)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Ports first: the node starts while no server answers. The first
	// entry of the list is a port nobody listens on.
	var c natsCluster = make(natsCluster, 3)
	var routes []string
	for i := range c {
		c[i] = &clusterServer{name: fmt.Sprintf("n%d", i+1), port: testenv.FreePort(t), routePort: testenv.FreePort(t),
			monPort: testenv.FreePort(t), dir: t.TempDir()}
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(c[i].routePort))
	}
	for _, s := range c {
		s.routes = strings.Join(routes, ",")
		t.Cleanup(s.stop)
	}
	list := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	for _, s := range c {
		list += "," + s.url()
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(binPath, "up", "--apply", manifestPath)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "XDG_DATA_HOME" && !strings.HasPrefix(k, "LATTICED_") && !strings.HasPrefix(k, "WASMCLOUD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range map[string]string{
		"HOME": filepath.Join(root, "home"), config.EnvDataDir: filepath.Join(root, "data"),
		config.EnvMetricsAddr: metricsAddr, config.EnvLogLevel: "info", config.EnvLatticePrefix: prefix,
		config.EnvClusterSeed: cluster.Seed(), config.EnvRPCHost: list, config.EnvCtlHost: list,
		config.EnvAllowFileLoad: "true", config.EnvCacheReplicas: "3",
	} {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("latticed up did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("latticed up logs:\n%s", logs.String())
		}
	})
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

	var wg sync.WaitGroup
	for _, s := range c {
		wg.Add(1)
		go func() { defer wg.Done(); s.start(t) }()
	}
	wg.Wait()
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
	c.healthy(t, stream, 30*time.Second)
	cacheSubjects := func(t *testing.T) map[string]uint64 {
		t.Helper()
		nc, err := nats.Connect(c[0].url()+","+c[1].url()+","+c[2].url(), nats.Timeout(2*time.Second))
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
		target func(t *testing.T) *clusterServer
		freeze bool
		bound  time.Duration // asserted; the goals are 1 s (kill) and 5 s (freeze)
	}
	nodeServer := func(t *testing.T) *clusterServer { return c.serverOf(t, prefix+"-rpc") }
	streamLeader := func(t *testing.T) *clusterServer { _, l := c.healthy(t, stream, 30*time.Second); return c.byName(l) }
	metaLeader := func(t *testing.T) *clusterServer { m, _ := c.healthy(t, stream, 30*time.Second); return c.byName(m) }
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
				s.signal(t, syscall.SIGSTOP)
			} else {
				s.signal(t, syscall.SIGKILL)
			}
			var outage time.Duration
			testenv.CheckFor(t, 2*f.bound, 50*time.Millisecond, func() error {
				var ok bool
				if outage, ok = load.recovered(at); !ok {
					return fmt.Errorf("no request started after the fault succeeded yet")
				}
				return nil
			})
			t.Logf("%s (%s): first request started after the fault to succeed started %v after it", f.name, s.name, outage.Round(time.Millisecond))
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
				s.signal(t, syscall.SIGCONT)
			} else {
				s.start(t)
			}
			c.healthy(t, stream, 30*time.Second)
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

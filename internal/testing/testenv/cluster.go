package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ClusterServer is one nats-server process of a Cluster.
type ClusterServer struct {
	// Name is the server's name (what JetStream reports as a leader).
	Name                     string
	port, routePort, monPort int
	dir, routes, cluster     string
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

// URL is the server's client URL.
func (s *ClusterServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Start (re)starts the server on its ports and store and waits until its
// monitoring endpoint answers.
func (s *ClusterServer) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(NATSServerBinary(t), "-n", s.Name, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-m", strconv.Itoa(s.monPort), "-js", "-sd", s.dir, "--cluster_name", s.cluster,
		"--cluster", "nats://127.0.0.1:"+strconv.Itoa(s.routePort), "--routes", s.routes)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start nats-server %s: %v", s.Name, err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.exited)
	CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.monPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// Signal sends sig to the server; SIGKILL also reaps the process.
func (s *ClusterServer) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s %s: %v", sig, s.Name, err)
	}
	if sig == syscall.SIGKILL {
		<-s.exited
	}
}

// Stop ends the process (SIGCONT first: it may be frozen); idempotent.
func (s *ClusterServer) Stop() {
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

// Monitor decodes one of the server's monitoring endpoints (/jsz, /connz…).
func (s *ClusterServer) Monitor(path string, v any) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.monPort, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Cluster is real nats-server processes (the pinned binary) routed into one
// JetStream cluster on loopback, for fault tests: each server can be
// killed, frozen and restarted on its own ports and store.
type Cluster []*ClusterServer

// NewCluster allocates n servers' ports and stores without starting them
// (a test may start its node first, to see it wait for NATS); each is
// stopped when the test ends.
func NewCluster(t testing.TB, name string, n int) Cluster {
	t.Helper()
	c := make(Cluster, n)
	var routes []string
	for i := range c {
		c[i] = &ClusterServer{Name: fmt.Sprintf("%s%d", name, i+1), port: freePort(t), routePort: freePort(t),
			monPort: freePort(t), dir: t.TempDir(), cluster: name}
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(c[i].routePort))
	}
	for _, s := range c {
		s.routes = strings.Join(routes, ",")
		t.Cleanup(s.Stop)
	}
	return c
}

// Start starts every server, concurrently (a route needs its peers up).
func (c Cluster) Start(t testing.TB) {
	t.Helper()
	done := make(chan struct{}, len(c))
	for _, s := range c {
		go func(s *ClusterServer) { defer func() { done <- struct{}{} }(); s.Start(t) }(s)
	}
	for range c {
		<-done
	}
}

// URLs is the comma-separated client URL list of every server.
func (c Cluster) URLs() string {
	urls := make([]string, len(c))
	for i, s := range c {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// ByName is the server called name, or nil.
func (c Cluster) ByName(name string) *ClusterServer {
	for _, s := range c {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// jszInfo is the part of /jsz?accounts=true&streams=true Healthy reads.
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

// Healthy waits until the cluster has a meta leader and stream a leader
// with every other server a current replica, and returns both leaders'
// names.
func (c Cluster) Healthy(t testing.TB, stream string, within time.Duration) (meta, streamLeader string) {
	t.Helper()
	CheckFor(t, within, 100*time.Millisecond, func() error {
		streamLeader = ""
		for _, s := range c {
			var j jszInfo
			if err := s.Monitor("/jsz?accounts=true&streams=true", &j); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			if j.Meta == nil || j.Meta.Leader == "" {
				return fmt.Errorf("%s: no meta leader", s.Name)
			}
			meta = j.Meta.Leader
			for _, a := range j.Accounts {
				for _, st := range a.Streams {
					// Only the leader's view says whether followers are current.
					if st.Name != stream || st.Cluster == nil || st.Cluster.Leader != s.Name {
						continue
					}
					if len(st.Cluster.Replicas) != len(c)-1 {
						return fmt.Errorf("%s: stream %s has %d followers, want %d", s.Name, stream, len(st.Cluster.Replicas), len(c)-1)
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

// ServerOf is the server the client connection named connName is on.
func (c Cluster) ServerOf(t testing.TB, connName string) *ClusterServer {
	t.Helper()
	var found *ClusterServer
	CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		for _, s := range c {
			var connz struct {
				Conns []struct {
					Name string `json:"name"`
				} `json:"connections"`
			}
			if err := s.Monitor("/connz?limit=1024", &connz); err != nil {
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

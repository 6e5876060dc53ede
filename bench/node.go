package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/supervisor"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// node is a real lattice node run in this process: supervisor.New + Run
// with embedded NATS, the host and providers as child processes of the
// latticed binary the bench built.
type node struct {
	sup     *supervisor.Supervisor
	cfg     *config.Config
	cluster *trust.KeyPair
	nc      *nats.Conn // admin credentials: the operator of the lattice of one
	ctl     *ctlclient.Client
	stop    func()
}

func startNode(bin, dataDir string) (*node, error) {
	cluster, _, err := datadir.LoadOrCreateKey(datadir.Path(dataDir, datadir.ClusterSeedFile), lattice.KindCluster)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{
		config.EnvDataDir: dataDir, config.EnvNATSListen: "127.0.0.1:" + strconv.Itoa(freePort()),
		config.EnvMetricsAddr: "127.0.0.1:" + strconv.Itoa(freePort()), config.EnvAllowFileLoad: "true",
		config.EnvLogLevel: "warn", config.EnvHealthInterval: "2s", config.EnvStopGrace: "5s",
	}
	environ := os.Environ()
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	cfg, _, err := config.LoadEnviron(nil, environ)
	if err != nil {
		return nil, err
	}
	hostKey, err := trust.CreateKeyPair(lattice.KindServer)
	if err != nil {
		return nil, err
	}
	s, err := supervisor.New(cfg.Supervisor(), supervisor.Options{
		Executable: bin, Environ: environ, ClusterKey: cluster, HostKey: hostKey,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	}
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("supervisor ended before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		stop()
		return nil, fmt.Errorf("supervisor not ready in 2m")
	}
	nc, err := nats.Connect(s.NATSURL(), adminCreds(dataDir))
	if err != nil {
		stop()
		return nil, err
	}
	n := &node{sup: s, cfg: cfg, cluster: cluster, nc: nc, ctl: ctlclient.New(nc, cfg.CtlTopicPrefix, cfg.LatticePrefix)}
	n.stop = func() { nc.Close(); stop() }
	return n, nil
}

// hostRSS is the resident set of the host child process, in KiB.
func (n *node) hostRSS() (int64, error) {
	pid := n.sup.Status().Host.PID
	if pid == 0 {
		return 0, fmt.Errorf("host child has no pid")
	}
	return rssKiB(pid)
}

// rssKiB reads VmRSS from /proc/<pid>/status.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// waitProvider polls the supervisor until ref/link is in state.
func (n *node) waitProvider(ref, link, state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "not listed"
	for time.Now().Before(deadline) {
		for _, d := range n.sup.Providers() {
			if d.ImageRef == ref && d.LinkName == link {
				if d.State == state {
					return nil
				}
				last = d.State + " " + d.ExitReason
			}
		}
		time.Sleep(5 * time.Millisecond) // polling a starting process
	}
	return fmt.Errorf("provider %s/%s: %s, want %s", ref, link, last, state)
}

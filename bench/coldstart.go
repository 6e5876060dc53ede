package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// benchColdStart times `latticed up --start-actor echo` from process start to
// the first successful echo reply, first with an empty data dir (no compiled
// code), then again with the data dir the first run left (warm cache).
func benchColdStart(bin, tmp, echoPath string, rep *Report) error {
	dataDir := filepath.Join(tmp, "coldstart-data")
	var first time.Duration
	for i, name := range []string{"empty compilation cache", "warm compilation cache"} {
		// The first run stays up until the compiler has cached the echo
		// actor, or the second would find no warm cache to start from.
		d, rss, err := timeToFirstReply(bin, dataDir, echoPath, i == 0)
		if err != nil {
			return fmt.Errorf("cold start (%s): %w", name, err)
		}
		row := Row{Name: "cold start: latticed up → first echo reply, " + name, Value: ms(d), Unit: "ms"}
		if i == 0 {
			first = d
		} else {
			row.Ratio, row.RatioTo = float64(first)/float64(d), "empty cache (speed-up)"
		}
		rep.Rows = append(rep.Rows, row)
		if i == 1 {
			rep.Rows = append(rep.Rows, Row{Name: "memory: supervisor process RSS (latticed up, embedded NATS, 1s after first reply)", Value: float64(rss) / 1024, Unit: "MiB"})
		}
	}
	return nil
}

// timeToFirstReply also returns the supervisor process's VmRSS (KiB) one
// second after the first reply: the `latticed up` process itself (embedded
// NATS, admin socket, metrics), its host child excluded.
func timeToFirstReply(bin, dataDir, echoPath string, waitCached bool) (time.Duration, int64, error) {
	natsPort, metricsPort := freePort(), freePort()
	cmd := exec.Command(bin, "up", "--start-actor", "file://"+echoPath)
	cmd.Env = append(os.Environ(),
		config.EnvDataDir+"="+dataDir, config.EnvAllowFileLoad+"=true",
		config.EnvNATSListen+"=127.0.0.1:"+strconv.Itoa(natsPort),
		config.EnvMetricsAddr+"=127.0.0.1:"+strconv.Itoa(metricsPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	actorKey, err := actorKeyOf(echoPath)
	if err != nil {
		return 0, 0, err
	}
	deadline := start.Add(60 * time.Second)
	var nc *nats.Conn
	for time.Now().Before(deadline) {
		if nc == nil {
			nc, _ = nats.Connect("nats://127.0.0.1:"+strconv.Itoa(natsPort), nats.Timeout(200*time.Millisecond), adminCreds(dataDir))
		}
		if nc != nil {
			cluster, cerr := readCluster(dataDir)
			if cerr == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				caller, _ := trust.CreateKeyPair(lattice.KindModule)
				_, err = rpc.Invoke(ctx, nc, cluster, caller.PublicKey(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(actorKey),
					lattice.RPCActor(lattice.DefaultLatticePrefix, actorKey), "Echo.Echo", []byte("up"))
				cancel()
				if err == nil {
					d := time.Since(start)
					nc.Close()
					if waitCached {
						if err := waitCompiled("127.0.0.1:"+strconv.Itoa(metricsPort), 1); err != nil {
							return 0, 0, err
						}
					}
					time.Sleep(time.Second)
					rss, err := rssKiB(cmd.Process.Pid)
					return d, rss, err
				}
			}
		}
		time.Sleep(5 * time.Millisecond) // polling a starting process
	}
	if nc != nil {
		nc.Close()
	}
	return 0, 0, fmt.Errorf("no echo reply within 60s (last error: %v)", err)
}

// adminCreds authenticates as the operator of the lattice of one when the
// supervisor wrote admin credentials (operator mode); else connects plainly.
func adminCreds(dataDir string) nats.Option {
	p := datadir.Path(dataDir, datadir.AdminCredsFile)
	if _, err := os.Stat(p); err == nil {
		return nats.UserCredentials(p)
	}
	return func(*nats.Options) error { return nil }
}

func readCluster(dataDir string) (*trust.KeyPair, error) {
	b, err := os.ReadFile(datadir.Path(dataDir, datadir.ClusterSeedFile))
	if err != nil {
		return nil, err
	}
	return trust.ParseSeedOfKind(string(b), lattice.KindCluster)
}

func actorKeyOf(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	c, err := trust.ReadActorClaims(b)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

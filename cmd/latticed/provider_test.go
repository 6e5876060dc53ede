package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestProviderHelpExplainsHostData(t *testing.T) {
	e := newCLIEnv(t)
	r := e.run("provider", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "started by a host") || !strings.Contains(r.stdout, "HostData") {
		t.Fatalf("%d %s", r.code, r.stdout)
	}
	for _, name := range []string{"httpserver", "keyvalue"} {
		b, _ := builtin.Lookup(name)
		r := e.run("provider", name, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, b.Contract) || !strings.Contains(r.stdout, b.Key()) || !strings.Contains(r.stdout, "never by hand") {
			t.Fatalf("%s: %d %s", name, r.code, r.stdout)
		}
	}
	if r := e.run("provider", "httpserver", "--help"); !strings.Contains(r.stdout, "127.0.0.1:8000") {
		t.Fatalf("httpserver help lacks the address rules: %s", r.stdout)
	}
}

func TestProviderWithoutHostDataIsAUsageError(t *testing.T) {
	e := newCLIEnv(t)
	e.stdin = "this is not host data\n"
	r := e.run("provider", "keyvalue")
	if r.code != exitUsage || !strings.Contains(r.stderr, "invalid host data") {
		t.Fatalf("%d %q", r.code, r.stderr)
	}
}

// A provider started as a host starts it stops with status 0 on the
// host's shutdown message and on SIGTERM.
func TestProviderExitsZeroOnShutdownAndSIGTERM(t *testing.T) {
	srv := testenv.NATS(t)
	nc := testenv.Connect(t, srv)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	host, _ := trust.CreateKeyPair(lattice.KindServer)
	for _, c := range []struct{ name, stop string }{{"keyvalue", "shutdown"}, {"httpserver", "sigterm"}} {
		t.Run(c.name+" "+c.stop, func(t *testing.T) {
			b, _ := builtin.Lookup(c.name)
			hd := lattice.HostData{HostID: host.PublicKey(), LatticeRPCPrefix: "clitest", LinkName: "default",
				LatticeRPCURL: strings.TrimPrefix(srv.ClientURL(), "nats://"), ProviderKey: b.Key(),
				ClusterIssuers: []string{cluster.PublicKey()}, InvocationSeed: cluster.Seed()}
			line, err := lattice.EncodeHostData(&hd)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binPath, "provider", c.name)
			cmd.Stdin = bytes.NewReader(line)
			var out lockedBuf
			cmd.Stderr = &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				select {
				case <-done:
				default:
					_ = cmd.Process.Kill()
					<-done
				}
			}()
			testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
				select {
				case err := <-done:
					t.Fatalf("exited early: %v\n%s", err, out.String())
				default:
				}
				if !strings.Contains(out.String(), "provider ready") {
					return errors.New("provider not ready")
				}
				return nil
			})
			if c.stop == "shutdown" {
				body, _ := json.Marshal(map[string]string{"host_id": host.PublicKey()})
				if m, err := nc.Request(lattice.RPCShutdown("clitest", b.Key(), "default"), body, 5*time.Second); err != nil || string(m.Data) != "shutting down" {
					t.Fatalf("shutdown: %v", err)
				}
			} else if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				done <- err // for the deferred check
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, out.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("provider did not exit:\n%s", out.String())
			}
			if strings.Contains(out.String(), cluster.Seed()) {
				t.Fatal("the seed reached the log")
			}
		})
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

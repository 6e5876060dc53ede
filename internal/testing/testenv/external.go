package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ExternalServer is a real nats-server process on loopback.
type ExternalServer struct {
	URL  string
	Port int
	bin  string
	dir  string
	cmd  *exec.Cmd
	t    testing.TB
}

// NATSServerBinary finds the pinned nats-server: $LATTICED_NATS_SERVER_BIN,
// else .tools/bin/nats-server in the repository (installed by `make tools`).
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LATTICED_NATS_SERVER_BIN"); p != "" {
		return p
	}
	p := filepath.Join(ModuleRoot(t), ".tools", "bin", "nats-server")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("nats-server binary not found at %s: run `make tools` (make test does) or set LATTICED_NATS_SERVER_BIN", p)
	}
	return p
}

// ExternalNATS starts the real nats-server binary with JetStream on a free
// loopback port; it is stopped at test end.
func ExternalNATS(t testing.TB) *ExternalServer {
	t.Helper()
	s := &ExternalServer{bin: NATSServerBinary(t), dir: t.TempDir(), Port: freePort(t), t: t}
	s.URL = "nats://127.0.0.1:" + strconv.Itoa(s.Port)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the process on the same port and store.
func (s *ExternalServer) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-js", "-sd", s.dir, "-m", "0")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	CheckFor(s.t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// Hang stops the server's process (SIGSTOP) until resume is called or the
// test ends: its connections stay open and nothing answers on them, as
// with a server that hangs.
func (s *ExternalServer) Hang() (resume func()) {
	s.t.Helper()
	proc := s.cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("hang nats-server: %v", err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { _ = proc.Signal(syscall.SIGCONT) }) }
	s.t.Cleanup(resume)
	return resume
}

// Stop ends the process (idempotent).
func (s *ExternalServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// freePort picks a port below Linux's ephemeral range (32768 and up by
// default): a port the kernel hands out for :0 is from that range, where
// every outgoing connection of every test process also takes its local
// port, so between our check and a server's bind a client could take it
// ("address already in use", seen in make test). Below it, only another
// test's pick can collide, and picks are random.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { t.Helper(); return freePort(t) }

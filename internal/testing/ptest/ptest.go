// Package ptest runs built-in providers as real processes for tests: it
// builds the latticed binary once per test binary and starts
// `latticed provider <name>` with HostData on its stdin.
package ptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/latticed once and returns its path, or returns
// $LATTICED_TEST_BIN when set (a binary built beforehand, e.g. by CI).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LATTICED_TEST_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "latticed-provider-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "latticed")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/latticed")
		cmd.Dir = testenv.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/latticed: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// HostData is what a host would hand the built-in provider b: the test's
// cluster key signs and is the only trusted issuer.
func HostData(natsURL, prefix, hostID string, cluster *trust.KeyPair, b builtin.Provider, links ...lattice.LinkDefinition) lattice.HostData {
	return lattice.HostData{
		HostID: hostID, LatticeRPCPrefix: prefix, LinkName: "default", LatticeRPCURL: strings.TrimPrefix(natsURL, "nats://"),
		InstanceID: "test-" + b.Name, ProviderKey: b.Key(), LinkDefinitions: links, DefaultRPCTimeoutMS: 5000,
		ClusterIssuers: []string{cluster.PublicKey()}, InvocationSeed: cluster.Seed(), LogLevel: "debug",
	}
}

// Process is a running `latticed provider <name>`.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr *testenv.SyncBuffer
	done   chan struct{}
	err    error
}

// Start runs `latticed provider name` with hd on stdin and waits until it
// reports ready. The process is killed at test end if still running.
func Start(t testing.TB, name string, hd lattice.HostData) *Process {
	t.Helper()
	line, err := lattice.EncodeHostData(&hd)
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, stderr: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), "provider", name)
	p.cmd.Stdin = bytes.NewReader(line)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("provider %s output:\n%s", name, p.stderr.String())
		}
	})
	testenv.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		select {
		case <-p.done:
			t.Fatalf("provider %s exited early (%v):\n%s", name, p.err, p.stderr.String())
		default:
		}
		if !strings.Contains(p.stderr.String(), `msg="provider ready"`) {
			return errors.New("provider not ready")
		}
		return nil
	})
	return p
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit code.
func (p *Process) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("provider did not exit within %s:\n%s", timeout, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and expects exit status 0.
func (p *Process) Stop() {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(20 * time.Second); code != 0 {
		p.t.Fatalf("provider exited %d after SIGTERM:\n%s", code, p.stderr.String())
	}
}

// Output is what the process wrote so far (stdout and stderr).
func (p *Process) Output() string { return p.stderr.String() }

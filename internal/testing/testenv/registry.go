package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary finds the pinned CNCF distribution registry:
// $LATTICED_OCI_REGISTRY_BIN, else .tools/bin/registry (make tools).
func RegistryBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LATTICED_OCI_REGISTRY_BIN"); p != "" {
		return p
	}
	p := filepath.Join(ModuleRoot(t), ".tools", "bin", "registry")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("OCI registry binary not found at %s: run `make tools` (make test does) or set LATTICED_OCI_REGISTRY_BIN", p)
	}
	return p
}

// RegistryLogin is a user an auth-enabled test registry accepts.
type RegistryLogin struct{ Username, Password string }

// Registry starts a real OCI registry (CNCF distribution) over plain HTTP
// on a free loopback port, storing in a temp dir; it is stopped at test
// end. With login set it requires that user (htpasswd basic auth). It
// returns the registry's host:port.
func Registry(t testing.TB, login *RegistryLogin) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
`, filepath.Join(dir, "data"), addr, hex.EncodeToString(secret))
	if login != nil {
		hash, err := bcrypt.GenerateFromPassword([]byte(login.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(login.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: latticed-test\n    path: %s\n", htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &SyncBuffer{}
	cmd := exec.Command(RegistryBinary(t), "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("registry log:\n%s", logs.String())
		}
	})
	CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-done:
			t.Fatalf("registry exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
	return addr
}

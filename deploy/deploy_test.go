package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/config"
)

var (
	repoRoot string // the module root (where go.mod is)
	binPath  string // latticed built once by TestMain
)

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return 0, fmt.Errorf("deploy tests run from deploy/: %w", err)
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "latticed-deploy-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "latticed")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/latticed")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build ./cmd/latticed: %v\n%s", err, out)
	}
	return m.Run(), nil
}

// path is a file of the repository, given with slashes from its root.
func path(rel string) string { return filepath.Join(repoRoot, filepath.FromSlash(rel)) }

func readFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(path(rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tool finds a pinned external tool: $envVar, else .tools/bin/name (where
// `make tools` installs it), else $PATH. A missing tool fails the test: the
// file it checks would otherwise go unchecked.
func tool(t testing.TB, name, envVar string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	if p := path(".tools/bin/" + name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found: run `make tools` (it installs %s into .tools/bin), or set %s to its path", name, name, envVar)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runTool runs a command with a deadline and returns its combined output.
func runTool(t testing.TB, timeout time.Duration, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("%s %s: timed out after %s", filepath.Base(name), strings.Join(args, " "), timeout)
	}
	return out.String(), err
}

// settingNames is every environment variable latticed reads, from
// config.EnvHelp() (the one table of settings); names like
// WASMCLOUD_LABEL_{name} are prefixes.
type settingNames struct {
	exact    map[string]bool
	prefixes []string
}

var envNameRe = regexp.MustCompile(`\b(?:WASMCLOUD|LATTICED)_[A-Z0-9_]*[A-Z0-9]\b`)

func parseEnvTable(table string) settingNames {
	s := settingNames{exact: map[string]bool{}}
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "VARIABLE" {
			continue
		}
		name := f[0]
		if !strings.HasPrefix(name, "WASMCLOUD_") && !strings.HasPrefix(name, "LATTICED_") {
			continue
		}
		if i := strings.Index(name, "{"); i >= 0 {
			s.prefixes = append(s.prefixes, name[:i])
			continue
		}
		s.exact[name] = true
	}
	return s
}

func configSettings(t testing.TB) settingNames {
	t.Helper()
	s := parseEnvTable(config.EnvHelp())
	if !s.exact[config.EnvDataDir] || !s.exact[config.EnvMetricsAddr] || len(s.prefixes) == 0 {
		t.Fatalf("could not parse config.EnvHelp() (no %s, %s or label prefix):\n%s", config.EnvDataDir, config.EnvMetricsAddr, config.EnvHelp())
	}
	return s
}

// settingDefault is the default config.EnvHelp() shows for name ("" when
// the setting does not exist).
func settingDefault(t testing.TB, name string) string {
	t.Helper()
	for _, line := range strings.Split(config.EnvHelp(), "\n") {
		if f := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), 3); len(f) == 3 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

func (s settingNames) has(name string) bool {
	if s.exact[name] {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// checkSettingNames reports every name that is not a latticed setting.
func checkSettingNames(t testing.TB, where string, names []string) {
	t.Helper()
	s := configSettings(t)
	for _, n := range names {
		if !s.has(n) {
			t.Errorf("%s: %s is not a setting latticed reads (see `latticed up --help`)", where, n)
		}
	}
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// cleanEnv is the test process's environment without latticed settings, so
// a developer's WASMCLOUD_* or LATTICED_* variables cannot leak into a check.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "WASMCLOUD_") || strings.HasPrefix(name, "LATTICED_") || name == "NOTIFY_SOCKET" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func requireLinux(t testing.TB, what string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("%s needs Linux", what)
	}
}

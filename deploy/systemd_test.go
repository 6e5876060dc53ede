package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitFile is a systemd unit: section -> key -> values (keys may repeat).
type unitFile map[string]map[string][]string

func parseUnit(t testing.TB, rel string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	for i, line := range strings.Split(readFile(t, rel), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", rel, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdLatticedUnit(t *testing.T) {
	const rel = "deploy/systemd/latticed.service"
	u := parseUnit(t, rel)
	want := map[string]string{
		"Type":                    "notify",
		"ExecStart":               "/usr/local/bin/latticed up",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"Restart":                 "on-failure",
		"DynamicUser":             "yes",
		"StateDirectory":          "latticed",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"NoNewPrivileges":         "yes",
		"PrivateTmp":              "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"EnvironmentFile":         "-/etc/latticed/latticed.env",
		"CapabilityBoundingSet":   "",
	}
	for k, v := range want {
		if got := u.last("Service", k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if _, ok := u["Service"]["MemoryDenyWriteExecute"]; ok && u.last("Service", "MemoryDenyWriteExecute") != "no" {
		t.Error("MemoryDenyWriteExecute would stop wazero from compiling actors to native code")
	}

	// Every Environment= assignment is a latticed setting; the data dir is the state directory.
	env := map[string]string{}
	for _, line := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			env[k] = v
		}
	}
	checkSettingNames(t, rel+" Environment=", sortedKeys(env))
	if env["LATTICED_DATA_DIR"] != "%S/latticed" {
		t.Errorf("Environment LATTICED_DATA_DIR=%q, want %%S/latticed (the StateDirectory)", env["LATTICED_DATA_DIR"])
	}

	// The stop timeout covers the Kubernetes grace period the manifests use,
	// so a node gets the same time to shut down everywhere.
	stop, err := time.ParseDuration(u.last("Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", u.last("Service", "TimeoutStopSec"), err)
	}
	grace := regexp.MustCompile(`terminationGracePeriodSeconds:\s*(\d+)`).FindStringSubmatch(readFile(t, "deploy/kubernetes/base/deployment.yaml"))
	if grace == nil {
		t.Fatal("deploy/kubernetes/base/deployment.yaml has no terminationGracePeriodSeconds")
	}
	if g, _ := strconv.Atoi(grace[1]); stop < time.Duration(g)*time.Second {
		t.Errorf("TimeoutStopSec=%s is shorter than the pods' terminationGracePeriodSeconds %ss", stop, grace[1])
	}
	// ... and outlasts the node's own wait for its children.
	if grace := settingDefault(t, "LATTICED_STOP_GRACE"); grace != "" {
		if g, err := time.ParseDuration(grace); err == nil && stop < g+5*time.Second {
			t.Errorf("TimeoutStopSec=%s leaves less than 5s beyond LATTICED_STOP_GRACE's default %s", stop, g)
		}
	}
	if stop < liveStopBound {
		t.Errorf("TimeoutStopSec=%s is shorter than the %s TestLiveNode allows latticed to stop", stop, liveStopBound)
	}

	verifyUnit(t, rel, "/usr/local/bin/latticed", binPath)
}

func TestSystemdNATSUnit(t *testing.T) {
	const rel = "deploy/systemd/nats-server.service"
	u := parseUnit(t, rel)
	if got := u.last("Service", "ExecStart"); !strings.HasPrefix(got, "/usr/local/bin/nats-server -c /etc/nats/") {
		t.Errorf("ExecStart=%q, want /usr/local/bin/nats-server -c /etc/nats/...", got)
	}
	if u.last("Service", "StateDirectory") != "nats" {
		t.Error("StateDirectory should be nats: the configs in deploy/nats keep JetStream in /var/lib/nats")
	}
	verifyUnit(t, rel, "/usr/local/bin/nats-server", tool(t, "nats-server", "LATTICED_NATS_SERVER_BIN"))
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose
// executable path points at a binary that exists here. Any output fails:
// systemd only warns about unknown or misspelled directives.
func verifyUnit(t *testing.T, rel, execPath, realPath string) {
	t.Helper()
	requireLinux(t, "systemd-analyze")
	sa := tool(t, "systemd-analyze", "LATTICED_SYSTEMD_ANALYZE_BIN")
	text := readFile(t, rel)
	if !strings.Contains(text, execPath) {
		t.Fatalf("%s does not mention %s", rel, execPath)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, filepath.Base(rel))
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(text, execPath, realPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runTool(t, time.Minute, dir, sa, "verify", unit)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", rel, err, out)
	}
}

func TestSystemdEnvExample(t *testing.T) {
	const rel = "deploy/systemd/latticed.env.example"
	var names []string
	line := regexp.MustCompile(`^#?\s*([A-Z][A-Za-z0-9_]*)=`)
	for i, l := range strings.Split(readFile(t, rel), "\n") {
		l = strings.TrimSpace(l)
		if m := line.FindStringSubmatch(l); m != nil {
			names = append(names, m[1])
			continue
		}
		if l != "" && !strings.HasPrefix(l, "#") {
			t.Errorf("%s:%d: %q is neither a comment nor KEY=value", rel, i+1, l)
		}
	}
	if len(names) < 10 {
		t.Fatalf("%s names only %d settings", rel, len(names))
	}
	checkSettingNames(t, rel, names)
	for _, must := range []string{"WASMCLOUD_LATTICE_PREFIX", "WASMCLOUD_CLUSTER_SEED", "WASMCLOUD_CLUSTER_ISSUERS", "WASMCLOUD_RPC_HOST", "WASMCLOUD_RPC_CREDSFILE", "WASMCLOUD_CTL_HOST", "WASMCLOUD_CTL_CREDSFILE", "LATTICED_METRICS_ADDR"} {
		if !slices.Contains(names, must) {
			t.Errorf("%s does not show %s", rel, must)
		}
	}
}

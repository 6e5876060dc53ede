package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// natsCLI finds the pinned nats CLI (installed by `make tools`).
func natsCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LATTICED_NATS_CLI_BIN"); p != "" {
		return p
	}
	p := filepath.Join(testenv.ModuleRoot(t), ".tools", "bin", "nats")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("nats CLI not found at %s: run `make tools` (make test does) or set LATTICED_NATS_CLI_BIN", p)
	}
	return p
}

// The cache stream is what the wasmCloud docs describe, the real nats CLI
// manages it, and hosts started after a purge start empty and healthy.
func TestCacheStreamWithTheNatsCLI(t *testing.T) {
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	const prefix = "cachetest"
	h := startTestHost(t, s, cluster, prefix, nil)
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
	})
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	e.run("ctl", "start", "actor", "file://"+echo.Path, "--host-id", h.ID()).want(t, 0)
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	e.run("ctl", "link", "put", echo.Key, provider.PublicKey(), wire.ContractKeyValue, "URL=x").want(t, 0)

	nats := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(natsCLI(t), append([]string{"--server", s.ClientURL(), "--no-context"}, args...)...)
		cmd.Env = []string{"HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var info struct {
		Config struct {
			Subjects          []string `json:"subjects"`
			MaxMsgsPerSubject int64    `json:"max_msgs_per_subject"`
		} `json:"config"`
		State struct {
			Msgs uint64 `json:"messages"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(nats("stream", "info", lattice.CacheStream(prefix), "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != "lc."+prefix+".>" || info.Config.MaxMsgsPerSubject != 1 || info.State.Msgs < 3 {
		t.Fatalf("stream info %+v", info)
	}

	r := e.run("cache", "purge", "--timeout", "1s")
	r.want(t, 1)
	mustContain(t, "purge refusal", r.stderr, "hosts of this lattice are running", h.ID(), "--force")

	h.stop()
	nats("stream", "purge", lattice.CacheStream(prefix), "-f")
	h2 := startTestHost(t, s, cluster, prefix, nil)
	var links []lattice.LinkDefinition
	e.json(&links, "links", "ctl", "get", "links")
	var claims []lattice.CachedClaims
	e.json(&claims, "claims", "ctl", "get", "claims")
	if len(links) != 0 || len(claims) != 0 {
		t.Fatalf("after purge a new host knows links %v, claims %v", links, claims)
	}
	e.run("ctl", "start", "actor", "file://"+echo.Path, "--host-id", h2.ID()).want(t, 0)
	var purged map[string]any
	e.json(&purged, "", "cache", "purge", "--force", "--timeout", "1s")
	if purged["purged"].(float64) < 1 || !strings.HasPrefix(purged["stream"].(string), "LATTICECACHE_") {
		t.Fatalf("purge --force: %v", purged)
	}
}

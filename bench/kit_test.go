//go:build benchkit

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBenchKit builds the bench kit as make bench-kit does, unpacks it into
// a directory outside the repository and runs ./bench -quick -only node
// there with no go on PATH and no repository to build from: the floors, a
// real node (the kit's latticed as supervisor children) with the kit's
// actors, and the HTTP ingress must print their rows. Behind the benchkit
// tag (make bench-kit-test): it builds and runs a node, about a minute.
func TestBenchKit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	work := t.TempDir()
	// run returns stdout and stderr apart: the bench's table and -make-kit's
	// path are on stdout, its progress on stderr.
	run := func(dir string, env []string, name string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out), stderr.String()
	}

	// Build: the bench binary, then its -make-kit (latticed, actors, nats-server).
	build := filepath.Join(work, "build")
	env := append(os.Environ(), "CGO_ENABLED=0")
	run(".", env, "go", "build", "-trimpath", "-o", filepath.Join(build, "bench"), ".")
	tarball, _ := run(".", os.Environ(), filepath.Join(build, "bench"), "-make-kit", filepath.Join(work, "out"))
	tarball = strings.TrimSpace(tarball)
	if filepath.Base(tarball) != kitName()+".tar.gz" {
		t.Fatalf("-make-kit printed %q, want a path to %s.tar.gz", tarball, kitName())
	}

	// Unpack outside the repository and check what the kit holds.
	unpacked := filepath.Join(work, "elsewhere")
	if err := os.MkdirAll(unpacked, 0o755); err != nil {
		t.Fatal(err)
	}
	run(unpacked, os.Environ(), "tar", "-xzf", tarball)
	kit := filepath.Join(unpacked, kitName())
	for _, f := range []string{"bench", "latticed", "nats-server", "run.sh", "README", kitMarker,
		"actors/echo.wasm", "actors/passthrough.wasm", "actors/hostcall.wasm"} {
		if _, err := os.Stat(filepath.Join(kit, f)); err != nil {
			t.Errorf("kit: %v", err)
		}
	}

	// Run it as on a machine without Go: an empty PATH, a HOME and TMPDIR of
	// its own, none of the repository's environment.
	noGo := filepath.Join(work, "empty-path")
	if err := os.MkdirAll(noGo, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(work, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	bare := []string{"PATH=" + noGo, "HOME=" + work, "TMPDIR=" + tmp}
	if v, _ := run(kit, bare, "./nats-server", "--version"); !strings.Contains(v, "nats-server") {
		t.Errorf("kit nats-server --version: %q", v)
	}
	out, log := run(kit, bare, "./bench", "-quick", "-only", "node", "-http-concurrency", "16", "-out", "")
	if !strings.Contains(log, "bench kit "+kit) {
		t.Errorf("kit ./bench did not say it runs from the kit %s:\n%s", kit, log)
	}
	for _, want := range []string{
		"throughput c=1: " + cryptoFloorName,
		"throughput c=16: " + topoFloorName,
		"CPU per call c=1: " + topoFloorName + ": " + roleFloor,
		"node c=1: client -> node (host child) -> Go echo x",
		"node c=16: client -> node (host child) -> tiny wat echo x",
		"CPU per call node c=16: client -> node (host child) -> Go echo x",
		"http c=16: provider httpserver -> echo actor vs crypto floor",
		"CPU per call http c=16: provider httpserver -> echo actor (all processes)",
		"http c=16: " + httpTopoFloorName + " vs crypto floor",
		"CPU per call http c=16: " + httpTopoFloorName + ": " + roleFloorHTTPD,
		"http c=16: provider httpserver -> echo actor vs " + httpTopoShort,
		"CPU per call http c=16: provider httpserver -> echo actor: " + roleHTTPProvider + " vs " + httpTopoShort,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kit ./bench output lacks %q:\n%s", want, out)
		}
	}
	// Each node row also has its ratio to the topology floor.
	if !regexp.MustCompile(`node c=16: client -> node \(host child\) -> Go echo x\d+ vs topology floor`).MatchString(out) {
		t.Errorf("kit ./bench output lacks the node c=16 Go echo row's ratio to the topology floor:\n%s", out)
	}
}

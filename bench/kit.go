package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/latticed/latticed/internal/testing/wasmbuild"
)

// The actor packages the bench runs, built for wasip1 from source in the
// repository, or taken prebuilt from a bench kit (kitActors lists what a kit
// carries, so that the two cannot drift apart).
const (
	echoPkg        = "github.com/latticed/latticed/actor/examples/echo"
	passthroughPkg = "./internal/testing/actors/passthrough"
	hostcallPkg    = "./internal/testing/actors/hostcall"
)

var kitActors = []string{echoPkg, passthroughPkg, hostcallPkg}

// kitMarker is the file that makes a directory a bench kit: `bench` looks for
// it beside its own executable.
const kitMarker = "BENCH-KIT"

// envKit names a bench kit directory explicitly (LATTICED_BENCH_KIT=dir).
const envKit = "LATTICED_BENCH_KIT"

// kitDir is the bench kit the prebuilt artifacts come from, "" when the bench
// runs from the repository and builds them: $LATTICED_BENCH_KIT, else the
// executable's own directory when it holds the kit marker.
func kitDir() string {
	if d := os.Getenv(envKit); d != "" {
		return d
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return ""
	}
	dir := filepath.Dir(exe)
	if _, err := os.Stat(filepath.Join(dir, kitMarker)); err != nil {
		return ""
	}
	return dir
}

// kitActorFile is where a kit keeps the module of actor package pkg.
func kitActorFile(kit, pkg string) string {
	return filepath.Join(kit, "actors", path.Base(pkg)+".wasm")
}

// buildActor puts the unsigned wasip1 module of actor package pkg at out:
// copied from the bench kit, or built from the repository's source.
func buildActor(pkg, out string) error {
	kit := kitDir()
	if kit == "" {
		return wasmbuild.Build(pkg, out)
	}
	if err := copyFile(kitActorFile(kit, pkg), out, 0o644); err != nil {
		return fmt.Errorf("actor %s from the bench kit %s: %w", pkg, kit, err)
	}
	return nil
}

// buildLatticed builds cmd/latticed into tmp (or takes the kit's): the binary
// the cold-start rows run and the node's supervisor spawns as host and
// providers.
func buildLatticed(tmp string) (string, error) {
	if kit := kitDir(); kit != "" {
		bin := filepath.Join(kit, "latticed")
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("latticed from the bench kit: %w", err)
		}
		return bin, nil
	}
	bin := filepath.Join(tmp, "latticed")
	return bin, goBuild(bin, "./cmd/latticed")
}

// goBuild builds the repository's package pkg to out as `make build` does
// (static, trimmed paths), so that it runs on another Linux machine.
func goBuild(out, pkg string) error {
	root, err := wasmbuild.ModuleRoot()
	if err != nil {
		return err
	}
	build := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// kitName is the tarball -make-kit writes: one per OS and architecture.
func kitName() string {
	return fmt.Sprintf("latticed-bench-kit-%s-%s", runtime.GOOS, runtime.GOARCH)
}

const kitReadme = `latticed bench kit
==================

Runs the latticed bench (bench/README.md in the repository) on a Linux
machine without Go or the repository: the bench binary, the latticed binary
it starts as nodes, hosts and providers, the prebuilt actors and the pinned
nats-server, all for %s/%s.

    ./run.sh                  # the full run, as make bench: table on stdout, results/latest.json
    ./bench -quick            # a smoke run
    ./bench -only node        # the floors (the topology floors: bench re-runs itself as their children), then a real node and its HTTP ingress
    ./bench -h                # every flag; they are the same as go run ./bench

bench finds this kit because it sits beside the file BENCH-KIT (or
LATTICED_BENCH_KIT=<dir> names it). Needs loopback TCP and /proc.
`

const kitRun = `#!/bin/sh
# The full latticed bench from this kit; extra flags go to ./bench.
cd "$(dirname "$0")" && exec ./bench -out results/latest.json "$@"
`

// makeKit writes the bench kit tarball into dir and returns its path: this
// executable as bench, latticed and the actors built from the repository, and
// the pinned nats-server. It needs Go and the repository (make bench-kit).
func makeKit(dir string) (string, error) {
	stage, err := os.MkdirTemp("", "lbench-kit-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, kitName())
	if err := os.MkdirAll(filepath.Join(root, "actors"), 0o755); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	natsServer, err := natsServerBin()
	if err != nil {
		return "", err
	}
	for _, c := range []struct{ from, to string }{{self, "bench"}, {natsServer, "nats-server"}} {
		if err := copyFile(c.from, filepath.Join(root, c.to), 0o755); err != nil {
			return "", err
		}
	}
	progress("kit: building latticed and %d actors", len(kitActors))
	if err := goBuild(filepath.Join(root, "latticed"), "./cmd/latticed"); err != nil {
		return "", err
	}
	for _, pkg := range kitActors {
		if err := wasmbuild.Build(pkg, kitActorFile(root, pkg)); err != nil {
			return "", err
		}
	}
	for _, f := range []struct {
		name, text string
		mode       os.FileMode
	}{
		{"README", fmt.Sprintf(kitReadme, runtime.GOOS, runtime.GOARCH), 0o644},
		{"run.sh", kitRun, 0o755},
		{kitMarker, "latticed bench kit: bench takes its prebuilt artifacts from this directory\n", 0o644},
	} {
		if err := os.WriteFile(filepath.Join(root, f.name), []byte(f.text), f.mode); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, kitName()+".tar.gz")
	return out, writeTarGz(out, stage, kitName())
}

// writeTarGz packs the tree base/top (regular files and directories) into
// the gzip tarball out, with paths starting at top.
func writeTarGz(out, base, top string) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	err = filepath.Walk(filepath.Join(base, top), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil || fi.IsDir() {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("kit tarball %s: %w", out, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// kitNote tells the terminal where the prebuilt artifacts come from.
func kitNote() {
	if kit := kitDir(); kit != "" {
		progress("bench kit %s: prebuilt latticed, actors and nats-server (no Go needed)", strings.TrimSuffix(kit, "/"))
	}
}

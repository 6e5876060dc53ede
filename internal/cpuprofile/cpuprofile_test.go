package cpuprofile_test

import (
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/latticed/latticed/internal/cpuprofile"
)

func TestStart(t *testing.T) {
	t.Run("unset: no profile runs", func(t *testing.T) {
		stop, err := cpuprofile.Start(func(string) (string, bool) { return "", false }, "host")
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		// The runtime runs one CPU profile at a time: starting one here
		// fails if Start began one.
		if err := pprof.StartCPUProfile(io.Discard); err != nil {
			t.Fatalf("a profile runs with %s unset: %v", cpuprofile.Env, err)
		}
		pprof.StopCPUProfile()
	})
	t.Run("set: a finished profile named by role and pid", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "prof")
		stop, err := cpuprofile.Start(func(k string) (string, bool) {
			if k != cpuprofile.Env {
				t.Errorf("looked up %q, want %q", k, cpuprofile.Env)
			}
			return dir, true
		}, "host")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "host-"+strconv.Itoa(os.Getpid())+".pprof")
		if err := cpuprofile.Check(path); err == nil {
			t.Error("Check passed a profile still being written")
		}
		stop()
		if err := cpuprofile.Check(path); err != nil {
			t.Error(err)
		}
	})
	t.Run("a directory that cannot be made fails", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := cpuprofile.Start(func(string) (string, bool) { return filepath.Join(file, "sub"), true }, "host"); err == nil {
			t.Fatal("no error for a directory under a file")
		}
	})
}

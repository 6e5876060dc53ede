package cpuprofile_test

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/latticed/latticed/internal/cpuprofile"
)

func TestStart(t *testing.T) {
	t.Run("unset: nothing is written", func(t *testing.T) {
		stop, err := cpuprofile.Start(func(string) (string, bool) { return "", false }, "host")
		if err != nil {
			t.Fatal(err)
		}
		stop()
	})
	t.Run("set: a parsable profile named by role and pid", func(t *testing.T) {
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
		stop()
		path := filepath.Join(dir, "host-"+strconv.Itoa(os.Getpid())+".pprof")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// A pprof profile is a gzipped protocol buffer.
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("profile is not gzip: %v", err)
		}
		if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
			t.Errorf("profile: %d bytes, %v", len(b), err)
		}
	})
	t.Run("a directory that cannot be made fails with the variable's name", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := cpuprofile.Start(func(string) (string, bool) { return filepath.Join(file, "sub"), true }, "host")
		if err == nil {
			t.Fatal("no error for a directory under a file")
		}
	})
}

// Package cpuprofile lets an operator profile each process of a real node:
// with LATTICED_CPUPROFILE_DIR set, the supervisor (`latticed up`, with its
// embedded NATS server), the host child and every built-in provider child
// each write a CPU profile of their whole run to that directory, read with
// `go tool pprof`. Off by default: profiling costs a few percent of CPU.
package cpuprofile

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
)

// Env names the directory the profiles go to; unset or empty, nothing is
// profiled. The supervisor passes it to its children.
const Env = "LATTICED_CPUPROFILE_DIR"

// Start profiles this process when lookup(Env) names a directory, writing
// {dir}/{role}-{pid}.pprof; the profile is complete once stop has run, so
// the caller defers stop where the process ends normally. With Env unset it
// does nothing and stop is a no-op.
func Start(lookup func(string) (string, bool), role string) (stop func(), err error) {
	dir, ok := lookup(Env)
	if !ok || dir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cpu profile: create %s (%s): %w", dir, Env, err)
	}
	path := filepath.Join(dir, role+"-"+strconv.Itoa(os.Getpid())+".pprof")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w (unset %s to run without)", err, Env)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w (another profile already runs in this process)", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// Check reports whether path holds a finished profile as Start writes one:
// readable by its owner only, and a complete gzip stream (pprof's format is
// a gzipped protocol buffer; a profile cut short by a killed process is
// not one).
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		return fmt.Errorf("cpu profile %s: mode %v, want 0600", path, perm)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("cpu profile %s is not finished (did the process stop on SIGTERM?): %w", path, err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil || n == 0 {
		return fmt.Errorf("cpu profile %s is not finished: %d bytes, %v", path, n, err)
	}
	return nil
}

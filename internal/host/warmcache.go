package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"
)

// warmIndex remembers which modules the optimizing compiler has put in the
// on-disk compilation cache, so that a start knows to wait for that code
// instead of starting on the interpreter. wazero does not say whether
// CompileModule will hit its cache, and a hit is not instant: it decodes and
// validates the module and checksums the cached code, about 65 ms of CPU for
// the 2.7 MiB Go echo, several hundred milliseconds on a busy machine. With
// only the 100 ms head start, a warm start often missed it and paid for an
// interpreted start (over a second) it did not need.
//
// An entry is an empty file named by the module's SHA-256 in a directory
// named after the wazero version, architecture and OS, as wazero names its
// own cache directory: an upgrade that makes wazero's entries stale starts
// a fresh index too. An entry whose code is gone anyway (the cache dir was
// pruned) costs one start the longer wait, warmHeadStart.
type warmIndex struct {
	dir string // "" keeps no index (no cache dir)
}

// warmHeadStart is how long a start waits for code the index says is in the
// cache before it interprets after all.
const warmHeadStart = 2 * time.Second

func newWarmIndex(cacheDir string) warmIndex {
	if cacheDir == "" {
		return warmIndex{}
	}
	return warmIndex{dir: filepath.Join(cacheDir, "latticed-"+wazeroVersion()+"-"+runtime.GOARCH+"-"+runtime.GOOS)}
}

// wazeroVersion is the wazero module version linked into this binary.
func wazeroVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "unknown"
}

func (w warmIndex) entry(sum [sha256.Size]byte) string {
	return filepath.Join(w.dir, hex.EncodeToString(sum[:]))
}

// has reports whether the compiler cached the module with this SHA-256
// before.
func (w warmIndex) has(sum [sha256.Size]byte) bool {
	if w.dir == "" {
		return false
	}
	_, err := os.Stat(w.entry(sum))
	return err == nil
}

// add records that the compiler has cached the module with this SHA-256.
func (w warmIndex) add(sum [sha256.Size]byte) error {
	if w.dir == "" {
		return nil
	}
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return fmt.Errorf("compile cache index %s: %w", w.dir, err)
	}
	f, err := os.OpenFile(w.entry(sum), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("compile cache index %s: %w", w.dir, err)
	}
	return f.Close()
}

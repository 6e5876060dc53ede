package host

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/latticed/latticed/internal/datadir"
)

// preparedCache keeps prepareModule's output on disk beside the compilation
// cache, so that a warm start reads the prepared module instead of packing
// and instrumenting the actor again: for the 2.7 MiB Go echo that work is
// about 45 ms of CPU in a fresh host process (most of it first touches of
// new heap pages), against a read of the same size and one SHA-256.
//
// An entry is named by the SHA-256 of the module as the operator gave it
// (claims included). Its content is preparedMagic, the build ID of the
// latticed binary that prepared it, the SHA-256 of the prepared module and
// the prepared module. An entry is used only when the build ID is this
// binary's (the packing and instrumentation code is part of the build, so
// a new build prepares afresh and overwrites the entry) and the prepared
// module's hash matches (a truncated or damaged file is prepared again).
// The directory is as trusted as wazero's cache of native code beside it
// (the data dir, 0700); the signed module's own checks (claims, module
// hash, issuer) run on the module as read, before this cache is consulted.
type preparedCache struct {
	dir   string // "" keeps no entries
	build string // this binary's build ID
}

// preparedMagic starts every entry; a new format gets a new magic.
const preparedMagic = "latticed-prepared-1\n"

// preparedDirName is the entries' directory inside the compile cache dir.
const preparedDirName = "latticed-prepared"

// newPreparedCache keeps entries in cacheDir; without a cache dir or a
// build ID to key on (a binary that is not ELF) it keeps none.
func newPreparedCache(cacheDir string) preparedCache {
	build := buildID()
	if cacheDir == "" || build == "" {
		return preparedCache{}
	}
	return preparedCache{dir: filepath.Join(cacheDir, preparedDirName), build: build}
}

// moduleKey names a module's entry: the SHA-256 of the module as given.
type moduleKey [sha256.Size]byte

func keyOf(wasm []byte) moduleKey { return sha256.Sum256(wasm) }

func (c preparedCache) path(key moduleKey) string {
	return filepath.Join(c.dir, hex.EncodeToString(key[:]))
}

// get returns the prepared form of the module with this key and its
// SHA-256, if an entry this build wrote holds it intact.
func (c preparedCache) get(key moduleKey) (prepared []byte, sum [sha256.Size]byte, ok bool) {
	if c.dir == "" {
		return nil, sum, false
	}
	b, err := readCapped(c.path(key), MaxModuleBytes*2)
	if err != nil {
		return nil, sum, false
	}
	prepared, sum, err = decodePrepared(b, c.build)
	return prepared, sum, err == nil
}

// put records prepared as the prepared form of the module with this key;
// sum is its SHA-256. Written atomically and not synced: a lost or torn
// entry only costs the next start a fresh preparation.
func (c preparedCache) put(key moduleKey, prepared []byte, sum [sha256.Size]byte) error {
	if c.dir == "" {
		return nil
	}
	return c.writeEntry(c.path(key), encodePrepared(prepared, sum, c.build))
}

// writeEntry writes b to path in the cache dir atomically (a reader sees
// the old content or the new), unsynced.
func (c preparedCache) writeEntry(path string, b []byte) error {
	if err := datadir.WriteCacheFile(path, b); err != nil {
		return fmt.Errorf("prepared module cache: %w", err)
	}
	return nil
}

// refPath names the entry that holds the key of the module a start of ref
// last ran ("ref-" and the SHA-256 of the reference).
func (c preparedCache) refPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(c.dir, "ref-"+hex.EncodeToString(sum[:]))
}

// keyOfRef is the key a start of ref last recorded (putRef).
func (c preparedCache) keyOfRef(ref string) (key moduleKey, ok bool) {
	if c.dir == "" {
		return key, false
	}
	b, err := readCapped(c.refPath(ref), int64(len(key)))
	if err != nil || len(b) != len(key) {
		return key, false
	}
	copy(key[:], b)
	return key, true
}

// putRef records that a start of ref ran the module with this key,
// atomically and unsynced as put.
func (c preparedCache) putRef(ref string, key moduleKey) error {
	if c.dir == "" {
		return nil
	}
	return c.writeEntry(c.refPath(ref), key[:])
}

// errPreparedEntry is any entry that cannot be used: another format or
// build, or damaged.
var errPreparedEntry = errors.New("prepared module cache entry not usable")

func encodePrepared(prepared []byte, sum [sha256.Size]byte, build string) []byte {
	out := make([]byte, 0, len(preparedMagic)+2+len(build)+len(sum)+len(prepared))
	out = append(out, preparedMagic...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(build)))
	out = append(out, build...)
	out = append(out, sum[:]...)
	return append(out, prepared...)
}

// decodePrepared checks an entry's header against build and its module
// against the hash the entry carries.
func decodePrepared(b []byte, build string) ([]byte, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	rest, ok := bytes.CutPrefix(b, []byte(preparedMagic))
	if !ok || len(rest) < 2 {
		return nil, sum, errPreparedEntry
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < n+len(sum) || string(rest[:n]) != build {
		return nil, sum, errPreparedEntry
	}
	copy(sum[:], rest[n:])
	prepared := rest[n+len(sum):]
	if sha256.Sum256(prepared) != sum {
		return nil, sum, errPreparedEntry
	}
	return prepared, sum, nil
}

// readCapped reads a whole file into a buffer sized from it, refusing one
// larger than limit.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// buildID is the Go build ID of the running executable ("" when it cannot
// be read): it changes whenever any code linked into the binary does.
var buildID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	f, err := elf.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	note, err := s.Data()
	if err != nil {
		return ""
	}
	return parseGoBuildIDNote(note, f.ByteOrder)
})

// parseGoBuildIDNote reads the ELF note the Go linker writes: name size,
// description size, type 4 ("Go\x00\x00" names it), then the ID.
func parseGoBuildIDNote(note []byte, order binary.ByteOrder) string {
	const goBuildIDType = 4
	if len(note) < 16 {
		return ""
	}
	nameSize, descSize, typ := order.Uint32(note), order.Uint32(note[4:]), order.Uint32(note[8:])
	if typ != goBuildIDType || nameSize != 4 || string(note[12:16]) != "Go\x00\x00" || uint64(len(note)) < 16+uint64(descSize) {
		return ""
	}
	return string(note[16 : 16+descSize])
}

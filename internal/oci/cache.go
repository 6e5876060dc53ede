package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// blobCache keeps blobs by digest: {dir}/blobs/{algorithm}/{hex}, files
// 0600 in 0700 directories, written atomically. A blob whose bytes no
// longer match its name is removed and counts as a miss.
type blobCache struct{ dir string }

func (c *blobCache) path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return filepath.Join(c.dir, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// get returns the cached blob, or ok=false.
func (c *blobCache) get(d digest.Digest, maxBytes int64) (b []byte, ok bool) {
	if c == nil {
		return nil, false
	}
	p, err := c.path(d)
	if err != nil {
		return nil, false
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size() > maxBytes {
		return nil, false
	}
	if b, err = os.ReadFile(p); err != nil {
		return nil, false
	}
	if d.Algorithm().FromBytes(b) != d {
		_ = os.Remove(p) // damaged on disk: fetch it again
		return nil, false
	}
	return b, true
}

// put stores a blob already verified against d.
func (c *blobCache) put(d digest.Digest, b []byte) error {
	if c == nil {
		return nil
	}
	p, err := c.path(d)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil && !errors.Is(err, fs.ErrExist) {
		_ = os.Remove(f.Name())
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

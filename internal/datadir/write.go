package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, mode perm, atomically: the data goes
// to a temporary file of a unique name in the same directory, is synced to
// disk, and is renamed over path. A reader sees the old content or the new,
// never a part, and two writers of the same path never share a temporary
// file (each rename wins whole). The directory must exist.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return replace(path, data, perm, true)
}

// replace is WriteFile; durable false skips both syncs.
func replace(path string, data []byte, perm fs.FileMode, durable bool) error {
	tmp, err := writeTemp(path, data, perm, durable)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if durable {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// WriteSecret is WriteFile with mode 0600, creating path's directory with
// mode 0700 when it does not exist: for seeds, credentials and records of
// them.
func WriteSecret(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the directory of %s: %w", path, err)
	}
	return WriteFile(path, data, 0o600)
}

// WriteRunSecret is WriteSecret for a secret that is good for one run of
// latticed up only and written anew at every start (the credentials of
// users minted by this run's signing key): a reader still sees the old
// content or the new, never a part, but nothing is synced to disk. A crash
// may lose the file, and the next start rewrites it anyway; the two syncs
// it skips cost 10-40 ms each on a virtual disk, on the way to a node's
// first reply (bench/README.md, cold start).
func WriteRunSecret(path string, data []byte) error { return writePrivateUnsynced(path, data) }

// WriteCacheFile writes a file that is rebuilt on demand when it is lost (a
// cache entry) as WriteRunSecret does: atomically, mode 0600 in a 0700
// directory, not synced.
func WriteCacheFile(path string, data []byte) error { return writePrivateUnsynced(path, data) }

func writePrivateUnsynced(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the directory of %s: %w", path, err)
	}
	return replace(path, data, 0o600, false)
}

// createSecret writes data to path, mode 0600 in a 0700 directory, only if
// path does not exist yet; otherwise it returns an error wrapping
// fs.ErrExist and leaves the file alone. Like WriteFile, a reader never sees
// a partial file: the data is linked into place once complete.
func createSecret(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the directory of %s: %w", path, err)
	}
	tmp, err := writeTemp(path, data, 0o600, true)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// A hard link, unlike a rename, fails when path exists: the first of
	// two processes creating the same key wins, and the other reads it.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeTemp writes data to a new file of a unique name beside path, with
// mode perm, synced when durable, and returns its name.
func writeTemp(path string, data []byte, perm fs.FileMode, durable bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}

// syncDir makes a rename or link in dir durable. Best effort: not every
// file system lets a directory be synced, and the data itself already is.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

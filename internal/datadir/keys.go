package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// ErrKeyExposed is returned (wrapped) by ReadKey for a key file that users
// other than its owner may read: a seed is a secret, and the node refuses
// to use one that may have leaked.
var ErrKeyExposed = errors.New("readable by others")

// ReadKey reads the seed of a key of kind from path. The error wraps
// fs.ErrNotExist when there is no such file, and ErrKeyExposed when its
// mode lets others read it; it never quotes the file's content.
func ReadKey(path string, kind lattice.KeyKind) (*trust.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is %w (mode %o): chmod 600 it", path, ErrKeyExposed, fi.Mode().Perm())
	}
	kp, err := trust.ParseSeedOfKind(strings.TrimSpace(string(b)), kind)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return kp, nil
}

// LoadOrCreateKey is the key store: it reads the seed in path (ReadKey), or
// creates a key of kind and saves its seed there (0600, directory 0700).
// The file holds the seed alone, without a trailing newline, as wash and
// the nkeys tools write one: they refuse to read a seed followed by
// anything, and wash signs with these files too (docs/operations.md,
// "Signing keys"). An existing file is never overwritten; when another process creates the
// key at the same moment, both use the one saved first. created tells the
// caller to announce a new identity.
func LoadOrCreateKey(path string, kind lattice.KeyKind) (kp *trust.KeyPair, created bool, err error) {
	kp, err = ReadKey(path, kind)
	if !errors.Is(err, fs.ErrNotExist) {
		return kp, false, err
	}
	if kp, err = trust.CreateKeyPair(kind); err != nil {
		return nil, false, err
	}
	err = createSecret(path, []byte(kp.Seed()))
	if errors.Is(err, fs.ErrExist) {
		kp, err = ReadKey(path, kind)
		return kp, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("save %s key: %w", kind, err)
	}
	return kp, true, nil
}

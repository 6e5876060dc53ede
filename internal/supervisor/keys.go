package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Paths of the node's files under the data dir (docs/operations.md, "What
// runs, and where").
const (
	ClusterSeedFile = "keys/cluster.nk"
	HostSeedFile    = "keys/host.nk"
	AdminCredsFile  = "creds/admin.creds"
	JetStreamDir    = "jetstream"
	CompileCacheDir = "compile-cache"
)

// LoadOrCreateKey reads the seed in path, or creates a key of kind and saves
// its seed there (0600). created tells the caller to announce a new identity.
func LoadOrCreateKey(path string, kind lattice.KeyKind) (kp *trust.KeyPair, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		kp, err := trust.ParseSeedOfKind(strings.TrimSpace(string(b)), kind)
		if err != nil {
			return nil, false, fmt.Errorf("key file %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("key file %s is readable by others (mode %o): chmod 600 it", path, fi.Mode().Perm())
		}
		return kp, false, nil
	case errors.Is(err, fs.ErrNotExist):
		kp, err := trust.CreateKeyPair(kind)
		if err != nil {
			return nil, false, err
		}
		if err := WriteSecret(path, []byte(kp.Seed()+"\n")); err != nil {
			return nil, false, fmt.Errorf("save %s key: %w", kind, err)
		}
		return kp, true, nil
	default:
		return nil, false, fmt.Errorf("read key file: %w", err)
	}
}

// DataPath joins a relative path under the data dir.
func DataPath(dataDir, rel string) string { return filepath.Join(dataDir, filepath.FromSlash(rel)) }

// nkeyOption authenticates with a bare user nkey seed.
func nkeyOption(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("NATS nkey seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, kp.Sign), nil
}

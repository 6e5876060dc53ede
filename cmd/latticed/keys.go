package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func newKeysCmd() *cobra.Command {
	cmd := newGroupCmd("keys", "Generate, inspect and show nkeys",
		`Generate and inspect nkeys, the Ed25519 keys that identify everything in a
lattice. The first letter of a public key is its role: C cluster, A account,
M module (actor), V service (provider), N server (host), O operator, U user.
Seeds start with S followed by that letter; treat them as secrets. "keys show
cluster" prints the seed a lattice of one generated (its log never does).`,
		newKeysGenCmd(), newKeysInspectCmd(), newKeysShowCmd(), newKeysListCmd())
	addOutputFlag(cmd)
	return cmd
}

func keyKindNames() []string {
	names := make([]string, len(lattice.KeyKinds))
	for i, k := range lattice.KeyKinds {
		names[i] = k.String()
	}
	return names
}

type keyPairJSON struct {
	PublicKey string `json:"public_key"`
	Seed      string `json:"seed"`
}

func newKeysGenCmd() *cobra.Command {
	kinds := keyKindNames()
	return &cobra.Command{
		Use:   "gen <kind>",
		Short: "Generate a key pair and print its public key and seed",
		Long: fmt.Sprintf(`Generate a new key pair of the given kind and print its public key and seed.
Nothing is written to disk.

Kinds: %s.`, strings.Join(kinds, ", ")),
		Example:   "  latticed keys gen cluster\n  latticed keys gen account --output json",
		Args:      exactArgs("<kind>"),
		ValidArgs: kinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := lattice.ParseKeyKind(args[0])
			if err != nil {
				return usageError{err}
			}
			kp, err := trust.CreateKeyPair(kind)
			if err != nil {
				return err
			}
			out := keyPairJSON{PublicKey: kp.PublicKey(), Seed: kp.Seed()}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Public Key: %s\nSeed: %s\n\nRemember that the seed is private, treat it as a secret.\n",
					out.PublicKey, out.Seed)
				return err
			})
		},
	}
}

type keyInfoJSON struct {
	Kind      string `json:"kind"`
	PublicKey string `json:"public_key"`
	FromSeed  bool   `json:"from_seed"`
}

func newKeysInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect <seed | public key | file | ->",
		Short: "Show the kind and public key of a seed or public key (never the seed)",
		Long: `Show the kind and public key of a seed or a public key, given on the command
line, in a file (a .nk seed file or a .creds file), or on stdin as "-".
The seed itself is never printed.`,
		Example: "  latticed keys inspect ~/.local/share/latticed/keys/cluster.nk\n  latticed keys inspect - < account.nk",
		Args:    exactArgs("<key>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := readKeyArg(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			out := keyInfoJSON{Kind: k.kind.String(), PublicKey: k.pub, FromSeed: k.pair != nil}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Kind: %s\nPublic Key: %s\n", out.Kind, out.PublicKey)
				return err
			})
		},
	}
}

// storedKeys are the node's own keys that `keys show` prints, by kind name,
// with their file under the data dir (supervisor owns the paths).
var storedKeys = map[string]struct {
	kind lattice.KeyKind
	file string
}{
	"cluster": {lattice.KindCluster, datadir.ClusterSeedFile},
}

type storedKeyJSON struct {
	Kind      string `json:"kind"`
	PublicKey string `json:"public_key"`
	Seed      string `json:"seed"`
	File      string `json:"file"`
}

// newKeysShowCmd prints a seed the node keeps in its data dir. The node
// logs only the public key and the file (docs/security.md), so this is how
// an operator gets the seed, deliberately, to a terminal or a secret store.
func newKeysShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show cluster",
		Short: "Print the public key and seed of the lattice of one's cluster key",
		Long: `Print the public key and seed of a key the node keeps in its data dir:
"cluster" is the ad hoc cluster key that latticed up generates into
{data dir}/` + datadir.ClusterSeedFile + ` when no WASMCLOUD_CLUSTER_SEED is set.
Its log names only the public key and that file, never the seed.

Give the seed to other nodes in WASMCLOUD_CLUSTER_SEED (to sign as this
lattice) and the public key in WASMCLOUD_CLUSTER_ISSUERS (to trust it).
The seed is a secret: print it to a terminal or straight into a secret store.

Environment:
  LATTICED_DATA_DIR   data directory; default $XDG_DATA_HOME/latticed,
                      else $HOME/.local/share/latticed`,
		Example: `  latticed keys show cluster
  latticed keys show cluster --output json | jq -j .seed > seed
  latticed keys show cluster --data-dir /var/lib/latticed`,
		Args:      exactArgs("cluster"),
		ValidArgs: []string{"cluster"},
		RunE: func(cmd *cobra.Command, args []string) error {
			sk, ok := storedKeys[args[0]]
			if !ok {
				return usageErrorf("unknown key %q: the node keeps only its cluster key (latticed keys show cluster)", args[0])
			}
			dir, err := cmd.Flags().GetString("data-dir")
			if err != nil {
				return usageError{err}
			}
			if dir == "" {
				if dir, err = defaultDataDir(); err != nil {
					return usageErrorf("no data dir: set --data-dir or %s (%v)", config.EnvDataDir, err)
				}
			}
			path := datadir.Path(dir, sk.file)
			kp, err := readStoredSeed(path, sk.kind)
			if err != nil {
				return err
			}
			out := storedKeyJSON{Kind: sk.kind.String(), PublicKey: kp.PublicKey(), Seed: kp.Seed(), File: path}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Public Key: %s\nSeed: %s\nFile: %s\n\nRemember that the seed is private, treat it as a secret.\n",
					out.PublicKey, out.Seed, out.File)
				return err
			})
		},
	}
	cmd.Flags().AddFlag(configFlags("data-dir")[0])
	return cmd
}

// errNoStoredKey is returned by readStoredSeed when the node has not
// generated the key (yet, or because a seed is configured instead).
var errNoStoredKey = errors.New("no such key file")

// readStoredSeed reads a seed file the node wrote, without creating one and
// without echoing its content in errors; a file others can read is refused,
// as the node itself refuses it (datadir.ReadKey).
func readStoredSeed(path string, kind lattice.KeyKind) (*trust.KeyPair, error) {
	kp, err := datadir.ReadKey(path, kind)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: latticed up generates it on its first start when %s is not set (check --data-dir or %s)",
			path, errNoStoredKey, config.EnvClusterSeed, config.EnvDataDir)
	}
	return kp, err
}

// parsedKey is a public key, with its key pair when it came from a seed.
type parsedKey struct {
	kind lattice.KeyKind
	pub  string
	pair *trust.KeyPair
}

// parseKey accepts a seed or a public nkey.
func parseKey(s string) (parsedKey, bool) {
	s = strings.TrimSpace(s)
	if kp, err := trust.ParseSeed(s); err == nil {
		return parsedKey{kind: kp.Kind(), pub: kp.PublicKey(), pair: kp}, true
	}
	if kind, _, err := lattice.DecodePublicKey(s); err == nil {
		return parsedKey{kind: kind, pub: s}, true
	}
	return parsedKey{}, false
}

// findKey returns the first key in a file's content: the whole content, or
// else the first line holding one (as in a .creds file, whose seed follows a
// JWT block).
func findKey(content string) (parsedKey, bool) {
	if k, ok := parseKey(content); ok {
		return k, true
	}
	for _, line := range strings.Split(content, "\n") {
		if k, ok := parseKey(line); ok {
			return k, true
		}
	}
	return parsedKey{}, false
}

// looksLikeKey reports whether s is meant as an inline key rather than a path.
func looksLikeKey(s string) bool {
	if len(s) < 50 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

// readKeyArg resolves a key given inline, as a file path, or as "-" (stdin).
// Error messages never echo the argument when it may be a seed.
func readKeyArg(stdin io.Reader, arg string) (parsedKey, error) {
	if k, ok := parseKey(arg); ok {
		return k, nil
	}
	var (
		b   []byte
		err error
	)
	from := arg
	if arg == "-" {
		from = "stdin"
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(arg)
		if errors.Is(err, os.ErrNotExist) && looksLikeKey(arg) {
			return parsedKey{}, usageErrorf("the argument is not a valid seed or public key (checksum or length is wrong) nor an existing file")
		}
	}
	if err != nil {
		return parsedKey{}, err
	}
	if k, ok := findKey(string(b)); ok {
		return k, nil
	}
	return parsedKey{}, fmt.Errorf("%s holds no nkey seed or public key", from)
}

// loadSeed resolves a seed of the given kind from a flag value: the seed
// itself, a file holding it, or "-" for stdin.
func loadSeed(stdin io.Reader, flag, arg string, kind lattice.KeyKind) (*trust.KeyPair, error) {
	k, err := readKeyArg(stdin, arg)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return nil, usageErrorf("--%s: %v", flag, ue.err)
		}
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if k.pair == nil {
		return nil, usageErrorf("--%s: %s is a public key; signing needs %s seed (S%c…)", flag, k.pub, withArticle(kind), kind.Letter())
	}
	if k.kind != kind {
		return nil, usageErrorf("--%s: want %s seed (S%c…), got %s seed", flag, withArticle(kind), kind.Letter(), withArticle(k.kind))
	}
	return k.pair, nil
}

func withArticle(k lattice.KeyKind) string {
	if n := k.String(); strings.IndexByte("aeio", n[0]) >= 0 {
		return "an " + n
	}
	return "a " + k.String()
}

// keysListJSON is keys list's JSON: wash's {"keys": [file names]}, with
// the directory and each readable key's public key.
type keysListJSON struct {
	Directory  string            `json:"directory"`
	From       string            `json:"from"`
	Keys       []string          `json:"keys"`
	PublicKeys map[string]string `json:"public_keys"`
	Refused    map[string]string `json:"refused,omitempty"`
}

// newKeysListCmd lists the keys directory claims sign and par create use,
// so that an operator sees which account and actor keys will sign, and
// where, before signing.
func newKeysListCmd() *cobra.Command {
	var f keyDirFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the key files of the keys directory claims sign and par create use",
		Long: `List the .nk key files of the keys directory that claims sign and par create
use for the keys they are not given, chosen the same way (first of --keys-dir,
--directory, $` + envWashKeys + `, $HOME/` + washKeysHome + ` when it exists, {data dir}/keys),
with each key's kind and public key. Seeds are never printed; a key file
others may read, or that holds no seed, is listed as refused with the reason.`,
		Example: "  latticed keys list\n  WASH_KEYS=~/keys latticed keys list -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := resolveKeyStore(cmd.Flags(), f, os.LookupEnv)
			if err != nil {
				return err
			}
			names, err := filepath.Glob(filepath.Join(ks.dir, "*.nk"))
			if err != nil {
				return err
			}
			out := keysListJSON{Directory: ks.dir, From: ks.from, Keys: []string{}, PublicKeys: map[string]string{}}
			kinds := map[string]string{}
			for _, p := range names {
				name := filepath.Base(p)
				out.Keys = append(out.Keys, name)
				kp, kind, err := readAnyKey(p)
				if err != nil {
					if out.Refused == nil {
						out.Refused = map[string]string{}
					}
					out.Refused[name] = err.Error()
					continue
				}
				out.PublicKeys[name], kinds[name] = kp.PublicKey(), kind.String()
			}
			return printResult(cmd, out, func(w io.Writer) error {
				fmt.Fprintf(w, "Keys directory: %s (%s)\n", out.Directory, out.From)
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				for _, n := range out.Keys {
					if why, bad := out.Refused[n]; bad {
						fmt.Fprintf(tw, "%s\trefused\t%s\n", n, why)
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n, kinds[n], out.PublicKeys[n])
				}
				return tw.Flush()
			})
		},
	}
	addKeyDirChoiceFlags(cmd.Flags(), &f, "d")
	return cmd
}

// readAnyKey reads a key file of whatever kind its seed says, refusing it
// as datadir.ReadKey does (readable by others, not a seed), without ever
// quoting its content.
func readAnyKey(path string) (*trust.KeyPair, lattice.KeyKind, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	kp, err := trust.ParseSeed(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, 0, errors.New("holds no valid seed")
	}
	// The kind is known now: datadir.ReadKey applies the node's checks.
	if kp, err = datadir.ReadKey(path, kp.Kind()); err != nil {
		return nil, 0, err
	}
	return kp, kp.Kind(), nil
}

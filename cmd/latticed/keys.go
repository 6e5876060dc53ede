package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/latticed/latticed/lattice"
	"github.com/spf13/cobra"
)

func newKeysCmd() *cobra.Command {
	cmd := newGroupCmd("keys", "Generate and inspect nkeys",
		`Generate and inspect nkeys, the Ed25519 keys that identify everything in a
lattice. The first letter of a public key is its role: C cluster, A account,
M module (actor), V service (provider), N server (host), O operator, U user.
Seeds start with S followed by that letter; treat them as secrets.`,
		newKeysGenCmd(), newKeysInspectCmd())
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
			kp, err := lattice.CreateKeyPair(kind)
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

// parsedKey is a public key, with its key pair when it came from a seed.
type parsedKey struct {
	kind lattice.KeyKind
	pub  string
	pair *lattice.KeyPair
}

// parseKey accepts a seed or a public nkey.
func parseKey(s string) (parsedKey, bool) {
	s = strings.TrimSpace(s)
	if kp, err := lattice.ParseSeed(s); err == nil {
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
func loadSeed(stdin io.Reader, flag, arg string, kind lattice.KeyKind) (*lattice.KeyPair, error) {
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

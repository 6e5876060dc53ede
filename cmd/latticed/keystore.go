package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// The environment wash reads for its signing keys; latticed reads the same
// names so that an operator coming from wash keeps signing with the same
// account and actor keys (docs/operations.md, "Signing keys").
const (
	envWashKeys       = "WASH_KEYS"        // wash's key directory
	envWashIssuerKey  = "WASH_ISSUER_KEY"  // wash's default for --issuer
	envWashSubjectKey = "WASH_SUBJECT_KEY" // wash's default for --subject
	// envUser names wash's account key file: one account per user.
	envUser = "USER"
	// washUserDefault is the user name wash uses when USER is not set.
	washUserDefault = "user"
)

// washKeysHome is wash's default key directory, relative to $HOME.
var washKeysHome = filepath.Join(".wash", "keys")

// keyLayout is how key files in a keys directory are named.
type keyLayout int

const (
	// latticedLayout: <name>_<kind>.nk for every kind, name the actor's or
	// provider's --name (keyFileName).
	latticedLayout keyLayout = iota
	// washLayout: <user>_account.nk, one account key per user ($USER);
	// <stem>_module.nk and <stem>_service.nk after the signed module's or
	// the provider binary's file name without its extension.
	washLayout
)

// keyDirFlags are the flags, shared by claims sign and par create, that say
// where the default issuer and subject keys live.
type keyDirFlags struct {
	keysDir, directory string
	disableKeygen      bool
}

// addKeyDirFlags registers --keys-dir, --directory (with shorthand
// dirShort when not empty, as wash's par create has -d) and --disable-keygen.
func addKeyDirFlags(fl *pflag.FlagSet, f *keyDirFlags, dirShort string) {
	addKeyDirChoiceFlags(fl, f, dirShort)
	fl.BoolVar(&f.disableKeygen, "disable-keygen", false,
		"fail instead of generating a default key that does not exist yet (wash's --disable-keygen)")
}

// addKeyDirChoiceFlags registers --keys-dir and --directory (with
// shorthand dirShort, as wash's keys commands have -d, when not empty).
func addKeyDirChoiceFlags(fl *pflag.FlagSet, f *keyDirFlags, dirShort string) {
	keysDirDefault := ""
	if d, err := defaultDataDir(); err == nil {
		keysDirDefault = filepath.Join(d, "keys")
	}
	fl.StringVar(&f.keysDir, "keys-dir", keysDirDefault,
		"`dir` of the default keys, named the latticed way (<name>_<kind>.nk); the default is used only when there is no wash key directory")
	fl.StringVarP(&f.directory, "directory", dirShort, "",
		"wash key `dir`: the default keys, named the wash way (as "+envWashKeys+"; wash's --directory)")
}

// keyDirHelp is the part of claims sign's and par create's --help that
// says where their default keys are; stemOf says what file names the
// subject key (of subjectKind) in a wash key directory.
func keyDirHelp(subjectKind, stemOf string) string {
	return `Keys not given are read from, or on first use generated into, the first of:
  --keys-dir <dir>    latticed's names: <name>_account.nk, <name>_` + subjectKind + `.nk
  --directory <dir>   wash's names: <user>_account.nk, <stem>_` + subjectKind + `.nk
  $` + envWashKeys + `          wash's names
  $HOME/` + washKeysHome + `    wash's names, when that directory exists
  {data dir}/keys     latticed's names
<stem> is ` + stemOf + `; <user> is $` + envUser + `
("` + washUserDefault + `" when unset): one account key per user, as wash keeps, so what
latticed and wash sign shares an account. Key files are created 0600 in a
0700 directory and hold the bare seed (wash reads them too); a key file
others may read is refused. The keys directory and each key's public key and
file are reported on stderr, never a seed. --disable-keygen fails instead of
generating a missing key.`
}

// keyStore is where one command finds, or generates, its default keys.
type keyStore struct {
	dir    string
	layout keyLayout
	// from says which setting chose dir, for the operator.
	from          string
	user          string // wash's account key name
	disableKeygen bool
	announced     bool
}

// resolveKeyStore picks the keys directory by the precedence keyDirHelp
// documents: latticed's own flag first (an explicit choice), then wash's
// flag and variable, then wash's directory when it exists, and latticed's
// data dir last, so that a machine set up for wash signs with wash's keys
// without being told.
func resolveKeyStore(fl *pflag.FlagSet, f keyDirFlags, lookup func(string) (string, bool)) (*keyStore, error) {
	ks := &keyStore{disableKeygen: f.disableKeygen}
	home, _ := lookup("HOME")
	washHome := ""
	if home != "" {
		washHome = filepath.Join(home, washKeysHome)
	}
	switch env, _ := lookup(envWashKeys); {
	case fl.Changed("keys-dir") && fl.Changed("directory"):
		return nil, usageErrorf("--keys-dir and --directory both name the keys directory: give one")
	case fl.Changed("keys-dir"):
		if f.keysDir == "" {
			return nil, usageErrorf("--keys-dir must not be empty")
		}
		ks.dir, ks.layout, ks.from = f.keysDir, latticedLayout, "--keys-dir"
	case fl.Changed("directory"):
		if f.directory == "" {
			return nil, usageErrorf("--directory must not be empty")
		}
		ks.dir, ks.layout, ks.from = f.directory, washLayout, "--directory"
	case env != "":
		ks.dir, ks.layout, ks.from = env, washLayout, envWashKeys
	case washHome != "" && isDir(washHome):
		ks.dir, ks.layout, ks.from = washHome, washLayout, "$HOME/"+washKeysHome+" exists"
	case f.keysDir != "":
		ks.dir, ks.layout, ks.from = f.keysDir, latticedLayout, "{data dir}/keys"
	default:
		return nil, usageErrorf("no keys directory: set --keys-dir, %s or %s, or give --issuer and --subject", envWashKeys, config.EnvDataDir)
	}
	if ks.layout == washLayout {
		ks.user = washUserDefault
		if u, ok := lookup(envUser); ok {
			ks.user = u
		}
		// The name becomes a file name: a user name that is a path would
		// put the account key elsewhere.
		if strings.ContainsRune(ks.user, filepath.Separator) || ks.user == "." || ks.user == ".." {
			return nil, usageErrorf("%s=%q cannot name an account key file: set %s to your user name, or give --issuer", envUser, ks.user, envUser)
		}
	}
	return ks, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// fileName is the key file of kind for the actor or provider called name,
// signed from file (the module, or the provider's first binary).
func (ks *keyStore) fileName(kind lattice.KeyKind, name, file string) string {
	if ks.layout == latticedLayout {
		return keyFileName(name, kind)
	}
	if kind == lattice.KindAccount {
		return ks.user + "_" + kind.String() + ".nk"
	}
	base := filepath.Base(file)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if stem == "" { // ".wasm": the whole name is the stem, as wash takes it
		stem = base
	}
	return stem + "_" + kind.String() + ".nk"
}

// key is the default of --issuer or --subject (flag): the key file of
// kind in the store, generated when it does not exist yet unless
// --disable-keygen. Where it is goes to w, never the seed.
func (ks *keyStore) key(w io.Writer, flag string, kind lattice.KeyKind, name, file string) (*trust.KeyPair, error) {
	if !ks.announced {
		fmt.Fprintf(w, "Keys directory: %s (%s)\n", ks.dir, ks.from)
		ks.announced = true
	}
	path := filepath.Join(ks.dir, ks.fileName(kind, name, file))
	var (
		kp      *trust.KeyPair
		created bool
		err     error
	)
	if ks.disableKeygen {
		kp, err = datadir.ReadKey(path, kind)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--%s not given and there is no %s key file %s (--disable-keygen): give --%s, or drop --disable-keygen to generate it",
				flag, kind, path, flag)
		}
	} else {
		kp, created, err = datadir.LoadOrCreateKey(path, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("--%s not given: %w", flag, err)
	}
	verb := "Using"
	if created {
		verb = "Generated"
	}
	fmt.Fprintf(w, "%s %s key %s (seed in %s)\n", verb, kind, kp.PublicKey(), path)
	return kp, nil
}

// explicitKey is the key --issuer or --subject names, or else wash's
// environment variable env names; nil when neither is set.
func explicitKey(cmd *cobra.Command, flag, value, env string, kind lattice.KeyKind, lookup func(string) (string, bool)) (*trust.KeyPair, error) {
	if value == "" {
		v, ok := lookup(env)
		if !ok || v == "" {
			return nil, nil
		}
		value, flag = v, flag+" (from "+env+")"
	}
	return loadSeed(cmd.InOrStdin(), flag, value, kind)
}

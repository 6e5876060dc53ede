package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// washKeysRun is a latticed run in a cliEnv that remembers every output, so
// that a test can check at its end that no seed ever reached one.
type washKeysRun struct {
	e       *cliEnv
	outputs []string
}

func (w *washKeysRun) run(env map[string]string, args ...string) result {
	w.e.t.Helper()
	r := w.e.runEnv(env, args...)
	w.outputs = append(w.outputs, r.stdout+r.stderr)
	return r
}

// signed runs claims sign -o json (exit 0) and returns the claims' issuer
// and subject.
func (w *washKeysRun) signed(env map[string]string, args ...string) (iss, sub string, r result) {
	w.e.t.Helper()
	r = w.run(env, append([]string{"claims", "sign", "-o", "json"}, args...)...)
	r.want(w.e.t, 0)
	var out map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		w.e.t.Fatalf("claims sign -o json: %v\n%s", err, r.stdout)
	}
	iss, _ = out["iss"].(string)
	sub, _ = out["sub"].(string)
	return iss, sub, r
}

// noSeedIn fails the test if any output holds a seed of any key file under
// dirs (written by latticed or by the test as wash would).
func (w *washKeysRun) noSeedIn(t *testing.T, dirs ...string) {
	t.Helper()
	var seeds []string
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.nk"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
				seeds = append(seeds, strings.TrimSpace(string(b)))
			}
		}
	}
	if len(seeds) == 0 {
		t.Fatal("no key files to look for: the test checks nothing")
	}
	for _, out := range w.outputs {
		for _, s := range seeds {
			if strings.Contains(out, s) {
				t.Fatalf("a seed reached the output:\n%s", out)
			}
		}
	}
}

// writeWashKey writes a key file the way wash's KeyDir.save does: the bare
// seed, then mode 0600, in a 0700 directory it creates.
func writeWashKey(t *testing.T, dir, name string, kind lattice.KeyKind) *trust.KeyPair {
	t.Helper()
	kp, err := trust.CreateKeyPair(kind)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(kp.Seed()), 0o600); err != nil {
		t.Fatal(err)
	}
	return kp
}

// checkBareSeed: a key file latticed wrote holds the seed alone (wash's
// nkeys parse the whole file as a seed) with mode 0600.
func checkBareSeed(t *testing.T, path string, kind lattice.KeyKind) string {
	t.Helper()
	checkMode(t, path, 0o600)
	b := mustRead(t, path)
	if strings.TrimSpace(string(b)) != string(b) {
		t.Errorf("%s: the seed is followed by whitespace; wash cannot read it", path)
	}
	return readKeyFile(t, path, kind)
}

// TestCLIWashKeysDirectory: with WASH_KEYS set, claims sign and par create
// keep their keys there under wash's names (one account key per user, the
// module key after the module file, the service key after the binary), and
// reuse them on the next run; latticed's own key dir is left alone.
func TestCLIWashKeysDirectory(t *testing.T) {
	e := newCLIEnv(t)
	w := &washKeysRun{e: e}
	washKeys := filepath.Join(t.TempDir(), "wash", "keys") // does not exist yet
	env := map[string]string{"WASH_KEYS": washKeys, "USER": "alice"}
	echo := e.write("echo.wasm", testModule(t))
	kv := e.write("kvcounter.wasm", testModule(t))

	// --name differs from the file: wash names the module key after the file.
	iss, sub, r := w.signed(env, echo, "--name", "Echo Service")
	accountFile, moduleFile := filepath.Join(washKeys, "alice_account.nk"), filepath.Join(washKeys, "echo_module.nk")
	if got := checkBareSeed(t, accountFile, lattice.KindAccount); got != iss {
		t.Errorf("issuer %s, want the key in %s (%s)", iss, accountFile, got)
	}
	if got := checkBareSeed(t, moduleFile, lattice.KindModule); got != sub {
		t.Errorf("subject %s, want the key in %s (%s)", sub, moduleFile, got)
	}
	checkMode(t, washKeys, 0o700|os.ModeDir)
	mustContain(t, "stderr", r.stderr, "Keys directory: "+washKeys+" (WASH_KEYS)",
		"Generated account key "+iss+" (seed in "+accountFile+")", "Generated module key "+sub+" (seed in "+moduleFile+")")
	if _, err := os.Stat(filepath.Join(e.dataDir, "keys")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("latticed's own keys dir was used although WASH_KEYS is set: %v", err)
	}

	// Signing again: the same account and module key.
	iss2, sub2, r := w.signed(env, echo, "-d", e.path("echo2.wasm"))
	if iss2 != iss || sub2 != sub {
		t.Errorf("re-sign: issuer %s subject %s, want %s %s", iss2, sub2, iss, sub)
	}
	mustContain(t, "stderr", r.stderr, "Using account key "+iss, "Using module key "+sub)

	// Another actor: the user's one account, its own module key.
	iss3, sub3, _ := w.signed(env, kv)
	if iss3 != iss || sub3 == sub {
		t.Errorf("second actor: issuer %s subject %s; want issuer %s and a subject other than %s", iss3, sub3, iss, sub)
	}
	if got := checkBareSeed(t, filepath.Join(washKeys, "kvcounter_module.nk"), lattice.KindModule); got != sub3 {
		t.Errorf("second actor's subject %s, want kvcounter_module.nk's %s", sub3, got)
	}

	// A provider archive: the same account, the service key after the binary.
	bin := e.write("httpserver-amd64", []byte("#!/bin/sh\n"))
	r = w.run(env, "par", "create", "--capid", "wasmcloud:httpserver", "--name", "HTTP Server", "--vendor", "acme",
		"--binary", "linux/amd64="+bin, "--destination", e.path("h.par.gz"), "-o", "json")
	r.want(t, 0)
	var p parSummary
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("par create -o json: %v\n%s", err, r.stdout)
	}
	serviceFile := filepath.Join(washKeys, "httpserver-amd64_service.nk")
	if got := checkBareSeed(t, serviceFile, lattice.KindService); p.Issuer != iss || p.PublicKey != got {
		t.Errorf("par create: issuer %s key %s, want %s and %s's %s", p.Issuer, p.PublicKey, iss, serviceFile, got)
	}

	// The signed modules verify.
	for _, m := range []string{e.path("echo_s.wasm"), e.path("echo2.wasm"), e.path("kvcounter_s.wasm")} {
		w.run(nil, "claims", "inspect", m).want(t, 0)
	}
	entries, _ := os.ReadDir(washKeys)
	if len(entries) != 4 {
		t.Errorf("%s holds %d entries, want the 4 keys", washKeys, len(entries))
	}
	w.noSeedIn(t, washKeys)
}

// TestCLIWashKeysWrittenByWash: keys wash created in ~/.wash/keys are the
// ones latticed signs with, found without any setting; USER names the
// account key, "user" when USER is unset; a key file others can read is
// refused, as the node refuses its own.
func TestCLIWashKeysWrittenByWash(t *testing.T) {
	e := newCLIEnv(t)
	w := &washKeysRun{e: e}
	washKeys := filepath.Join(e.home(), ".wash", "keys")
	alice := writeWashKey(t, washKeys, "alice_account.nk", lattice.KindAccount)
	nobody := writeWashKey(t, washKeys, "user_account.nk", lattice.KindAccount)
	echoKey := writeWashKey(t, washKeys, "echo_module.nk", lattice.KindModule)
	echo := e.write("echo.wasm", testModule(t))

	iss, sub, r := w.signed(map[string]string{"USER": "alice"}, echo)
	if iss != alice.PublicKey() || sub != echoKey.PublicKey() {
		t.Errorf("signed by %s as %s; want wash's keys %s and %s", iss, sub, alice.PublicKey(), echoKey.PublicKey())
	}
	mustContain(t, "stderr", r.stderr, "Keys directory: "+washKeys+" ($HOME/.wash/keys exists)", "Using account key "+iss)
	if strings.Contains(r.stderr, "Generated") {
		t.Errorf("a key was generated although wash's were there:\n%s", r.stderr)
	}

	if iss, _, _ := w.signed(nil, echo); iss != nobody.PublicKey() {
		t.Errorf("USER unset: signed by %s, want wash's user_account.nk %s", iss, nobody.PublicKey())
	}

	// keys list shows what will sign, and from where, never a seed.
	r = w.run(nil, "keys", "list")
	r.want(t, 0)
	mustContain(t, "keys list", r.stdout, "Keys directory: "+washKeys+" ($HOME/.wash/keys exists)",
		"alice_account.nk  account  "+alice.PublicKey(), "echo_module.nk    module   "+echoKey.PublicKey())

	// Older wash versions wrote key files with the umask's mode: refused.
	acctFile := filepath.Join(washKeys, "alice_account.nk")
	if err := os.Chmod(acctFile, 0o644); err != nil {
		t.Fatal(err)
	}
	r = w.run(nil, "keys", "list", "-o", "json")
	r.want(t, 0)
	var list keysListJSON
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("keys list -o json: %v\n%s", err, r.stdout)
	}
	if strings.Join(list.Keys, ",") != "alice_account.nk,echo_module.nk,user_account.nk" || list.Directory != washKeys ||
		list.PublicKeys["echo_module.nk"] != echoKey.PublicKey() || !strings.Contains(list.Refused["alice_account.nk"], "readable by others") {
		t.Errorf("keys list -o json: %s", r.stdout)
	}
	r = w.run(map[string]string{"USER": "alice"}, "claims", "sign", echo, "-d", e.path("x.wasm"))
	r.want(t, 1)
	mustContain(t, "stderr", r.stderr, acctFile, "readable by others", "chmod 600")
	if _, err := os.Stat(e.path("x.wasm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a module was signed with a refused key: %v", err)
	}
	w.noSeedIn(t, washKeys)
}

// TestCLIKeysDirectoryPrecedence: an explicit key beats any directory;
// latticed's --keys-dir (latticed's names) beats wash's --directory, which
// beats WASH_KEYS, which beats ~/.wash/keys, which beats the data dir.
func TestCLIKeysDirectoryPrecedence(t *testing.T) {
	e := newCLIEnv(t)
	w := &washKeysRun{e: e}
	echo := e.write("echo.wasm", testModule(t))
	home := filepath.Join(e.home(), ".wash", "keys")
	envDir, flagDir, ownDir := filepath.Join(e.dir, "env-keys"), filepath.Join(e.dir, "flag-keys"), filepath.Join(e.dir, "own-keys")
	accounts := map[string]*trust.KeyPair{}
	for _, d := range []string{home, envDir, flagDir} {
		accounts[d] = writeWashKey(t, d, "user_account.nk", lattice.KindAccount)
	}
	accounts[ownDir] = writeWashKey(t, ownDir, "echo_account.nk", lattice.KindAccount)
	withEnv := map[string]string{"WASH_KEYS": envDir}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the directory whose account signs
		from string
	}{
		{"--keys-dir over WASH_KEYS", withEnv, []string{"--keys-dir", ownDir}, ownDir, "--keys-dir"},
		{"--directory over WASH_KEYS", withEnv, []string{"--directory", flagDir}, flagDir, "--directory"},
		{"WASH_KEYS over ~/.wash/keys", withEnv, nil, envDir, "WASH_KEYS"},
		{"~/.wash/keys", nil, nil, home, "$HOME/.wash/keys exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, _, r := w.signed(tt.env, append([]string{echo, "-d", e.path("p.wasm")}, tt.args...)...)
			if iss != accounts[tt.want].PublicKey() {
				t.Errorf("signed by %s, want %s's account %s", iss, tt.want, accounts[tt.want].PublicKey())
			}
			mustContain(t, "stderr", r.stderr, "Keys directory: "+tt.want+" ("+tt.from+")")
		})
	}

	r := w.run(withEnv, "claims", "sign", echo, "--keys-dir", ownDir, "--directory", flagDir)
	r.want(t, 2)
	mustContain(t, "stderr", r.stderr, "--keys-dir and --directory both name the keys directory")

	// Without ~/.wash/keys: latticed's data dir, latticed's names.
	if err := os.RemoveAll(filepath.Join(e.home(), ".wash")); err != nil {
		t.Fatal(err)
	}
	_, _, r = w.signed(nil, echo, "-d", e.path("p.wasm"))
	own := filepath.Join(e.dataDir, "keys")
	mustContain(t, "stderr", r.stderr, "Keys directory: "+own+" ({data dir}/keys)", filepath.Join(own, "echo_account.nk"))

	// Explicit keys, flags or wash's variables, touch no directory.
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	mod, _ := trust.CreateKeyPair(lattice.KindModule)
	iss, sub, r := w.signed(map[string]string{"WASH_KEYS": envDir, "WASH_ISSUER_KEY": acct.Seed(), "WASH_SUBJECT_KEY": mod.Seed()},
		echo, "-d", e.path("p.wasm"))
	if iss != acct.PublicKey() || sub != mod.PublicKey() {
		t.Errorf("WASH_ISSUER_KEY/WASH_SUBJECT_KEY: signed by %s as %s, want %s %s", iss, sub, acct.PublicKey(), mod.PublicKey())
	}
	if strings.Contains(r.stderr, "Keys directory") {
		t.Errorf("a keys directory was used although both keys were given:\n%s", r.stderr)
	}
	r = w.run(map[string]string{"WASH_SUBJECT_KEY": acct.Seed()}, "claims", "sign", echo, "-d", e.path("p.wasm"))
	r.want(t, 2)
	mustContain(t, "stderr", r.stderr, "--subject (from WASH_SUBJECT_KEY): want a module seed")
	for _, out := range w.outputs {
		if strings.Contains(out, acct.Seed()) || strings.Contains(out, mod.Seed()) {
			t.Fatalf("a seed from the environment reached the output:\n%s", out)
		}
	}
	w.noSeedIn(t, home, envDir, flagDir, ownDir, own)
}

// TestCLIDisableKeygen: with --disable-keygen a missing default key is an
// error naming the file, and nothing is created; existing keys still sign.
func TestCLIDisableKeygen(t *testing.T) {
	e := newCLIEnv(t)
	w := &washKeysRun{e: e}
	dir := filepath.Join(e.dir, "keys")
	env := map[string]string{"WASH_KEYS": dir, "USER": "bob"}
	writeWashKey(t, dir, "bob_account.nk", lattice.KindAccount)
	echo := e.write("echo.wasm", testModule(t))

	r := w.run(env, "claims", "sign", echo, "--disable-keygen")
	r.want(t, 1)
	missing := filepath.Join(dir, "echo_module.nk")
	mustContain(t, "stderr", r.stderr, "--subject not given", missing, "--disable-keygen")
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--disable-keygen created %s: %v", missing, err)
	}
	w.run(env, "claims", "sign", echo).want(t, 0) // generates it
	w.run(env, "claims", "sign", echo, "--disable-keygen").want(t, 0)

	bin := e.write("prov", []byte("#!/bin/sh\n"))
	r = w.run(env, "par", "create", "--capid", "wasmcloud:x", "--name", "X", "--vendor", "v", "--arch", "x86_64-linux",
		"--binary", bin, "--destination", e.path("x.par.gz"), "--disable-keygen")
	r.want(t, 1)
	mustContain(t, "stderr", r.stderr, filepath.Join(dir, "prov_service.nk"))

	// wash's par create -d names the key directory.
	other := filepath.Join(e.dir, "other")
	r = w.run(env, "par", "create", "--capid", "wasmcloud:x", "--name", "X", "--vendor", "v", "--arch", "x86_64-linux",
		"--binary", bin, "--destination", e.path("x.par.gz"), "-d", other)
	r.want(t, 0)
	mustContain(t, "stderr", r.stderr, "Keys directory: "+other+" (--directory)", filepath.Join(other, "bob_account.nk"),
		filepath.Join(other, "prov_service.nk"))
	w.noSeedIn(t, dir, other)
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// The docs' test vector (wasmCloud lattice docs, `wash keys gen cluster`).
const (
	vectorSeed = "SCABNLVRXGEJEG5FBBPMMKMMY37FNKVLDY6YXHVL6WA4IRBEYD6ACIQKV4"
	vectorPub  = "CDMTUBVGADIQZFWBUZL7LEF7YHZF6CPSKO3HLOTLBQFY2FHDLZFAMYMD"
)

var binPath string // the latticed binary, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latticed-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "latticed")
	build := exec.Command("go", "build", "-o", binPath, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/latticed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	testenv.CleanupBuilds()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	wasmOnce sync.Once
	wasmPath string
	wasmErr  error
)

// testModule is an unsigned wasm module built once from Go source (GOOS=wasip1).
// Tests copy it; they must not change it.
func testModule(t *testing.T) []byte {
	t.Helper()
	wasmOnce.Do(func() {
		dir := filepath.Join(filepath.Dir(binPath), "wasm")
		if wasmErr = os.MkdirAll(dir, 0o755); wasmErr != nil {
			return
		}
		files := map[string]string{"go.mod": "module x\n\ngo 1.26\n", "main.go": "package main\n\nfunc main() {}\n"}
		for name, text := range files {
			if wasmErr = os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); wasmErr != nil {
				return
			}
		}
		wasmPath = filepath.Join(dir, "x.wasm")
		cmd := exec.Command("go", "build", "-o", wasmPath, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			wasmErr = fmt.Errorf("build test wasm: %v\n%s", err, out)
		}
	})
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	b, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cliEnv is a controlled environment: its own HOME and data directory.
type cliEnv struct {
	t       *testing.T
	dir     string // a scratch directory for the test's files
	dataDir string
	stdin   string
}

func newCLIEnv(t *testing.T) *cliEnv {
	root := t.TempDir()
	return &cliEnv{t: t, dir: filepath.Join(root, "work"), dataDir: filepath.Join(root, "data")}
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *cliEnv) run(args ...string) result {
	e.t.Helper()
	return e.runEnv(nil, args...)
}

// runEnv runs latticed with env added to the controlled environment.
func (e *cliEnv) runEnv(env map[string]string, args ...string) result {
	e.t.Helper()
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(binPath, args...)
	cmd.Dir = e.dir
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "HOME" && name != "XDG_DATA_HOME" && name != "USER" && !strings.HasPrefix(name, "LATTICED_") &&
			!strings.HasPrefix(name, "WASMCLOUD_") && !strings.HasPrefix(name, "WASH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	root := filepath.Dir(e.dir)
	cmd.Env = append(cmd.Env, "HOME="+e.home(), "XDG_DATA_HOME="+filepath.Join(root, "xdg"), "LATTICED_DATA_DIR="+e.dataDir)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(e.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("run latticed %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func (e *cliEnv) path(name string) string { return filepath.Join(e.dir, name) }

// home is the HOME latticed runs with; it does not exist until a test makes it.
func (e *cliEnv) home() string { return filepath.Join(filepath.Dir(e.dir), "home") }

func (e *cliEnv) write(name string, data []byte) string {
	e.t.Helper()
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	p := e.path(name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (r result) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func TestCLIKeysGen(t *testing.T) {
	e := newCLIEnv(t)
	for _, kind := range lattice.KeyKinds {
		t.Run(kind.String(), func(t *testing.T) {
			pubPrefix, seedPrefix := string(kind.Letter()), "S"+string(kind.Letter())

			r := e.run("keys", "gen", kind.String())
			r.want(t, 0)
			lines := strings.Split(r.stdout, "\n")
			if len(lines) != 5 || lines[4] != "" {
				t.Fatalf("want 4 lines, got %q", r.stdout)
			}
			pub, okPub := strings.CutPrefix(lines[0], "Public Key: ")
			seed, okSeed := strings.CutPrefix(lines[1], "Seed: ")
			if !okPub || !okSeed || lines[2] != "" || lines[3] != "Remember that the seed is private, treat it as a secret." {
				t.Fatalf("text output not like wash keys gen:\n%s", r.stdout)
			}
			checkPair(t, kind, pub, seed, pubPrefix, seedPrefix)

			r = e.run("keys", "gen", kind.String(), "--output", "json")
			r.want(t, 0)
			var out map[string]any
			decodeEnvelope(t, r.stdout, "", &out)
			if len(out) != 3 {
				t.Errorf("json keys: %v, want public_key, seed and success, as wash prints them", out)
			}
			pub, _ = out["public_key"].(string)
			seed, _ = out["seed"].(string)
			checkPair(t, kind, pub, seed, pubPrefix, seedPrefix)
		})
	}

	r := e.run("keys", "gen", "bogus")
	r.want(t, 2)
	for _, k := range lattice.KeyKinds {
		if !strings.Contains(r.stderr, k.String()) {
			t.Errorf("unknown-kind message does not list %s:\n%s", k, r.stderr)
		}
	}
	if !strings.HasPrefix(r.stderr, "latticed: ") || r.stdout != "" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func checkPair(t *testing.T, kind lattice.KeyKind, pub, seed, pubPrefix, seedPrefix string) {
	t.Helper()
	if len(pub) != 56 || !strings.HasPrefix(pub, pubPrefix) || len(seed) != 58 || !strings.HasPrefix(seed, seedPrefix) {
		t.Fatalf("public key %q / seed %q: want %s… (56) / %s… (58)", pub, seed, pubPrefix, seedPrefix)
	}
	kp, err := trust.ParseSeedOfKind(seed, kind)
	if err != nil || kp.PublicKey() != pub {
		t.Fatalf("seed does not belong to the public key: %v", err)
	}
}

func TestCLIKeysInspect(t *testing.T) {
	e := newCLIEnv(t)
	seedFile := e.write("cluster.nk", []byte(vectorSeed+"\n"))
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"seed", []string{vectorSeed}, "", []string{"Kind: cluster\n", "Public Key: " + vectorPub + "\n"}},
		{"seed file", []string{seedFile}, "", []string{"Public Key: " + vectorPub + "\n"}},
		{"stdin", []string{"-"}, vectorSeed, []string{"Public Key: " + vectorPub + "\n"}},
		{"public key", []string{vectorPub}, "", []string{"Kind: cluster\n", vectorPub}},
		{"json", []string{vectorSeed, "--output", "json"}, "", []string{`"kind": "cluster"`, `"public_key": "` + vectorPub + `"`, `"from_seed": true`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.stdin = tt.stdin
			r := e.run(append([]string{"keys", "inspect"}, tt.args...)...)
			r.want(t, 0)
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout+r.stderr, vectorSeed) {
				t.Errorf("output contains the seed:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
	e.stdin = ""

	bad := vectorSeed[:20] + "A" + vectorSeed[21:] // checksum fails
	r := e.run("keys", "inspect", bad)
	r.want(t, 2)
	if strings.Contains(r.stderr, bad) {
		t.Errorf("error echoes the malformed seed:\n%s", r.stderr)
	}
	e.run("keys", "inspect", e.path("missing.nk")).want(t, 1)
}

func TestCLIClaimsSignInspect(t *testing.T) {
	e := newCLIEnv(t)
	in := e.write("echo.wasm", testModule(t))

	r := e.run("claims", "sign", in, "-c", "wasmcloud:httpserver", "--cap", "wasmcloud:keyvalue",
		"-t", "web", "--tag", "demo", "--rev", "7", "--ver", "0.1.0", "--call-alias", "Echo Service")
	r.want(t, 0)
	keysDir := filepath.Join(e.dataDir, "keys")
	accountFile, moduleFile := filepath.Join(keysDir, "echo_account.nk"), filepath.Join(keysDir, "echo_module.nk")
	for _, p := range []string{accountFile, moduleFile} {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr does not say where %s was written:\n%s", filepath.Base(p), r.stderr)
		}
		checkMode(t, p, 0o600)
	}
	checkMode(t, keysDir, 0o700|os.ModeDir)
	signed := e.path("echo_s.wasm") // wash's default destination
	checkMode(t, signed, 0o644)

	moduleKey := readKeyFile(t, moduleFile, lattice.KindModule)
	accountKey := readKeyFile(t, accountFile, lattice.KindAccount)
	for _, w := range []string{"Module:  " + moduleKey, "Account: " + accountKey, signed} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("sign output lacks %q:\n%s", w, r.stdout)
		}
	}

	r = e.run("claims", "inspect", signed)
	r.want(t, 0)
	for _, w := range []string{`"echo" - Module`, accountKey, moduleKey, "Expires      never", "Can Be Used  immediately",
		"Version      0.1.0 (7)", "Call Alias   echo_service", "Capabilities\n wasmcloud:httpserver\n wasmcloud:keyvalue\n",
		"Tags\n web\n demo\n"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("inspect output lacks %q:\n%s", w, r.stdout)
		}
	}

	r = e.run("claims", "inspect", signed, "--output", "json")
	r.want(t, 0)
	var ins inspectResult
	decodeEnvelope(t, r.stdout, "", &ins)
	if ins.Account != accountKey || ins.Module != moduleKey || ins.Actor != moduleKey || ins.Expires != "never" || ins.CanBeUsed != "immediately" ||
		ins.Version != "0.1.0" || ins.Revision != 7 || ins.CallAlias != "echo_service" || ins.Name != "echo" ||
		strings.Join(ins.Capabilities, ",") != "wasmcloud:httpserver,wasmcloud:keyvalue" || strings.Join(ins.Tags, ",") != "web,demo" || ins.Claims == nil {
		t.Fatalf("inspect json, wash's keys: %s", r.stdout)
	}
	c := ins.Claims
	w := c.Wascap
	if c.Issuer != accountKey || c.Subject != moduleKey || c.ID == "" || c.IssuedAt == 0 || w == nil ||
		w.Name != "echo" || w.Rev != 7 || w.Ver != "0.1.0" || w.CallAlias != "echo_service" ||
		strings.Join(w.Caps, ",") != "wasmcloud:httpserver,wasmcloud:keyvalue" || strings.Join(w.Tags, ",") != "web,demo" || len(w.Hash) != 64 {
		t.Errorf("inspect json: %s", r.stdout)
	}

	r = e.run("claims", "inspect", signed, "--jwt-only")
	r.want(t, 0)
	if token, _ := trust.ExtractClaimsJWT(mustRead(t, signed)); r.stdout != token+"\n" {
		t.Errorf("--jwt-only printed %q, want the token", r.stdout)
	}

	// Re-signing without --subject reuses the stored keys: same identity.
	r = e.run("claims", "sign", in, "-d", e.path("again.wasm"), "-o", "json", "--expires", "30", "--nbf", "0")
	r.want(t, 0)
	var flat signResult
	decodeEnvelope(t, r.stdout, "", &flat)
	if flat.Subject != moduleKey || flat.Issuer != accountKey || flat.Name != "echo" || flat.Destination != e.path("again.wasm") || flat.Capabilities == nil {
		t.Errorf("re-sign json: %+v (want sub %s, iss %s)", flat, moduleKey, accountKey)
	}
	if r = e.run("claims", "inspect", e.path("again.wasm")); !strings.Contains(r.stdout, "Expires      20") {
		t.Errorf("expiry not shown as a time:\n%s", r.stdout)
	}

	// Explicit keys: a seed inline and one in a file, nothing written to the keys dir.
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	mod, _ := trust.CreateKeyPair(lattice.KindModule)
	modFile := e.write("mod.nk", []byte(mod.Seed()))
	r = e.run("claims", "sign", in, "--name", "other", "--issuer", acct.Seed(), "--subject", modFile, "--destination", e.path("other.wasm"))
	r.want(t, 0)
	if !strings.Contains(r.stdout, mod.PublicKey()) || strings.Contains(r.stdout+r.stderr, mod.Seed()) || strings.Contains(r.stdout+r.stderr, acct.Seed()) {
		t.Errorf("explicit keys:\n%s%s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(keysDir, "other_module.nk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was written although --subject was given: %v", err)
	}
	e.run("claims", "inspect", e.path("other.wasm")).want(t, 0)
}

func TestCLIClaimsInspectFailures(t *testing.T) {
	e := newCLIEnv(t)
	module := testModule(t)
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	mod, _ := trust.CreateKeyPair(lattice.KindModule)
	sign := func(opts trust.SignActorOptions) []byte {
		signed, _, err := trust.SignActor(module, opts, acct, mod)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	signed := sign(trust.SignActorOptions{Name: "x"})
	token, err := trust.ExtractClaimsJWT(signed)
	if err != nil {
		t.Fatal(err)
	}
	stripped, err := trust.StripClaims(signed)
	if err != nil {
		t.Fatal(err)
	}
	tampered := trust.EmbedClaimsJWT(flipCodeByte(t, stripped), token)

	// A token whose signature is another account's.
	otherAcct, _ := trust.CreateKeyPair(lattice.KindAccount)
	parts := strings.Split(token, ".")
	otherSigned, _, _ := trust.SignActor(module, trust.SignActorOptions{Name: "x"}, otherAcct, mod)
	otherToken, _ := trust.ExtractClaimsJWT(otherSigned)
	badSig := trust.EmbedClaimsJWT(stripped, parts[0]+"."+parts[1]+"."+strings.Split(otherToken, ".")[2])

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"no claims", module, "no claims found in"},
		{"module hash mismatch", tampered, "module hash mismatch"},
		{"bad signature", badSig, "signature"},
		{"expired", sign(trust.SignActorOptions{Name: "x", Expires: time.Now().Add(-48 * time.Hour)}), "expired"},
		{"not yet valid", sign(trust.SignActorOptions{Name: "x", NotBefore: time.Now().Add(48 * time.Hour)}), "not valid yet"},
		{"not wasm", []byte("hello, world"), "not a WebAssembly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.write(strings.ReplaceAll(tt.name, " ", "_")+".wasm", tt.data)
			for _, args := range [][]string{{"claims", "inspect", p}, {"claims", "inspect", p, "--jwt-only"}} {
				r := e.run(args...)
				r.want(t, 1)
				if !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "latticed: ") {
					t.Errorf("%v: stderr %q, want it to contain %q", args, r.stderr, tt.want)
				}
				if r.stdout != "" || strings.Contains(r.stderr, "for usage.") {
					t.Errorf("%v: an operation failure prints no output or usage: stdout %q stderr %q", args, r.stdout, r.stderr)
				}
			}
			// Under --output json the failure is wash's error envelope.
			r := e.run("claims", "inspect", p, "--output", "json")
			r.want(t, 1)
			if msg := errorEnvelope(t, r); !strings.Contains(msg, tt.want) {
				t.Errorf("claims inspect --output json: error %q, want it to contain %q", msg, tt.want)
			}
		})
	}
	if r := e.run("claims", "inspect", e.path("no-such.wasm")); r.code != 1 {
		t.Errorf("missing file: exit %d, want 1", r.code)
	}
}

// flipCodeByte returns a copy of module with one byte in the middle of its
// code section (id 10) changed.
func flipCodeByte(t *testing.T, module []byte) []byte {
	t.Helper()
	out := append([]byte(nil), module...)
	for off := 8; off < len(out); {
		id := out[off]
		var size, shift, n int
		for {
			b := out[off+1+n]
			size |= int(b&0x7f) << shift
			shift += 7
			n++
			if b&0x80 == 0 {
				break
			}
		}
		start := off + 1 + n
		if id == 10 {
			out[start+size/2] ^= 0xff
			return out
		}
		off = start + size
	}
	t.Fatal("no code section")
	return nil
}

func TestCLIHelp(t *testing.T) {
	e := newCLIEnv(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"keys", "claims", "LATTICED_DATA_DIR", "Exit status"}},
		{[]string{"keys", "gen", "--help"}, []string{"--output", "account, cluster, module, server, operator, user, service"}},
		{[]string{"keys", "inspect", "--help"}, []string{"--output", "never printed"}},
		{[]string{"keys", "show", "--help"}, []string{"--output", "--data-dir", "LATTICED_DATA_DIR", "keys/cluster.nk", "never the seed"}},
		{[]string{"keys", "--help"}, []string{"show", "list"}},
		{[]string{"keys", "list", "--help"}, []string{"--keys-dir", "-d, --directory", "WASH_KEYS", "$HOME/.wash/keys", "never printed"}},
		{[]string{"claims", "sign", "--help"}, []string{"--destination", "--name", "--cap", "--tag", "--rev", "--ver", "--call-alias",
			"--issuer", "--subject", "--expires-in-days", "--not-before-days", "--keys-dir", "--output", "LATTICED_DATA_DIR",
			filepath.Join(e.dataDir, "keys"), "--directory", "--disable-keygen", "WASH_KEYS", "$HOME/.wash/keys",
			"WASH_ISSUER_KEY", "WASH_SUBJECT_KEY", "<user>_account.nk", "<stem>_module.nk", "USER"}},
		{[]string{"par", "create", "--help"}, []string{"--keys-dir", "--directory", "--disable-keygen", "WASH_KEYS",
			"<user>_account.nk", "<stem>_service.nk", "first --binary"}},
		{[]string{"claims", "inspect", "--help"}, []string{"--jwt-only", "--output", "module hash mismatch"}},
		{[]string{"claims"}, []string{"sign", "inspect"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run(tt.args...)
			r.want(t, 0)
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestCLIUsageErrors(t *testing.T) {
	e := newCLIEnv(t)
	in := e.write("x.wasm", testModule(t))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"kyes"}, "did you mean keys?"},
		{[]string{"keys", "nosuch"}, `unknown command "nosuch" for "latticed keys"`},
		{[]string{"keys", "gen"}, "missing argument <kind>"},
		{[]string{"keys", "gen", "user", "extra"}, "too many arguments"},
		{[]string{"keys", "gen", "user", "--output", "yaml"}, "want json or text"},
		{[]string{"keys", "gen", "user", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"claims", "inspect"}, "missing argument <module.wasm>"},
		{[]string{"claims", "sign", in, "--rev", "x"}, "--rev"},
		{[]string{"claims", "sign", in, "--rev", "-1"}, "--rev must not be negative"},
		{[]string{"claims", "sign", in, "--cap", "httpserver"}, `--cap "httpserver": a capability contract id is namespace:name, e.g. wasmcloud:httpserver`},
		{[]string{"claims", "sign", in, "-c", "wasmcloud:"}, `--cap "wasmcloud:": a capability contract id is namespace:name`},
		{[]string{"claims", "sign", in, "-o", "out.wasm"}, "-o is the output format; the file to write is -d/--destination"},
		{[]string{"claims", "sign", in, "--expires-in-days", "0"}, "--expires-in-days must be positive"},
		{[]string{"claims", "sign", in, "--issuer", vectorSeed}, "want an account seed (SA…), got a cluster seed"},
		{[]string{"claims", "sign", in, "--subject", vectorPub}, "is a public key"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run(tt.args...)
			r.want(t, 2)
			// The error and one line pointing to --help: the whole usage
			// text would bury the line that matters.
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "latticed: ") || !strings.Contains(lines[0], tt.want) ||
				!strings.HasPrefix(lines[1], "Run 'latticed ") || !strings.HasSuffix(lines[1], " --help' for usage.") {
				t.Errorf("stderr %q, want latticed: …%s… and a line pointing to --help", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr, vectorSeed) {
				t.Errorf("usage error echoes a seed")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "keys")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("usage errors must not generate keys: %v", err)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func readKeyFile(t *testing.T, path string, kind lattice.KeyKind) string {
	t.Helper()
	kp, err := trust.ParseSeedOfKind(string(mustRead(t, path)), kind)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return kp.PublicKey()
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCLIWashSpellings: an operator who knows wash types its flag
// spellings; each is accepted and means what it means in wash.
func TestCLIWashSpellings(t *testing.T) {
	e := newCLIEnv(t)
	bin := e.write("provider", []byte("#!/bin/sh\n"))
	dest := e.path("p.par.gz")
	r := e.run("par", "create", "--capid", "wasmcloud:test", "--name", "T", "--vendor", "acme", "--revision", "3",
		"--arch", "x86_64-linux", "--binary", bin, "--destination", dest, "-o", "json")
	r.want(t, 0)
	var p parSummary
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("par create -o json: %v\n%s", err, r.stdout)
	}
	if p.ContractID != "wasmcloud:test" || p.Rev != 3 || strings.Join(p.Targets, ",") != "x86_64-linux" || p.Path != dest {
		t.Errorf("par create with wash spellings: %+v", p)
	}
	r = e.run("par", "create", "--capid", "wasmcloud:test", "--name", "T", "--vendor", "acme",
		"--arch", "x86_64-linux", "--binary", "x86_64-linux="+bin, "--destination", e.path("q.par.gz"))
	r.want(t, 2)
	if !strings.Contains(r.stderr, "--arch x86_64-linux names the target of exactly one --binary <file>") {
		t.Errorf("--arch with target=file: %s", r.stderr)
	}

	r = e.run("--version")
	r.want(t, 0)
	if !strings.HasPrefix(r.stdout, "latticed ") || !strings.Contains(r.stdout, "commit") {
		t.Errorf("--version printed %q", r.stdout)
	}
}

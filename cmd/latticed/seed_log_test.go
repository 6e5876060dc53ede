package main

import (
	"crypto/ed25519"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// secretEncodings returns the forms in which a seed could be spotted in a
// log: the seed as text (either case), its raw key bytes and the Ed25519
// private key, each as hex, base32 and base64 (standard and URL alphabets).
// Base64 of the seed embedded in a larger blob depends on its alignment, so
// each of the three alignments is included, trimmed of the characters a
// neighbour could change.
func secretEncodings(t *testing.T, seed string) map[string]string {
	t.Helper()
	_, raw, err := nkeys.DecodeSeed([]byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(raw)
	enc := map[string]string{"seed": seed, "seed (lower case)": strings.ToLower(seed)}
	for name, b := range map[string][]byte{"seed text": []byte(seed), "raw seed": raw, "private key": priv} {
		enc[name+" as hex"] = hex.EncodeToString(b)
		enc[name+" as base32"] = strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")
		for _, e := range []struct {
			name string
			enc  *base64.Encoding
		}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
			for shift := range 3 {
				s := e.enc.EncodeToString(append(make([]byte, shift), b...))
				s = strings.TrimRight(s, "=")
				if shift > 0 {
					s = s[4:] // the first quantum mixes in the bytes before
				}
				s = s[:len(s)-4] // and the last one the bytes after
				enc[name+" as "+e.name+" at offset "+strconv.Itoa(shift)] = s
			}
		}
	}
	return enc
}

// A real `latticed up` with a fresh data dir generates the lattice's cluster
// key: its whole output (debug level) names the public key and the file
// holding the seed, and carries the seed in no encoding. `latticed keys show
// cluster` then prints that seed on demand.
func TestUpNeverLogsTheClusterSeed(t *testing.T) {
	e := newCtlEnv(t, map[string]string{
		"LATTICED_NATS_LISTEN":     "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"LATTICED_METRICS_ADDR":    "127.0.0.1:0",
		"LATTICED_LOG_LEVEL":       "debug",
		"WASMCLOUD_LATTICE_PREFIX": "seedlog",
	})
	up := exec.Command(binPath, "up")
	up.Env = append(os.Environ(), "HOME="+filepath.Join(filepath.Dir(e.dataDir), "home"), "LATTICED_DATA_DIR="+e.dataDir, "LATTICED_CONSOLE_ADDR=")
	for k, v := range e.env {
		up.Env = append(up.Env, k+"="+v)
	}
	var logs lockedBuf
	up.Stdout, up.Stderr = &logs, &logs
	up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = up.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = up.Process.Kill()
			<-exited
			t.Error("latticed up did not stop on SIGTERM")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("latticed up logs:\n%s", logs.String())
		}
	})

	// Up and serving: every start-up line has been written.
	testenv.CheckFor(t, 90*time.Second, 100*time.Millisecond, func() error {
		select {
		case err := <-exited:
			t.Fatalf("latticed up exited early: %v", err)
		default:
		}
		r := e.run("ctl", "get", "hosts", "--timeout", "500ms", "--output", "json")
		if r.code != 0 || !strings.Contains(r.stdout, `"id"`) {
			return errors.New("no host answers yet")
		}
		return nil
	})
	stop() // and the shutdown lines too

	seedFile := datadir.Path(e.dataDir, datadir.ClusterSeedFile)
	checkMode(t, seedFile, 0o600)
	seed := strings.TrimSpace(string(mustRead(t, seedFile)))
	pub := readKeyFile(t, seedFile, lattice.KindCluster)
	out := logs.String()
	for name, s := range secretEncodings(t, seed) {
		if strings.Contains(out, s) {
			t.Errorf("the log of latticed up carries the cluster seed (%s)", name)
		}
	}
	mustContain(t, "the log of latticed up", out, pub, seedFile, "latticed keys show cluster")

	// The seed, on demand, in both output formats.
	r := e.run("keys", "show", "cluster")
	r.want(t, 0)
	mustContain(t, "keys show cluster", r.stdout, "Public Key: "+pub, "Seed: "+seed, "File: "+seedFile)
	var js storedKeyJSON
	r = e.run("keys", "show", "cluster", "--output", "json")
	r.want(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("keys show cluster --output json: %v\n%s", err, r.stdout)
	}
	if want := (storedKeyJSON{Kind: "cluster", PublicKey: pub, Seed: seed, File: seedFile}); js != want {
		t.Errorf("keys show cluster --output json = %+v, want %+v", js, want)
	}
}

// keys show reads only what the node wrote: it never creates a key, refuses
// a file others can read or one holding another kind of seed, and never
// echoes a file's content in its errors.
func TestCLIKeysShowFailures(t *testing.T) {
	account, err := trust.CreateKeyPair(lattice.KindAccount)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string // written to keys/cluster.nk unless empty
		mode    os.FileMode
		args    []string
		code    int
		want    string
	}{
		{name: "no key yet", args: []string{"cluster"}, code: 1, want: "no such key file"},
		{name: "readable by others", content: vectorSeed, mode: 0o644, args: []string{"cluster"}, code: 1, want: "readable by others"},
		{name: "another kind of seed", content: account.Seed(), mode: 0o600, args: []string{"cluster"}, code: 1, want: "keys/cluster.nk"},
		{name: "unknown key", args: []string{"module"}, code: 2, want: `unknown key "module"`},
		{name: "no argument", args: nil, code: 2, want: "missing argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCLIEnv(t)
			seedFile := datadir.Path(e.dataDir, datadir.ClusterSeedFile)
			if tt.content != "" {
				if err := datadir.WriteSecret(seedFile, []byte(tt.content+"\n")); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(seedFile, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			r := e.run(append([]string{"keys", "show"}, tt.args...)...)
			r.want(t, tt.code)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.want)
			}
			if tt.content != "" && (strings.Contains(r.stdout+r.stderr, tt.content)) {
				t.Errorf("an error echoes the seed in the file")
			}
			if tt.content == "" {
				if _, err := os.Stat(filepath.Join(e.dataDir, "keys")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("keys show must not create keys: %v", err)
				}
			}
		})
	}
}

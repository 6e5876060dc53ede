package datadir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latticed/latticed/lattice"
)

// mode is path's permission bits, with fs.ModeDir for a directory.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode() & (fs.ModePerm | fs.ModeDir)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLoadOrCreateKey: a key is created once (0600 in a 0700 dir), then
// read back; the file holds the bare seed, as wash writes it; a file of another kind or one others can read is refused and
// left alone.
func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "x_module.nk")

	kp, created, err := LoadOrCreateKey(path, lattice.KindModule)
	if err != nil || !created || kp.Kind() != lattice.KindModule {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("%s: mode %v, want %v", path, got, fs.FileMode(0o600))
	}
	if got := mode(t, dir); got != 0o700|fs.ModeDir {
		t.Errorf("%s: mode %v, want %v", dir, got, fs.FileMode(0o700|fs.ModeDir))
	}

	if got := readFile(t, path); got != kp.Seed() {
		t.Errorf("%s holds %d bytes, want the bare seed (no newline: wash and nkeys read it)", path, len(got))
	}

	again, created, err := LoadOrCreateKey(path, lattice.KindModule)
	if err != nil || created || again.PublicKey() != kp.PublicKey() {
		t.Fatalf("reuse: %v created=%v", err, created)
	}

	if _, _, err := LoadOrCreateKey(path, lattice.KindAccount); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("wrong kind: %v, want an error naming the file", err)
	}
	if got := strings.TrimSpace(readFile(t, path)); got != kp.Seed() {
		t.Error("the key file was changed")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadOrCreateKey(path, lattice.KindModule)
	if !errors.Is(err, ErrKeyExposed) || strings.Contains(err.Error(), kp.Seed()) {
		t.Fatalf("readable by others: %v, want ErrKeyExposed without the seed", err)
	}
	if got := strings.TrimSpace(readFile(t, path)); got != kp.Seed() {
		t.Error("the exposed key file was changed")
	}
}

// TestLoadOrCreateKeyConcurrently: processes starting together on one data
// dir agree on one key; none overwrites the key another already uses.
func TestLoadOrCreateKeyConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "cluster.nk")
	const n = 8
	pubs := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kp, c, err := LoadOrCreateKey(path, lattice.KindCluster)
			if err != nil {
				t.Error(err)
				return
			}
			pubs[i], created[i] = kp.PublicKey(), c
		}()
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if pubs[i] != pubs[0] {
			t.Errorf("caller %d got key %s, caller 0 %s", i, pubs[i], pubs[0])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers say they created the key, want 1", creators)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("files left beside the key: %v", entries)
	}
}

// TestWriteFile: the content is replaced whole, with the mode asked for,
// and no temporary file stays behind, also when writers race.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, p); got != 0o644 {
		t.Errorf("%s: mode %v, want %v", p, got, fs.FileMode(0o644))
	}
	if got := readFile(t, p); got != "new" {
		t.Errorf("content %q, want new", got)
	}

	// Writers of one path never share a temporary file: each rename
	// installs one writer's whole content.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := WriteFile(p, []byte(strings.Repeat(string(rune('a'+i)), 1<<16)), 0o644); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := readFile(t, p)
	if len(got) != 1<<16 || strings.Count(got, got[:1]) != len(got) {
		t.Errorf("content mixes writers (%d bytes)", len(got))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}

	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// TestWriteSecret: 0600 in a 0700 directory it creates, replacing what
// was there whole, with no temporary file left; the same for a secret of
// one run (WriteRunSecret), which only skips the syncs.
func TestWriteSecret(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(string, []byte) error
	}{
		{"WriteSecret", WriteSecret},
		{"WriteRunSecret", WriteRunSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "creds", "admin.creds")
			for _, content := range []string{"secret", "the next run's secret"} {
				if err := tc.write(p, []byte(content)); err != nil {
					t.Fatal(err)
				}
				if got := readFile(t, p); got != content {
					t.Errorf("content %q, want %q", got, content)
				}
			}
			if got := mode(t, p); got != 0o600 {
				t.Errorf("%s: mode %v, want %v", p, got, fs.FileMode(0o600))
			}
			if got := mode(t, filepath.Dir(p)); got != 0o700|fs.ModeDir {
				t.Errorf("%s: mode %v, want %v", filepath.Dir(p), got, fs.FileMode(0o700|fs.ModeDir))
			}
			if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
				t.Errorf("temporary files left: %v", entries)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	if got := Path("/var/lib/latticed", ClusterSeedFile); got != "/var/lib/latticed/keys/cluster.nk" {
		t.Errorf("Path = %q", got)
	}
	if got := AdminSocket("/d", ""); got != "/d/run/admin.sock" {
		t.Errorf("AdminSocket default = %q", got)
	}
	if got := AdminSocket("/d", "/tmp/a.sock"); got != "/tmp/a.sock" {
		t.Errorf("AdminSocket configured = %q", got)
	}
}

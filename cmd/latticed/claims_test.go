package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
)

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		name               string
		dataDir, xdg, home string
		want               string
		wantErr            bool
	}{
		{"explicit", "/srv/lattice/", "/xdg", "/home/x", "/srv/lattice", false},
		{"xdg", "", "/xdg", "/home/x", "/xdg/latticed", false},
		{"relative xdg is ignored", "", "rel", "/home/x", "/home/x/.local/share/latticed", false},
		{"home", "", "", "/home/x", "/home/x/.local/share/latticed", false},
		{"nothing", "", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LATTICED_DATA_DIR", tt.dataDir)
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := defaultDataDir()
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("defaultDataDir() = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestKeyFileName(t *testing.T) {
	for _, tt := range []struct {
		name string
		kind lattice.KeyKind
		want string
	}{
		{"echo", lattice.KindModule, "echo_module.nk"},
		{"echo-v2.1", lattice.KindAccount, "echo-v2.1_account.nk"},
		{"My Actor/../x", lattice.KindModule, "My_Actor_.._x_module.nk"},
		{"..", lattice.KindModule, "actor_module.nk"},
		{"", lattice.KindAccount, "actor_account.nk"},
	} {
		if got := keyFileName(tt.name, tt.kind); got != tt.want {
			t.Errorf("keyFileName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "x_module.nk")

	kp, created, err := loadOrCreateKey(path, lattice.KindModule)
	if err != nil || !created || kp.Kind() != lattice.KindModule {
		t.Fatalf("create: %v created=%v", err, created)
	}
	checkMode(t, path, 0o600)
	checkMode(t, dir, 0o700|os.ModeDir)

	again, created, err := loadOrCreateKey(path, lattice.KindModule)
	if err != nil || created || again.PublicKey() != kp.PublicKey() {
		t.Fatalf("reuse: %v created=%v", err, created)
	}

	// A file of the wrong kind is an error and is left alone.
	if _, _, err := loadOrCreateKey(path, lattice.KindAccount); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("wrong kind: %v", err)
	}
	if got := strings.TrimSpace(string(mustRead(t, path))); got != kp.Seed() {
		t.Error("the key file was changed")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkMode(t, p, 0o644)
	if string(mustRead(t, p)) != "new" {
		t.Error("content not replaced")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

package main

import (
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

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestReadKeyArg(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	user, _ := trust.CreateKeyPair(lattice.KindUser)
	creds := "-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n" +
		"************************* IMPORTANT *************************\n" +
		"-----BEGIN USER NKEY SEED-----\n" + user.Seed() + "\n------END USER NKEY SEED------\n"

	tests := []struct {
		name, arg, stdin string
		kind             lattice.KeyKind
		pub              string
		seed             bool
	}{
		{"inline seed", vectorSeed, "", lattice.KindCluster, vectorPub, true},
		{"inline seed with spaces", " " + vectorSeed + "\n", "", lattice.KindCluster, vectorPub, true},
		{"inline public key", vectorPub, "", lattice.KindCluster, vectorPub, false},
		{"seed file", file("c.nk", vectorSeed+"\n"), "", lattice.KindCluster, vectorPub, true},
		{"public key file", file("c.pub", vectorPub), "", lattice.KindCluster, vectorPub, false},
		{"creds file", file("u.creds", creds), "", lattice.KindUser, user.PublicKey(), true},
		{"stdin", "-", vectorSeed + "\n", lattice.KindCluster, vectorPub, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := readKeyArg(strings.NewReader(tt.stdin), tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			if k.kind != tt.kind || k.pub != tt.pub || (k.pair != nil) != tt.seed {
				t.Errorf("got %s %s seed=%v, want %s %s seed=%v", k.kind, k.pub, k.pair != nil, tt.kind, tt.pub, tt.seed)
			}
		})
	}

	failures := []struct {
		name, arg string
		usage     bool
	}{
		{"malformed inline seed", vectorSeed[:57] + "A" + "A", true},
		{"missing file", filepath.Join(dir, "nope.nk"), false},
		{"file without a key", file("junk", "hello\n"), false},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readKeyArg(strings.NewReader(""), tt.arg)
			var ue usageError
			if err == nil || errors.As(err, &ue) != tt.usage {
				t.Fatalf("err %v, want usage error %v", err, tt.usage)
			}
			if strings.Contains(err.Error(), vectorSeed[:40]) {
				t.Errorf("error echoes the seed: %v", err)
			}
		})
	}
}

func TestLoadSeed(t *testing.T) {
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	if kp, err := loadSeed(nil, "issuer", acct.Seed(), lattice.KindAccount); err != nil || kp.PublicKey() != acct.PublicKey() {
		t.Fatalf("account seed: %v", err)
	}
	for _, tt := range []struct{ arg, want string }{
		{vectorSeed, "--issuer: want an account seed (SA…), got a cluster seed"},
		{acct.PublicKey(), "is a public key"},
	} {
		_, err := loadSeed(nil, "issuer", tt.arg, lattice.KindAccount)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("loadSeed: %v, want usage error %q", err, tt.want)
		}
	}
}

func TestLooksLikeKey(t *testing.T) {
	for s, want := range map[string]bool{
		vectorSeed: true, vectorPub: true, "keys/cluster.nk": false, "": false,
		strings.ToLower(vectorSeed): false, "/tmp/" + vectorSeed: false,
	} {
		if got := looksLikeKey(s); got != want {
			t.Errorf("looksLikeKey(%q) = %v", s, got)
		}
	}
}

package trust

import (
	"errors"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
)

func TestKeyPairsOfEveryKindRoundTripAndSign(t *testing.T) {
	for _, kind := range lattice.KeyKinds {
		t.Run(kind.String(), func(t *testing.T) {
			kp, err := CreateKeyPair(kind)
			if err != nil {
				t.Fatal(err)
			}
			if kp.Kind() != kind || !lattice.IsPublicKey(kp.PublicKey(), kind) {
				t.Fatalf("%s key %s", kp.Kind(), kp.PublicKey())
			}
			back, err := ParseSeedOfKind(kp.Seed(), kind)
			if err != nil || back.PublicKey() != kp.PublicKey() || back.Seed() != kp.Seed() {
				t.Fatalf("round trip: %v", err)
			}
			sig := kp.Sign([]byte("hello"))
			if err := Verify(kp.PublicKey(), []byte("hello"), sig); err != nil {
				t.Fatal(err)
			}
			if err := Verify(kp.PublicKey(), []byte("hellO"), sig); !errors.Is(err, ErrBadSig) {
				t.Fatalf("tampered data verified: %v", err)
			}
		})
	}
	if _, err := CreateKeyPair(lattice.KeyKind(1)); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestParseSeedRejects(t *testing.T) {
	acct := mustKey(t, lattice.KindAccount)
	cluster := mustKey(t, lattice.KindCluster)
	for name, tc := range map[string]struct {
		seed string
		kind lattice.KeyKind
		want error
	}{
		"public key": {cluster.PublicKey(), lattice.KindCluster, lattice.ErrInvalidSeed},
		"empty":      {"", lattice.KindCluster, lattice.ErrInvalidSeed},
		"wrong kind": {acct.Seed(), lattice.KindCluster, ErrWrongKind},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSeedOfKind(tc.seed, tc.kind)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.seed != "" && strings.Contains(err.Error(), tc.seed) {
				t.Fatal("error message echoes the seed")
			}
		})
	}
}

func TestDerivedKeysAreStableDistinctServiceKeys(t *testing.T) {
	a, b := DerivedServiceKey("one"), DerivedServiceKey("two")
	if !lattice.IsPublicKey(a, lattice.KindService) || a != DerivedServiceKey("one") || a == b {
		t.Fatalf("%s %s", a, b)
	}
	if f := FileProviderKey([32]byte{1}); !lattice.IsPublicKey(f, lattice.KindService) || f == FileProviderKey([32]byte{2}) {
		t.Fatalf("file key %s", f)
	}
}

package lattice

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

// Published test vector from the wasmCloud docs (a documentation key, not a secret).
const (
	docClusterSeed = "SCABNLVRXGEJEG5FBBPMMKMMY37FNKVLDY6YXHVL6WA4IRBEYD6ACIQKV4"
	docClusterPub  = "CDMTUBVGADIQZFWBUZL7LEF7YHZF6CPSKO3HLOTLBQFY2FHDLZFAMYMD"
	// A module key found in a real actor's claims.
	realModuleKey = "MCRACEYKJLCP7NLVMUTO2SCQ26JFL3Z4TBIXPXDE7KPBI2GEH5DA57L5"
)

func TestParseSeedMatchesDocTestVector(t *testing.T) {
	kp, err := ParseSeed(docClusterSeed)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Kind() != KindCluster || kp.PublicKey() != docClusterPub {
		t.Fatalf("got %s %s, want cluster %s", kp.Kind(), kp.PublicKey(), docClusterPub)
	}
	if kp.Seed() != docClusterSeed {
		t.Fatal("seed does not round-trip")
	}
}

func TestDecodePublicKeyAcceptsRealModuleKey(t *testing.T) {
	kind, raw, err := DecodePublicKey(realModuleKey)
	if err != nil || kind != KindModule || len(raw) != 32 {
		t.Fatalf("kind %v len %d err %v", kind, len(raw), err)
	}
}

func TestKeysOfEveryKindHaveTheirLetterAndRoundTrip(t *testing.T) {
	letters := map[KeyKind]string{KindAccount: "A", KindCluster: "C", KindModule: "M", KindServer: "N",
		KindOperator: "O", KindUser: "U", KindService: "V"}
	for _, kind := range KeyKinds {
		t.Run(kind.String(), func(t *testing.T) {
			kp, err := CreateKeyPair(kind)
			if err != nil {
				t.Fatal(err)
			}
			pub, seed := kp.PublicKey(), kp.Seed()
			if len(pub) != 56 || !strings.HasPrefix(pub, letters[kind]) {
				t.Fatalf("public key %s", pub)
			}
			if len(seed) != 58 || !strings.HasPrefix(seed, "S"+letters[kind]) {
				t.Fatalf("seed has prefix %s", seed[:2])
			}
			back, err := ParseSeedOfKind(seed, kind)
			if err != nil || back.PublicKey() != pub {
				t.Fatalf("round trip: %v", err)
			}
			sig := kp.Sign([]byte("hello"))
			if err := Verify(pub, []byte("hello"), sig); err != nil {
				t.Fatal(err)
			}
			if err := Verify(pub, []byte("hellO"), sig); !errors.Is(err, ErrBadSig) {
				t.Fatalf("tampered data verified: %v", err)
			}
		})
	}
}

// nkeys is the reference implementation for the kinds it knows.
func TestEncodingAgreesWithNkeys(t *testing.T) {
	for _, kind := range []KeyKind{KindAccount, KindCluster, KindServer, KindOperator, KindUser} {
		kp, _ := CreateKeyPair(kind)
		nk, err := nkeys.FromSeed([]byte(kp.Seed()))
		if err != nil {
			t.Fatalf("%s: nkeys rejects our seed: %v", kind, err)
		}
		pub, _ := nk.PublicKey()
		if pub != kp.PublicKey() {
			t.Fatalf("%s: nkeys says %s, we say %s", kind, pub, kp.PublicKey())
		}
	}
}

func TestParseSeedRejects(t *testing.T) {
	acct, _ := CreateKeyPair(KindAccount)
	corrupt := []byte(docClusterSeed)
	corrupt[20] ^= 1
	for name, tc := range map[string]struct {
		seed string
		kind KeyKind
		want error
	}{
		"public key":   {docClusterPub, KindCluster, ErrInvalidSeed},
		"bad checksum": {string(corrupt), KindCluster, ErrInvalidSeed},
		"empty":        {"", KindCluster, ErrInvalidSeed},
		"wrong kind":   {acct.Seed(), KindCluster, ErrWrongKind},
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

func TestParseKeyKind(t *testing.T) {
	for _, k := range KeyKinds {
		got, err := ParseKeyKind(strings.ToUpper(k.String()))
		if err != nil || got != k {
			t.Fatalf("%s: %v %v", k, got, err)
		}
	}
	if _, err := ParseKeyKind("wallet"); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestBuiltinProviderKeysAreStableServiceKeys(t *testing.T) {
	for _, b := range BuiltinProviders {
		k := b.Key()
		if !IsPublicKey(k, KindService) || k != b.Key() {
			t.Fatalf("%s: %s", b.Name, k)
		}
		got, ok := LookupBuiltin(b.Ref())
		if !ok || got.Key() != k {
			t.Fatalf("lookup %s", b.Ref())
		}
	}
	if BuiltinProviders[0].Key() == BuiltinProviders[1].Key() {
		t.Fatal("built-ins share a key")
	}
	if _, ok := LookupBuiltin("builtin:nope"); ok {
		t.Fatal("unknown builtin found")
	}
}

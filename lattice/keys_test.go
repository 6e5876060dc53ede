package lattice

import (
	"crypto/ed25519"
	"crypto/rand"
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

// testPublicKey is a fresh, well-formed public key of the given role.
func testPublicKey(t testing.TB, kind KeyKind) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return EncodePublicKey(kind, pub)
}

func TestSeedEncodingMatchesDocTestVector(t *testing.T) {
	kind, seed, err := DecodeSeed(docClusterSeed)
	if err != nil {
		t.Fatal(err)
	}
	pub := EncodePublicKey(kind, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	if kind != KindCluster || pub != docClusterPub {
		t.Fatalf("got %s %s, want cluster %s", kind, pub, docClusterPub)
	}
	if EncodeSeed(kind, seed) != docClusterSeed {
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
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			enc, seed := EncodePublicKey(kind, pub), EncodeSeed(kind, priv.Seed())
			if len(enc) != 56 || !strings.HasPrefix(enc, letters[kind]) || enc[0] != kind.Letter() {
				t.Fatalf("public key %s", enc)
			}
			if len(seed) != 58 || !strings.HasPrefix(seed, "S"+letters[kind]) {
				t.Fatalf("seed has prefix %s", seed[:2])
			}
			if k, back, err := DecodePublicKey(enc); err != nil || k != kind || !back.Equal(pub) {
				t.Fatalf("public key round trip: %v", err)
			}
			if k, back, err := DecodeSeed(seed); err != nil || k != kind || string(back) != string(priv.Seed()) {
				t.Fatalf("seed round trip: %v", err)
			}
		})
	}
}

// nkeys is the reference implementation for the kinds it knows.
func TestEncodingAgreesWithNkeys(t *testing.T) {
	for _, kind := range []KeyKind{KindAccount, KindCluster, KindServer, KindOperator, KindUser} {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		nk, err := nkeys.FromSeed([]byte(EncodeSeed(kind, priv.Seed())))
		if err != nil {
			t.Fatalf("%s: nkeys rejects our seed: %v", kind, err)
		}
		if got, _ := nk.PublicKey(); got != EncodePublicKey(kind, pub) {
			t.Fatalf("%s: nkeys says %s, we say %s", kind, got, EncodePublicKey(kind, pub))
		}
	}
}

func TestDecodeRejectsMalformedKeys(t *testing.T) {
	corrupt := []byte(docClusterSeed)
	corrupt[20] ^= 1
	for name, tc := range map[string]struct {
		decode func(string) error
		in     string
		want   error
	}{
		"public key as seed":   {seedErr, docClusterPub, ErrInvalidSeed},
		"seed bad checksum":    {seedErr, string(corrupt), ErrInvalidSeed},
		"empty seed":           {seedErr, "", ErrInvalidSeed},
		"seed as public key":   {pubErr, docClusterSeed, ErrInvalidKey},
		"public key truncated": {pubErr, docClusterPub[:55], ErrInvalidKey},
		"public key altered":   {pubErr, "CDMTUBVGADIQZFWBUZL7LEF7YHZF6CPSKO3HLOTLBQFY2FHDLZFAMYMA", ErrInvalidKey},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Fatal("error message echoes the input")
			}
		})
	}
}

func seedErr(s string) error { _, _, err := DecodeSeed(s); return err }
func pubErr(s string) error  { _, _, err := DecodePublicKey(s); return err }

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

// TestCheckPublicKeySaysWhatIsWrong: each way a pasted key goes wrong gets
// its own message, so a mistyped character is not reported as a wrong
// length (first-hour report), and no message echoes the input.
func TestCheckPublicKeySaysWhatIsWrong(t *testing.T) {
	mistyped := []byte(realModuleKey)
	mistyped[30] = map[bool]byte{true: 'B', false: 'A'}[mistyped[30] == 'A']
	for _, tc := range []struct {
		name, in string
		kind     KeyKind
		want     string // "" = valid
	}{
		{"good module key", realModuleKey, KindModule, ""},
		{"good cluster key", docClusterPub, KindCluster, ""},
		{"checksum", string(mistyped), KindModule, "checksum does not match: a character is mistyped"},
		{"too short", realModuleKey[:55], KindModule, "it has 55 characters; a module key is 56 characters starting with M"},
		{"lower case", strings.ToLower(realModuleKey), KindModule, "character 1 is 'm', but keys use only A-Z and 2-7"},
		{"other role", docClusterPub, KindModule, "it is a cluster key (C…), not a module key (M…)"},
		{"seed", docClusterSeed, KindModule, "it has 58 characters"},
		{"empty", "", KindServer, "it has 0 characters; a server key is 56 characters starting with N"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPublicKey(tc.in, tc.kind)
			if tc.want == "" {
				if err != nil || !IsPublicKey(tc.in, tc.kind) {
					t.Fatalf("valid key refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.want) || IsPublicKey(tc.in, tc.kind) {
				t.Fatalf("got %v, want ErrInvalidKey saying %q", err, tc.want)
			}
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Fatal("error message echoes the input")
			}
		})
	}
}

// crc16Bitwise is CRC-16/XMODEM as its definition reads, a bit at a time:
// what the table-driven crc16 must equal.
func crc16Bitwise(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestCRC16CheckValue(t *testing.T) {
	// The catalogued check value of CRC-16/XMODEM.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#04x, want 0x31c3", got)
	}
}

func FuzzCRC16(f *testing.F) {
	f.Add([]byte("123456789"))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := crc16(data), crc16Bitwise(data); got != want {
			t.Fatalf("crc16(% x) = %#04x, bitwise %#04x", data, got, want)
		}
	})
}

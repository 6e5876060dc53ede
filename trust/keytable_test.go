package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// keyFromSeed derives an Ed25519 key pair from any bytes (the fuzzer's).
func keyFromSeed(seed []byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	s := sha512.Sum512(seed)
	priv := ed25519.NewKeyFromSeed(s[:ed25519.SeedSize])
	return priv.Public().(ed25519.PublicKey), priv
}

// sameAsStdlib fails unless a key table of pub accepts sig over msg exactly
// when crypto/ed25519 does.
func sameAsStdlib(t *testing.T, pub ed25519.PublicKey, msg, sig []byte) {
	t.Helper()
	want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
	kt := newKeyTable(pub)
	if kt == nil {
		if want {
			t.Fatalf("no table for key %x, whose signature %x crypto/ed25519 accepts", pub, sig)
		}
		return
	}
	if got := kt.verify(msg, sig); got != want {
		t.Fatalf("key %x, message %x, signature %x: the table says %v, crypto/ed25519 %v", pub, msg, sig, got, want)
	}
}

// The table is another way to compute [S]B − [k]A: it must accept what
// crypto/ed25519 accepts and nothing else, for valid signatures, altered
// ones, and keys and signatures made up from nothing (points of small
// order, non-canonical encodings, S at or above the group order).
func FuzzKeyTableVerify(f *testing.F) {
	// Signed messages, then one bit of the signature flipped in each half.
	for i, msg := range []string{"", "a", "invocation claims", string(bytes.Repeat([]byte{0xff}, 300))} {
		f.Add([]byte(fmt.Sprint("key", i)), []byte(msg), []byte{}, false)
		f.Add([]byte(fmt.Sprint("key", i)), []byte(msg), append(make([]byte, 5), 1), false)
		f.Add([]byte(fmt.Sprint("key", i)), []byte(msg), append(make([]byte, 40), 0x80), false)
	}
	// Forged: the key and the signature as given.
	identity := append([]byte{1}, make([]byte, 31)...)
	order := mustHex(f, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010") // L, little-endian
	for _, c := range []struct{ pub, sig []byte }{
		{identity, append(append([]byte{}, identity...), make([]byte, 32)...)}, // R = identity, S = 0: crypto/ed25519 accepts it for this key
		{identity, append(append([]byte{}, identity...), order...)},            // S = L: not canonical
		{make([]byte, 32), make([]byte, 64)},
		{mustHex(f, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), make([]byte, 64)}, // y = p-1
		{mustHex(f, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), make([]byte, 64)}, // y = p+1, non-canonical
		{mustHex(f, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), make([]byte, 64)}, // a point of order 8
		{bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 64)},
	} {
		f.Add(c.pub, []byte("m"), c.sig, true)
	}
	f.Fuzz(func(t *testing.T, key, msg, sig []byte, forged bool) {
		if forged {
			pub := make([]byte, ed25519.PublicKeySize)
			copy(pub, key)
			s := make([]byte, ed25519.SignatureSize)
			copy(s, sig)
			sameAsStdlib(t, pub, msg, s)
			return
		}
		pub, priv := keyFromSeed(key)
		s := ed25519.Sign(priv, msg)
		for i, b := range sig { // the fuzzer's bytes alter the signature
			s[i%len(s)] ^= b
		}
		sameAsStdlib(t, pub, msg, s)
	})
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The signed recoding must give back the scalar, whatever its digits: a
// wrong digit would not show in the fuzz target above unless it happened to
// fall on a signature the fuzzer made.
func TestSignedDigitsRecodeTheScalar(t *testing.T) {
	sixteen := scalarOf(t, 16)
	for i := 0; i < 1000; i++ {
		var wide [64]byte
		sum := sha512.Sum512([]byte(fmt.Sprint(i)))
		copy(wide[:], sum[:])
		if i%4 == 0 { // scalars made of nibbles 0xf and 0x8, where the carries run longest
			for j := range wide {
				wide[j] = []byte{0xff, 0x88, 0x8f, 0xf8}[i/4%4]
			}
		}
		s, err := new(edwards25519.Scalar).SetUniformBytes(wide[:])
		if err != nil {
			t.Fatal(err)
		}
		e := signedDigits(s)
		got := edwards25519.NewScalar()
		for j := len(e) - 1; j >= 0; j-- {
			if e[j] < -8 || e[j] >= 8 {
				t.Fatalf("digit %d of %x is %d, outside [-8, 8)", j, s.Bytes(), e[j])
			}
			got.Multiply(got, sixteen)
			d := scalarOf(t, int64(e[j]))
			got.Add(got, d)
		}
		if got.Equal(s) != 1 {
			t.Fatalf("the digits of %x add up to %x", s.Bytes(), got.Bytes())
		}
	}
}

// scalarOf returns n as a scalar (n may be negative).
func scalarOf(t *testing.T, n int64) *edwards25519.Scalar {
	t.Helper()
	var b [32]byte
	m := n
	if m < 0 {
		m = -m
	}
	b[0], b[1] = byte(m), byte(m>>8)
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	if n < 0 {
		s.Negate(s)
	}
	return s
}

// Only keys that sign invocations which pass every check earn a table, and
// only after keyTableAfter of them; a key with a table still refuses a
// signature that is not its own.
func TestIssuersBuildTablesOnlyForKeysTheyTrust(t *testing.T) {
	f := newDelegFixture(t)
	stranger := mustKey(t, lattice.KindCluster)
	for i := 0; i < 2*keyTableAfter; i++ {
		if _, err := f.policy.Check(f.invoke(t, Signer{Key: stranger}, f.provider), f.actor); lattice.ReasonOf(err) != lattice.ReasonUnknownIssuer {
			t.Fatalf("invocation signed by an untrusted cluster key: %v", err)
		}
	}
	if f.policy.keys.lookup(stranger.PublicKey()) != nil {
		t.Fatal("a key nobody trusts got a table")
	}

	for name, s := range map[string]Signer{
		"cluster issuer":         {Key: f.cluster},
		"provider delegated key": {Key: f.signer, Delegation: f.token},
	} {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < keyTableAfter; i++ {
				if f.policy.keys.lookup(s.Key.PublicKey()) != nil {
					t.Fatalf("a table after %d invocations, want it after %d", i, keyTableAfter)
				}
				if _, err := f.policy.Check(f.invoke(t, s, f.provider), f.actor); err != nil {
					t.Fatal(err)
				}
			}
			if f.policy.keys.lookup(s.Key.PublicKey()) == nil {
				t.Fatalf("no table after %d invocations", keyTableAfter)
			}
			inv := f.invoke(t, s, f.provider)
			if _, err := f.policy.Check(inv, f.actor); err != nil {
				t.Fatalf("with its table: %v", err)
			}
			// The same claims with the signature of another key.
			forged := f.invoke(t, Signer{Key: stranger}, f.provider)
			inv.EncodedClaims = inv.EncodedClaims[:strings.LastIndexByte(inv.EncodedClaims, '.')] +
				forged.EncodedClaims[strings.LastIndexByte(forged.EncodedClaims, '.'):]
			if _, err := f.policy.Check(inv, f.actor); lattice.ReasonOf(err) != lattice.ReasonBadSignature {
				t.Fatalf("a signature by another key, checked with the table: %v", err)
			}
		})
	}
}

// The tables are bounded: past maxKeyTables the least recently used goes.
func TestKeyTablesKeepTheMostRecentlyUsed(t *testing.T) {
	var kt keyTables
	keys := make([]string, maxKeyTables+1)
	for i := range keys {
		keys[i] = mustKey(t, lattice.KindCluster).PublicKey()
	}
	for i, k := range keys[:maxKeyTables] {
		for j := 0; j < keyTableAfter; j++ {
			kt.trusted(k)
		}
		kt.lookup(k).used.Store(int64(i + 1)) // keys[0] is the least recently used
	}
	kt.lookup(keys[0]).used.Store(time.Now().UnixNano()) // until it is used again
	for j := 0; j < keyTableAfter; j++ {
		kt.trusted(keys[maxKeyTables])
	}
	if n := len(*kt.tables.Load()); n != maxKeyTables {
		t.Fatalf("%d tables, want %d", n, maxKeyTables)
	}
	for i, k := range keys {
		if has := kt.lookup(k) != nil; has != (i != 1) {
			t.Errorf("key %d has a table: %v, want %v (key 1 was the least recently used)", i, has, i != 1)
		}
	}
}

// BenchmarkVerify compares crypto/ed25519.Verify with a key table's verify of
// the same invocation token's signature.
func BenchmarkVerify(b *testing.B) {
	pub, priv := keyFromSeed([]byte("bench"))
	msg := make([]byte, 700) // about an invocation token's signing input
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		cpubench.Measure(b, func() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("refused")
			}
		})
	})
	b.Run("key-table", func(b *testing.B) {
		kt := newKeyTable(pub)
		cpubench.Measure(b, func() {
			if !kt.verify(msg, sig) {
				b.Fatal("refused")
			}
		})
	})
	b.Run("build-table", func(b *testing.B) {
		cpubench.Measure(b, func() { newKeyTable(pub) })
	})
}

// Invocations checked from many goroutines while their keys earn tables:
// every valid one passes, every forged one fails, and each key ends with one
// table.
func TestIssuersCheckConcurrentlyWhileTablesAreBuilt(t *testing.T) {
	f := newDelegFixture(t)
	signers := []Signer{{Key: f.cluster}, {Key: f.signer, Delegation: f.token}}
	stranger := mustKey(t, lattice.KindCluster)
	host := mustKey(t, lattice.KindServer).PublicKey()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3*keyTableAfter; i++ {
				s := signers[(g+i)%len(signers)]
				inv, err := s.NewInvocation(host, f.provider, lattice.ActorEntity(f.actor), wire.OpHTTPHandleRequest, []byte("x"))
				if err != nil {
					errs <- err
					return
				}
				if _, err := f.policy.Check(inv, f.actor); err != nil {
					errs <- fmt.Errorf("valid invocation %d of goroutine %d: %w", i, g, err)
					return
				}
				forged, _ := Signer{Key: stranger}.NewInvocation(inv.HostID, f.provider, lattice.ActorEntity(f.actor), wire.OpHTTPHandleRequest, []byte("x"))
				inv.ID = forged.ID
				inv.EncodedClaims = inv.EncodedClaims[:strings.LastIndexByte(inv.EncodedClaims, '.')] +
					forged.EncodedClaims[strings.LastIndexByte(forged.EncodedClaims, '.'):]
				if _, err := f.policy.Check(inv, f.actor); lattice.ReasonOf(err) != lattice.ReasonBadSignature {
					errs <- fmt.Errorf("forged invocation %d of goroutine %d: %v", i, g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range signers {
		if f.policy.keys.lookup(s.Key.PublicKey()) == nil {
			t.Errorf("no table for %s", s.Key.PublicKey())
		}
	}
	if n := len(*f.policy.keys.tables.Load()); n != len(signers) {
		t.Errorf("%d tables, want %d", n, len(signers))
	}
}

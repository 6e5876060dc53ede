package trust

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// testModule is a tiny valid core module: a type section and a function
// section, plus a custom "name"-like section that must be kept in the hash.
func testModule() []byte {
	m := append([]byte(nil), wasmHeader...)
	m = appendSection(m, 1, []byte{0x01, 0x60, 0x00, 0x00})  // type: () -> ()
	m = appendSection(m, 0, append([]byte{4}, "note"...))    // custom "note", empty
	m = appendSection(m, 3, []byte{0x01, 0x00})              // function: one func of type 0
	m = appendSection(m, 10, []byte{0x01, 0x02, 0x00, 0x0b}) // code: empty body
	return m
}

func signTestModule(t *testing.T, opts SignActorOptions) ([]byte, *KeyPair, *KeyPair) {
	t.Helper()
	acct, mod := mustKey(t, lattice.KindAccount), mustKey(t, lattice.KindModule)
	signed, _, err := SignActor(testModule(), opts, acct, mod)
	if err != nil {
		t.Fatal(err)
	}
	return signed, acct, mod
}

func TestSignedModuleVerifies(t *testing.T) {
	signed, acct, mod := signTestModule(t, SignActorOptions{Name: "echo", Caps: []string{wire.ContractHTTPServer}, Rev: 2, Ver: "0.1.0", CallAlias: "My Echo-1.x"})
	c, err := VerifyActor(signed, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != acct.PublicKey() || c.Subject != mod.PublicKey() {
		t.Fatal("wrong iss/sub")
	}
	if !c.Wascap.HasCapability(wire.ContractHTTPServer) || c.Wascap.HasCapability(wire.ContractKeyValue) {
		t.Fatal("caps wrong")
	}
	if c.Wascap.CallAlias != "my_echo_1_x" {
		t.Fatalf("call alias %q not normalised", c.Wascap.CallAlias)
	}
	if ActorRevision(c) != 2 {
		t.Fatal("revision")
	}
	if !bytes.HasPrefix(signed, StripOrFail(t, signed)) {
		t.Fatal("claims are not appended after all other sections")
	}
}

func StripOrFail(t *testing.T, m []byte) []byte {
	t.Helper()
	s, err := StripClaims(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTamperedModuleFailsHashCheck(t *testing.T) {
	signed, _, _ := signTestModule(t, SignActorOptions{Name: "x"})
	// Change one byte of code: the `end` opcode of the function body becomes `nop`.
	i := bytes.LastIndex(signed, []byte{0x02, 0x00, 0x0b})
	tampered := append([]byte(nil), signed...)
	tampered[i+2] = 0x01
	if _, err := VerifyActor(tampered, time.Now()); !errors.Is(err, ErrModuleHashMismatch) {
		t.Fatalf("got %v, want hash mismatch", err)
	}
}

func TestClaimsSignedByAnotherKeyFail(t *testing.T) {
	signed, _, _ := signTestModule(t, SignActorOptions{Name: "x"})
	tok, _ := ExtractClaimsJWT(signed)
	c, _ := ParseJWT[Actor](tok)
	// Keep iss, re-sign with a different account: signature must not verify.
	body, _ := b64url.DecodeString(splitJWT(tok)[1])
	other := mustKey(t, lattice.KindAccount)
	forged := splitJWT(tok)[0] + "." + b64url.EncodeToString(body) + "." +
		b64url.EncodeToString(other.Sign([]byte(splitJWT(tok)[0]+"."+b64url.EncodeToString(body))))
	m := EmbedClaimsJWT(StripOrFail(t, signed), forged)
	if _, err := VerifyActor(m, time.Now()); !errors.Is(err, ErrJWTSignature) {
		t.Fatalf("got %v (iss %s)", err, c.Issuer)
	}
}

func splitJWT(s string) []string { return bytes2str(bytes.Split([]byte(s), []byte("."))) }
func bytes2str(b [][]byte) []string {
	out := make([]string, len(b))
	for i := range b {
		out[i] = string(b[i])
	}
	return out
}

func TestExpiredAndNotYetValidClaims(t *testing.T) {
	past, _, _ := signTestModule(t, SignActorOptions{Expires: time.Now().Add(-time.Hour)})
	if _, err := VerifyActor(past, time.Now()); !errors.Is(err, ErrJWTExpired) {
		t.Fatalf("expired: %v", err)
	}
	future, _, _ := signTestModule(t, SignActorOptions{NotBefore: time.Now().Add(time.Hour)})
	if _, err := VerifyActor(future, time.Now()); !errors.Is(err, ErrJWTNotYet) {
		t.Fatalf("not yet: %v", err)
	}
}

func TestModuleWithoutClaims(t *testing.T) {
	if _, err := VerifyActor(testModule(), time.Now()); !errors.Is(err, ErrNoClaims) {
		t.Fatalf("got %v", err)
	}
	if _, err := VerifyActor([]byte("not wasm at all"), time.Now()); !errors.Is(err, ErrNotWasm) {
		t.Fatalf("got %v", err)
	}
}

func TestWasmcloudJWTSectionIsReadAndStripped(t *testing.T) {
	signed, _, _ := signTestModule(t, SignActorOptions{Name: "x"})
	tok, _ := ExtractClaimsJWT(signed)
	// Re-embed the same token under the name current wascap writes.
	payload := appendULEB32(nil, uint32(len(SectionWasmcloudJWT)))
	payload = append(append(payload, SectionWasmcloudJWT...), tok...)
	m := appendSection(StripOrFail(t, signed), 0, payload)
	if _, err := VerifyActor(m, time.Now()); err != nil {
		t.Fatalf("wasmcloud_jwt section: %v", err)
	}
}

// Toolchains pad section sizes to 5-byte LEB128; wascap hashes the re-encoded
// (minimal) form, so the padded and minimal modules must hash the same.
func TestModuleHashNormalisesPaddedSectionSizes(t *testing.T) {
	minimal := testModule()
	padded := append([]byte(nil), wasmHeader...)
	for _, s := range mustSections(t, minimal) {
		n := len(s.data)
		padded = append(padded, s.id, byte(n)|0x80, 0x80, 0x80, 0x80, 0x00)
		padded = append(padded, s.data...)
	}
	h1, _ := ModuleHash(minimal)
	h2, err := ModuleHash(padded)
	if err != nil || h1 != h2 {
		t.Fatalf("padded hash %s != %s (%v)", h2, h1, err)
	}
}

func mustSections(t *testing.T, m []byte) []wasmSection {
	t.Helper()
	s, err := parseSections(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMalformedWasmIsRejected(t *testing.T) {
	m := testModule()
	for name, b := range map[string][]byte{
		"truncated section": m[:len(m)-2],
		"component":         {0, 'a', 's', 'm', 0x0d, 0, 1, 0},
		"size overflow":     append(append([]byte(nil), wasmHeader...), 1, 0xff, 0xff, 0xff, 0xff, 0x7f),
	} {
		if _, err := ModuleHash(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFlattenActor(t *testing.T) {
	signed, _, mod := signTestModule(t, SignActorOptions{Name: "n", Caps: []string{"a:b", "c:d"}, Tags: []string{"t1"}, Rev: 3, Ver: "1"})
	c, _ := ReadActorClaims(signed)
	f := FlattenActor(c)
	if f.Caps != "a:b,c:d" || f.Rev != "3" || f.Tags != "t1" || f.Subject != mod.PublicKey() {
		t.Fatalf("%+v", f)
	}
	if got := (lattice.CachedClaims{Caps: ",a:b,"}).CapList(); len(got) != 1 || got[0] != "a:b" {
		t.Fatalf("caplist %v", got)
	}
}

// Without a positive rev, a revision is the claims' iat, for actors and
// provider archives alike, wherever it is shown (wasmCloud's
// revision_or_iat); a provider without claims has revision 0.
func TestRevisionFallsBackToIssuedAt(t *testing.T) {
	signed, _, _ := signTestModule(t, SignActorOptions{Name: "n"})
	c, _ := ReadActorClaims(signed)
	iat := int32(c.IssuedAt)
	if c.IssuedAt == 0 || ActorRevision(c) != iat || FlattenActor(c).Rev != strconv.Itoa(int(iat)) || FlattenActor(c).ContractID != "" {
		t.Fatalf("actor: revision %d, flattened %+v, iat %d", ActorRevision(c), FlattenActor(c), c.IssuedAt)
	}
	for _, tc := range []struct {
		rev  int32
		want int32
	}{{0, 1700000000}, {-1, 1700000000}, {7, 7}} {
		p := &ProviderClaims{IssuedAt: 1700000000, Wascap: &Provider{Rev: tc.rev, ContractID: "wasmcloud:x"}}
		if got := ProviderRevision(p); got != tc.want || FlattenProvider(p).Rev != strconv.Itoa(int(tc.want)) {
			t.Errorf("provider rev %d: revision %d, flattened %q; want %d", tc.rev, got, FlattenProvider(p).Rev, tc.want)
		}
	}
	if ProviderRevision(nil) != 0 {
		t.Error("a provider without claims has a revision")
	}
}

// Invocation ids are random version 4 UUIDs in canonical form, as
// uuid.NewString writes them (wasmCloud's hosts parse them as UUIDs).
func TestInvocationIDIsCanonicalUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newInvocationID()
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id {
			t.Fatalf("%q: version %d, variant %s, canonical %q", id, u.Version(), u.Variant(), u.String())
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
	}
}

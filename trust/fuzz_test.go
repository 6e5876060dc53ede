package trust_test

// Native fuzz tests for the verifiers of untrusted tokens and modules: JWTs,
// the issuer check of a decoded invocation, and claims embedded in wasm.
//
// Seeds come from two places: the committed corpus under testdata/fuzz/<Name>/
// (malformed tokens and modules, altered invocations) and f.Add calls with
// values built at test start (freshly signed tokens and invocations; no key
// seed is ever written to disk).
//
// `go test -run Fuzz` runs the seeds only; `make -f mk/fuzz.mk fuzz`
// fuzzes each target for $(FUZZTIME).

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// ---------------------------------------------------------------- helpers

func fuzzKey(tb testing.TB, kind lattice.KeyKind) *trust.KeyPair {
	tb.Helper()
	kp, err := trust.CreateKeyPair(kind)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// signedInvocation builds a freshly signed actor → provider invocation.
func signedInvocation(tb testing.TB, cluster *trust.KeyPair, target lattice.Entity, op string, msg []byte) *lattice.Invocation {
	tb.Helper()
	host := fuzzKey(tb, lattice.KindServer)
	origin := lattice.ActorEntity(fuzzKey(tb, lattice.KindModule).PublicKey())
	inv, err := trust.NewInvocation(cluster, host.PublicKey(), origin, target, op, msg)
	if err != nil {
		tb.Fatal(err)
	}
	return inv
}

func encodeInvocation(tb testing.TB, inv *lattice.Invocation) []byte {
	tb.Helper()
	b, err := inv.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// verifyTokenSignature re-checks, independently of ParseJWT, that token is
// three segments whose header is the wascap header and whose signature over
// "header.claims" verifies with the public key issuer.
func verifyTokenSignature(t *testing.T, token, issuer string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted token has %d segments", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		t.Fatalf("accepted token has an undecodable header: %v", err)
	}
	var h struct{ Typ, Alg string }
	if err := json.Unmarshal(hb, &h); err != nil || h.Typ != "jwt" || h.Alg != "Ed25519" {
		t.Fatalf("accepted token has header %q (%v)", hb, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil {
		t.Fatalf("accepted token has an undecodable signature: %v", err)
	}
	if err := trust.Verify(issuer, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		t.Fatalf("accepted token's signature does not verify with %s: %v", issuer, err)
	}
}

// ---------------------------------------------------------------- JWTs

func FuzzParseJWT(f *testing.F) {
	cluster := fuzzKey(f, lattice.KindCluster)
	ic := &trust.Claims[trust.InvocationClaims]{Subject: "6f1c4a9e-6a3c-4c4e-9d1e-3b1f1f9b2a77", Wascap: &trust.InvocationClaims{
		TargetURL: "wasmbus://wasmcloud/httpserver/default/V/HttpServer.HandleRequest", OriginURL: "wasmbus://M",
		Hash: strings.Repeat("AB", 32),
	}}
	tok, err := ic.Sign(cluster)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	acct, mod := fuzzKey(f, lattice.KindAccount), fuzzKey(f, lattice.KindModule)
	ac := &trust.ActorClaims{Subject: mod.PublicKey(), Expires: time.Now().Add(time.Hour).Unix(), Wascap: &trust.Actor{
		Name: "echo", Hash: strings.Repeat("CD", 32), Caps: []string{"wasmcloud:httpserver", ""}, Tags: []string{"t"}, Rev: 3, Ver: "0.1.0",
	}}
	if tok, err = ac.Sign(acct); err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	parts := strings.Split(tok, ".")
	f.Add(parts[0] + "==." + parts[1] + "." + parts[2] + "=") // padded segments are accepted
	// A signed token whose claims are not an object: must be rejected as malformed.
	bad := base64.RawURLEncoding.EncodeToString([]byte(`["not","claims"]`))
	f.Add(parts[0] + "." + bad + "." + base64.RawURLEncoding.EncodeToString(acct.Sign([]byte(parts[0]+"."+bad))))

	f.Fuzz(func(t *testing.T, token string) {
		c1, err1 := trust.ParseJWT[trust.InvocationClaims](token)
		c2, err2 := trust.ParseJWT[trust.Actor](token)
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, trust.ErrMalformedJWT) && !errors.Is(err, trust.ErrJWTAlgorithm) && !errors.Is(err, trust.ErrJWTSignature) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
		if (c1 == nil) != (err1 != nil) || (c2 == nil) != (err2 != nil) {
			t.Fatal("result and error disagree")
		}
		var accepted []struct{ iss, sub string }
		if err1 == nil {
			accepted = append(accepted, struct{ iss, sub string }{c1.Issuer, c1.Subject})
		}
		if err2 == nil {
			accepted = append(accepted, struct{ iss, sub string }{c2.Issuer, c2.Subject})
		}
		for _, c := range accepted {
			if c.iss == "" || c.sub == "" {
				t.Fatalf("accepted a token with iss %q, sub %q", c.iss, c.sub)
			}
			if _, _, err := lattice.DecodePublicKey(c.iss); err != nil {
				t.Fatalf("accepted a token whose issuer is not a public key: %v", err)
			}
			verifyTokenSignature(t, token, c.iss)
		}
		if len(accepted) == 0 {
			return
		}
		// The signature binds the claims: the same claims with one more byte
		// (JSON whitespace, so still parseable) must no longer verify.
		p := strings.Split(token, ".")
		body, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(p[1], "="))
		grown := p[0] + "." + base64.RawURLEncoding.EncodeToString(append(body, ' ')) + "." + p[2]
		if _, err := trust.ParseJWT[trust.InvocationClaims](grown); !errors.Is(err, trust.ErrJWTSignature) {
			t.Fatalf("token with altered claims: got %v, want ErrJWTSignature", err)
		}
		// And a flipped signature bit must not verify.
		sig, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(p[2], "="))
		if len(sig) > 0 {
			sig[0] ^= 1
			flipped := p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			if _, err := trust.ParseJWT[trust.InvocationClaims](flipped); err == nil {
				t.Fatal("token with a flipped signature bit was accepted")
			}
		}
	})
}

// ---------------------------------------------------------------- issuers

// The issuers target trusts one cluster key generated at test start. Under
// `go test -fuzz`, the workers are separate processes that re-run this
// function; they get the coordinator's public issuer key and the seed
// invocations (public data only, never the key's seed) through the
// environment, so every process trusts the key the seeds were signed with.
const (
	envPolicyIssuer = "LATTICE_FUZZ_POLICY_ISSUER"
	envPolicySeeds  = "LATTICE_FUZZ_POLICY_SEEDS"
)

type signedTuple struct{ origin, target, op, msg string }

func tupleOf(inv *lattice.Invocation) signedTuple {
	return signedTuple{inv.Origin.URL(), inv.TargetURL(), inv.Operation, string(inv.Msg)}
}

func FuzzIssuersCheck(f *testing.F) {
	issuer, seedsEnv := os.Getenv(envPolicyIssuer), os.Getenv(envPolicySeeds)
	if issuer == "" || seedsEnv == "" {
		cluster := fuzzKey(f, lattice.KindCluster)
		target := lattice.Entity{PublicKey: fuzzKey(f, lattice.KindService).PublicKey(), ContractID: "wasmcloud:httpserver", LinkName: "default"}
		var enc []string
		for _, inv := range []*lattice.Invocation{
			signedInvocation(f, cluster, target, "HttpServer.HandleRequest", []byte("GET / HTTP/1.1")),
			signedInvocation(f, cluster, target, "HttpServer.Ping", nil),
		} {
			enc = append(enc, base64.StdEncoding.EncodeToString(encodeInvocation(f, inv)))
		}
		issuer, seedsEnv = cluster.PublicKey(), strings.Join(enc, ",")
		f.Setenv(envPolicyIssuer, issuer)
		f.Setenv(envPolicySeeds, seedsEnv)
	}
	policy := trust.NewIssuers([]string{issuer})

	// Every seed, fed directly once, must be accepted; the tuples they sign are
	// the only ones the fuzzer may ever get accepted.
	signed := map[signedTuple]bool{}
	var target string
	for _, s := range strings.Split(seedsEnv, ",") {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			f.Fatal(err)
		}
		inv, err := lattice.DecodeInvocation(b)
		if err != nil {
			f.Fatal(err)
		}
		target = inv.Target.PublicKey
		if _, err := policy.Check(inv, target); err != nil {
			f.Fatalf("the unmodified signed seed is rejected: %v", err)
		}
		signed[tupleOf(inv)] = true
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := lattice.DecodeInvocation(data)
		if err != nil {
			return // FuzzDecodeInvocation covers the decoder's errors
		}
		c, err := policy.Check(inv, target)
		if err != nil {
			if lattice.ReasonOf(err) == "" {
				t.Fatalf("rejection is not a *lattice.RejectError: %v", err)
			}
			if c != nil {
				t.Fatal("claims returned with a rejection")
			}
			return
		}
		if c == nil || c.Wascap == nil {
			t.Fatal("accepted without claims")
		}
		if c.Issuer != issuer {
			t.Fatalf("accepted an invocation issued by %s, which is not trusted", c.Issuer)
		}
		verifyTokenSignature(t, inv.EncodedClaims, issuer)
		if inv.Target.PublicKey != target {
			t.Fatalf("accepted an invocation addressed to %s", inv.Target.PublicKey)
		}
		if got := lattice.InvocationHash(inv.Origin.URL(), inv.TargetURL(), inv.Operation, inv.Msg); got != c.Wascap.Hash {
			t.Fatalf("accepted an invocation whose body hash %s is not the signed %s", got, c.Wascap.Hash)
		}
		if !signed[tupleOf(inv)] {
			t.Fatalf("accepted an invocation the trusted key never signed: %+v", tupleOf(inv))
		}
	})
}

// ---------------------------------------------------------------- wasm

func wasmSection(id byte, data []byte) []byte {
	out := []byte{id}
	for v := uint32(len(data)); ; {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			out = append(out, b)
			break
		}
		out = append(out, b|0x80)
	}
	return append(out, data...)
}

func customSection(name string, payload []byte) []byte {
	data := append([]byte{byte(len(name))}, name...)
	return wasmSection(0, append(data, payload...))
}

func FuzzWasmSections(f *testing.F) {
	header := []byte("\x00asm\x01\x00\x00\x00")
	typeSec := wasmSection(1, []byte{0x01, 0x60, 0x00, 0x00})
	module := append(append([]byte(nil), header...), typeSec...)
	f.Add(module)
	f.Add(append(append([]byte(nil), module...), customSection("jwt", []byte("a.b.c"))...))
	f.Add(append(append([]byte(nil), module...), customSection("wasmcloud_jwt", []byte("a.b.c"))...))

	f.Fuzz(func(t *testing.T, x []byte) {
		tok, errE := trust.ExtractClaimsJWT(x)
		stripped, errS := trust.StripClaims(x)
		hash, errH := trust.ModuleHash(x)
		if (errS == nil) != (errH == nil) {
			t.Fatalf("StripClaims and ModuleHash disagree: %v / %v", errS, errH)
		}
		if errS != nil {
			if !errors.Is(errS, trust.ErrNotWasm) && !errors.Is(errS, trust.ErrMalformedWasm) {
				t.Fatalf("unexpected error kind: %v", errS)
			}
			if errE == nil || errors.Is(errE, trust.ErrNoClaims) {
				t.Fatalf("ExtractClaimsJWT parsed a module StripClaims rejects (%v): %v", errS, errE)
			}
			return
		}
		if errE != nil && !errors.Is(errE, trust.ErrNoClaims) {
			t.Fatalf("ExtractClaimsJWT rejects a module StripClaims parses: %v", errE)
		}
		if len(stripped) > len(x) {
			t.Fatalf("stripping grew the module from %d to %d bytes", len(x), len(stripped))
		}
		again, err := trust.StripClaims(stripped)
		if err != nil {
			t.Fatalf("stripped module does not parse: %v", err)
		}
		if !bytes.Equal(again, stripped) {
			t.Fatalf("StripClaims is not idempotent:\n% x\n% x", stripped, again)
		}
		sum := sha256.Sum256(stripped)
		if want := strings.ToUpper(hex.EncodeToString(sum[:])); hash != want {
			t.Fatalf("ModuleHash %s is not SHA-256 of the stripped module %s", hash, want)
		}
		if h2, err := trust.ModuleHash(stripped); err != nil || h2 != hash {
			t.Fatalf("ModuleHash(StripClaims(x)) = %s, %v; ModuleHash(x) = %s", h2, err, hash)
		}
		if _, err := trust.ExtractClaimsJWT(stripped); !errors.Is(err, trust.ErrNoClaims) {
			t.Fatalf("stripped module still has claims: %v", err)
		}
		// Embedding a token and stripping it again is lossless.
		if errE != nil {
			tok = "header.claims.signature"
		}
		embedded := trust.EmbedClaimsJWT(stripped, tok)
		if got, err := trust.ExtractClaimsJWT(embedded); err != nil || got != tok {
			t.Fatalf("embedded token reads back as %q, %v", got, err)
		}
		if back, err := trust.StripClaims(embedded); err != nil || !bytes.Equal(back, stripped) {
			t.Fatalf("strip after embed: %v\n% x\n% x", err, back, stripped)
		}
	})
}

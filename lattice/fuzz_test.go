package lattice_test

// Native fuzz tests for every decoder of untrusted bytes in the wire protocol.
//
// Seeds come from two places: the committed corpus under testdata/fuzz/<Name>/
// (valid messages, peer quirks, truncations, wrong types, malformed tokens and
// modules) and f.Add calls with values built at test start (freshly signed
// tokens and invocations; no key seed is ever written to disk).
//
// `go test -run 'Fuzz|Nesting'` runs the seeds only; `make -f mk/fuzz.mk fuzz`
// fuzzes each target for $(FUZZTIME).

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// ---------------------------------------------------------------- helpers

func fuzzKey(tb testing.TB, kind lattice.KeyKind) *lattice.KeyPair {
	tb.Helper()
	kp, err := lattice.CreateKeyPair(kind)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

func fuzzMsgpack(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// normBytes treats nil and empty byte strings alike: msgpack nil, an empty bin
// and the OTP host's empty array all mean "no body".
func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// signedInvocation builds a freshly signed actor → provider invocation.
func signedInvocation(tb testing.TB, cluster *lattice.KeyPair, target lattice.Entity, op string, msg []byte) *lattice.Invocation {
	tb.Helper()
	host := fuzzKey(tb, lattice.KindServer)
	origin := lattice.ActorEntity(fuzzKey(tb, lattice.KindModule).PublicKey())
	inv, err := lattice.NewInvocation(cluster, host.PublicKey(), origin, target, op, msg)
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
	if err := lattice.Verify(issuer, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		t.Fatalf("accepted token's signature does not verify with %s: %v", issuer, err)
	}
}

// ---------------------------------------------------------------- invocations

func FuzzDecodeInvocation(f *testing.F) {
	cluster := fuzzKey(f, lattice.KindCluster)
	provider := lattice.Entity{PublicKey: fuzzKey(f, lattice.KindService).PublicKey(), ContractID: "wasmcloud:httpserver", LinkName: "default"}
	inv := signedInvocation(f, cluster, provider, "HttpServer.HandleRequest", []byte("GET / HTTP/1.1"))
	f.Add(encodeInvocation(f, inv))
	f.Add(fuzzMsgpack(f, map[string]any{
		"traceContext": map[string]any{"traceparent": "00-x-y-01"},
		"msg":          "as a str", "operation": "Op", "content_length": 8,
		"origin": map[string]any{"public_key": "M1", "extra": []any{1, []any{2}}},
	}))

	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := lattice.DecodeInvocation(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if inv != nil {
				t.Fatal("non-nil invocation returned with an error")
			}
			return
		}
		enc, err := inv.Encode()
		if err != nil {
			t.Fatalf("decoded invocation does not re-encode: %v", err)
		}
		back, err := lattice.DecodeInvocation(enc)
		if err != nil {
			t.Fatalf("re-encoded invocation does not decode: %v\n% x", err, enc)
		}
		want, got := *inv, *back
		want.Msg, got.Msg = normBytes(want.Msg), normBytes(got.Msg)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("round trip changed the invocation:\n first %+v\nsecond %+v", want, got)
		}
		// The encoder's output is canonical: encoding again is a fixed point.
		if enc2, err := back.Encode(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n% x\n% x", err, enc, enc2)
		}
	})
}

func FuzzDecodeInvocationResponse(f *testing.F) {
	f.Add(fuzzMsgpack(f, &lattice.InvocationResponse{Msg: []byte("ok"), InvocationID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", ContentLength: 2}))
	f.Add(fuzzMsgpack(f, map[string]any{"msg": []any{}, "error": "Invocation received for actor M that is not running"}))

	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := lattice.DecodeInvocationResponse(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if resp != nil {
				t.Fatal("non-nil response returned with an error")
			}
			return
		}
		enc, err := resp.Encode()
		if err != nil {
			t.Fatalf("decoded response does not re-encode: %v", err)
		}
		back, err := lattice.DecodeInvocationResponse(enc)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v\n% x", err, enc)
		}
		want, got := *resp, *back
		want.Msg, got.Msg = normBytes(want.Msg), normBytes(got.Msg)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("round trip changed the response:\n first %+v\nsecond %+v", want, got)
		}
		if enc2, err := back.Encode(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n% x\n% x", err, enc, enc2)
		}
	})
}

// ---------------------------------------------------------------- link definitions

func FuzzDecodeLinkDefinition(f *testing.F) {
	ld := lattice.LinkDefinition{
		ActorID: fuzzKey(f, lattice.KindModule).PublicKey(), ProviderID: fuzzKey(f, lattice.KindService).PublicKey(),
		ContractID: "wasmcloud:keyvalue", Values: map[string]string{"URL": "redis://127.0.0.1:6379"},
	}
	if err := ld.Normalize(); err != nil {
		f.Fatal(err)
	}
	b, err := lattice.Marshal(&ld)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)

	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := lattice.DecodeLinkDefinition(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			if ld != nil {
				t.Fatal("non-nil link definition returned with an error")
			}
			return
		}
		if ld.Values == nil {
			t.Fatal("decoded link definition has nil values")
		}
		if ld.Deleted {
			t.Fatal("the wire form must not be able to set Deleted")
		}
		enc, err := lattice.Marshal(ld)
		if err != nil {
			t.Fatalf("decoded link definition does not re-encode: %v", err)
		}
		back, err := lattice.DecodeLinkDefinition(enc)
		if err != nil {
			t.Fatalf("re-encoded link definition does not decode: %v\n% x", err, enc)
		}
		if !reflect.DeepEqual(ld, back) {
			t.Fatalf("round trip changed the link definition:\n first %+v\nsecond %+v", ld, back)
		}
	})
}

// ---------------------------------------------------------------- JWTs

func FuzzParseJWT(f *testing.F) {
	cluster := fuzzKey(f, lattice.KindCluster)
	ic := &lattice.Claims[lattice.InvocationClaims]{Subject: "6f1c4a9e-6a3c-4c4e-9d1e-3b1f1f9b2a77", Wascap: &lattice.InvocationClaims{
		TargetURL: "wasmbus://wasmcloud/httpserver/default/V/HttpServer.HandleRequest", OriginURL: "wasmbus://M",
		Hash: strings.Repeat("AB", 32),
	}}
	tok, err := ic.Sign(cluster)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	acct, mod := fuzzKey(f, lattice.KindAccount), fuzzKey(f, lattice.KindModule)
	ac := &lattice.ActorClaims{Subject: mod.PublicKey(), Expires: time.Now().Add(time.Hour).Unix(), Wascap: &lattice.Actor{
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
		c1, err1 := lattice.ParseJWT[lattice.InvocationClaims](token)
		c2, err2 := lattice.ParseJWT[lattice.Actor](token)
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, lattice.ErrMalformedJWT) && !errors.Is(err, lattice.ErrJWTAlgorithm) && !errors.Is(err, lattice.ErrJWTSignature) {
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
		if _, err := lattice.ParseJWT[lattice.InvocationClaims](grown); !errors.Is(err, lattice.ErrJWTSignature) {
			t.Fatalf("token with altered claims: got %v, want ErrJWTSignature", err)
		}
		// And a flipped signature bit must not verify.
		sig, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(p[2], "="))
		if len(sig) > 0 {
			sig[0] ^= 1
			flipped := p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			if _, err := lattice.ParseJWT[lattice.InvocationClaims](flipped); err == nil {
				t.Fatal("token with a flipped signature bit was accepted")
			}
		}
	})
}

// ---------------------------------------------------------------- issuer policy

// The policy target trusts one cluster key generated at test start. Under
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

func FuzzIssuerPolicyCheck(f *testing.F) {
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
	policy := lattice.NewIssuerPolicy([]string{issuer})

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
				t.Fatalf("rejection is not a *RejectError: %v", err)
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
		tok, errE := lattice.ExtractClaimsJWT(x)
		stripped, errS := lattice.StripClaims(x)
		hash, errH := lattice.ModuleHash(x)
		if (errS == nil) != (errH == nil) {
			t.Fatalf("StripClaims and ModuleHash disagree: %v / %v", errS, errH)
		}
		if errS != nil {
			if !errors.Is(errS, lattice.ErrNotWasm) && !errors.Is(errS, lattice.ErrMalformedWasm) {
				t.Fatalf("unexpected error kind: %v", errS)
			}
			if errE == nil || errors.Is(errE, lattice.ErrNoClaims) {
				t.Fatalf("ExtractClaimsJWT parsed a module StripClaims rejects (%v): %v", errS, errE)
			}
			return
		}
		if errE != nil && !errors.Is(errE, lattice.ErrNoClaims) {
			t.Fatalf("ExtractClaimsJWT rejects a module StripClaims parses: %v", errE)
		}
		if len(stripped) > len(x) {
			t.Fatalf("stripping grew the module from %d to %d bytes", len(x), len(stripped))
		}
		again, err := lattice.StripClaims(stripped)
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
		if h2, err := lattice.ModuleHash(stripped); err != nil || h2 != hash {
			t.Fatalf("ModuleHash(StripClaims(x)) = %s, %v; ModuleHash(x) = %s", h2, err, hash)
		}
		if _, err := lattice.ExtractClaimsJWT(stripped); !errors.Is(err, lattice.ErrNoClaims) {
			t.Fatalf("stripped module still has claims: %v", err)
		}
		// Embedding a token and stripping it again is lossless.
		if errE != nil {
			tok = "header.claims.signature"
		}
		embedded := lattice.EmbedClaimsJWT(stripped, tok)
		if got, err := lattice.ExtractClaimsJWT(embedded); err != nil || got != tok {
			t.Fatalf("embedded token reads back as %q, %v", got, err)
		}
		if back, err := lattice.StripClaims(embedded); err != nil || !bytes.Equal(back, stripped) {
			t.Fatalf("strip after embed: %v\n% x\n% x", err, back, stripped)
		}
	})
}

// ---------------------------------------------------------------- host data

func normHostData(hd lattice.HostData) lattice.HostData {
	if hd.EnvValues == nil {
		hd.EnvValues = map[string]string{}
	}
	if hd.LinkDefinitions == nil {
		hd.LinkDefinitions = []lattice.LinkDefinition{}
	}
	return hd
}

func FuzzDecodeHostData(f *testing.F) {
	hd := &lattice.HostData{HostID: fuzzKey(f, lattice.KindServer).PublicKey(), LatticeRPCPrefix: "default", LinkName: "default",
		ProviderKey: fuzzKey(f, lattice.KindService).PublicKey(), ClusterIssuers: []string{fuzzKey(f, lattice.KindCluster).PublicKey()},
		LatticeRPCURL: "127.0.0.1:4222", DefaultRPCTimeoutMS: 2000, EnvValues: map[string]string{"A": "b"}}
	line, err := lattice.EncodeHostData(hd)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)

	f.Fuzz(func(t *testing.T, line []byte) {
		hd, err := lattice.DecodeHostData(line)
		if err != nil {
			if !errors.Is(err, lattice.ErrHostData) {
				t.Fatalf("error does not wrap ErrHostData: %v", err)
			}
			if hd != nil {
				t.Fatal("non-nil host data returned with an error")
			}
			return
		}
		if hd.HostID == "" || hd.LatticeRPCPrefix == "" || hd.ProviderKey == "" || hd.LinkName == "" {
			t.Fatalf("accepted host data without a required field: %+v", hd)
		}
		first := normHostData(*hd)
		enc, err := lattice.EncodeHostData(hd)
		if err != nil {
			t.Fatalf("decoded host data does not re-encode: %v", err)
		}
		if len(enc) == 0 || enc[len(enc)-1] != '\n' || bytes.Count(enc, []byte("\n")) != 1 {
			t.Fatalf("encoded host data is not one line: %q", enc)
		}
		back, err := lattice.DecodeHostData(enc)
		if err != nil {
			t.Fatalf("re-encoded host data does not decode: %v", err)
		}
		if second := normHostData(*back); !reflect.DeepEqual(first, second) {
			t.Fatalf("round trip changed the host data:\n first %+v\nsecond %+v", first, second)
		}
		if enc2, err := lattice.EncodeHostData(back); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v\n%q\n%q", err, enc, enc2)
		}
	})
}

// ---------------------------------------------------------------- nesting and length bombs

func TestDecodeNestingAndLengthBombs(t *testing.T) {
	unknownKey := []byte{0x81, 0xa7, 'u', 'n', 'k', 'n', 'o', 'w', 'n'} // {"unknown": …}
	deep := append(bytes.Repeat([]byte{0x91}, 100000), 0xc0)            // [[[…[nil]…]]], 100000 deep
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tenBytes := []byte{0xa1, 'x', 0xc0, 0xa1, 'y', 0xc0, 0xa1, 'z', 0xc0, 0xa1} // 3 entries, then a truncated key
	decoders := map[string]func([]byte) error{
		"invocation": func(b []byte) error { _, err := lattice.DecodeInvocation(b); return err },
		"response":   func(b []byte) error { _, err := lattice.DecodeInvocationResponse(b); return err },
		"linkdef":    func(b []byte) error { _, err := lattice.DecodeLinkDefinition(b); return err },
	}
	cases := map[string][]byte{
		"unknown key, array nested 100000 deep": cat(unknownKey, deep),
		"unknown key, map nested 100000 deep":   cat(unknownKey, bytes.Repeat([]byte{0x81, 0xc0}, 100000), []byte{0xc0}),
		"map claiming 2^32-1 entries":           cat([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, tenBytes),
		"unknown key, array of 2^32-1":          cat(unknownKey, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, tenBytes),
		"unknown key, str of 2^32-1 bytes":      cat(unknownKey, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, tenBytes),
		"string field, bin of 2^32-1 bytes":     cat([]byte{0x81, 0xa2, 'i', 'd', 0xc6, 0xff, 0xff, 0xff, 0xff}, tenBytes),
	}
	for dname, decode := range decoders {
		for cname, b := range cases {
			t.Run(dname+"/"+cname, func(t *testing.T) {
				start := time.Now()
				err := decode(b)
				if el := time.Since(start); el > 2*time.Second {
					t.Errorf("took %s", el)
				}
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("got %v, want ErrMalformed", err)
				}
			})
		}
	}
	// Nesting inside a known field: an entity's unknown key.
	inEntity := cat([]byte{0x81, 0xa6, 'o', 'r', 'i', 'g', 'i', 'n'}, unknownKey, deep)
	if _, err := lattice.DecodeInvocation(inEntity); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("deep nesting in origin: got %v, want ErrMalformed", err)
	}
	// Nesting inside link definition values.
	inValues := cat([]byte{0x81, 0xa6, 'v', 'a', 'l', 'u', 'e', 's', 0x81, 0xa1, 'k'}, deep)
	if _, err := lattice.DecodeLinkDefinition(inValues); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("deep nesting in values: got %v, want ErrMalformed", err)
	}
	// Depth up to the limit is still fine: a short nested unknown value is skipped.
	ok := cat(unknownKey, bytes.Repeat([]byte{0x91}, 8), []byte{0xc0})
	if _, err := lattice.DecodeInvocation(ok); err != nil {
		t.Fatalf("shallow nesting rejected: %v", err)
	}
}

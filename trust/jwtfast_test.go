package trust

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
)

// decodeWithJSON is what the fast path must always agree with: the
// encoding/json Decoder ParseJWT falls back to.
func decodeWithJSON(b []byte) (Claims[InvocationClaims], error) {
	var c Claims[InvocationClaims]
	err := json.NewDecoder(bytes.NewReader(b)).Decode(&c)
	return c, err
}

// FuzzInvocationClaims is a differential fuzz test: on every input the fast
// decoder accepts, encoding/json must accept it too and decode the same
// claims. Inputs it declines are left to encoding/json, so they cannot differ.
func FuzzInvocationClaims(f *testing.F) {
	f.Add([]byte(`{"jti":"x","iat":1,"iss":"C","sub":"s","wascap":{"target_url":"t","origin_url":"o","hash":"h"},"wascap_revision":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Claims[InvocationClaims]
		if !decodeInvocationClaims(b, &fast) {
			return
		}
		slow, err := decodeWithJSON(b)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and encoding/json disagree on %q:\n fast %+v (wascap %+v)\n json %+v (wascap %+v)", b, fast, fast.Wascap, slow, slow.Wascap)
		}
	})
}

// The fast path must really be taken for the tokens signers write, or it is
// dead weight: latticed's own, and wascap's field order and spacing.
func TestInvocationClaimsFastPathTakesSignedTokens(t *testing.T) {
	cluster, _ := CreateKeyPair(lattice.KindCluster)
	host, _ := CreateKeyPair(lattice.KindServer)
	caller, target := lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey())
	inv, err := NewInvocation(cluster, host.PublicKey(), caller, target, "Echo.Echo", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := b64url.DecodeString(strings.Split(inv.EncodedClaims, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"latticed": body,
		"wascap order, pretty": []byte("{\n  \"jti\": \"1d2\", \"iat\": 1700000000, \"iss\": \"" + cluster.PublicKey() +
			"\",\n  \"sub\": \"abc\", \"exp\": 1700000100, \"nbf\": 0,\n  \"wascap\": { \"target_url\": \"wasmbus://M/Op\", \"origin_url\": \"wasmbus://M\", \"hash\": \"AB\" },\n  \"wascap_revision\": 3 }\n"),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var fast Claims[InvocationClaims]
			if !decodeInvocationClaims(b, &fast) {
				t.Fatalf("fast path declined %s", b)
			}
			slow, err := decodeWithJSON(b)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast %+v, json %+v (%v)", fast, slow, err)
			}
		})
	}
}

// Inputs outside the subset are declined (and so decoded by encoding/json,
// whose answer may differ from a naive reading of them).
func TestInvocationClaimsFastPathDeclines(t *testing.T) {
	for name, in := range map[string]string{
		"other case key":      `{"ISS":"C","sub":"s"}`,
		"duplicate key":       `{"iss":"A","iss":"B","sub":"s"}`,
		"duplicate in wascap": `{"iss":"A","sub":"s","wascap":{"hash":"a","hash":"b"}}`,
		"escape":              `{"iss":"A\u0042","sub":"s"}`,
		"non-ASCII":           "{\"iss\":\"\xff\",\"sub\":\"s\"}",
		"unknown key":         `{"iss":"A","sub":"s","x":1}`,
		"null wascap":         `{"iss":"A","sub":"s","wascap":null}`,
		"float":               `{"iss":"A","sub":"s","iat":1.5}`,
		"exponent":            `{"iss":"A","sub":"s","iat":1e3}`,
		"negative":            `{"iss":"A","sub":"s","iat":-1}`,
		"leading zero":        `{"iss":"A","sub":"s","iat":01}`,
		"revision too big":    `{"iss":"A","sub":"s","wascap_revision":4294967296}`,
		"trailing data":       `{"iss":"A","sub":"s"} x`,
		"not an object":       `["iss"]`,
		"truncated":           `{"iss":"A","sub":"s"`,
	} {
		t.Run(name, func(t *testing.T) {
			var c Claims[InvocationClaims]
			if decodeInvocationClaims([]byte(in), &c) {
				t.Fatalf("fast path accepted %s as %+v", in, c)
			}
		})
	}
}

// appendClaims must write exactly what json.Marshal writes, for plain and
// for escaped strings, with and without the optional fields.
func TestEncodeClaimsMatchesMarshal(t *testing.T) {
	plain := []string{"", "plain", "wasmbus://MABC/Echo.Echo", "6f1c4a9e-6a3c"}
	escaped := []string{`quo"te`, `back\slash`, "<html>&", "tab\t", "ünï", "\xff"}
	r := rand.New(rand.NewPCG(3, 4))
	fast := 0
	for i := 0; i < 400; i++ {
		allPlain := i%2 == 0
		pick := func(int) string {
			if allPlain || r.IntN(3) > 0 {
				return plain[r.IntN(len(plain))]
			}
			return escaped[r.IntN(len(escaped))]
		}
		c := &Claims[InvocationClaims]{
			ID: pick(1), IssuedAt: int64(i) - 3, Issuer: pick(2), Subject: pick(3), WascapRevision: uint32(i % 3),
		}
		if i%2 == 0 {
			c.Expires, c.NotBefore = int64(i*1000), int64(i%5)
		}
		if i%3 != 0 {
			c.Wascap = &InvocationClaims{TargetURL: pick(4), OriginURL: pick(5), Hash: pick(6)}
		}
		if w := c.Wascap; plainJSON(c.ID) && plainJSON(c.Issuer) && plainJSON(c.Subject) &&
			(w == nil || plainJSON(w.TargetURL) && plainJSON(w.OriginURL) && plainJSON(w.Hash)) {
			fast++
		}
		checkAppendClaims(t, c)
	}
	if fast == 0 {
		t.Fatal("no case took the hand-written path")
	}
}

// FuzzAppendClaims holds appendClaims to json.Marshal on any claim values.
func FuzzAppendClaims(f *testing.F) {
	f.Add("NUIDJTI0123", int64(1765100000), "CABC", "6f1c4a9e-6a3c-4c4e-9d1e-3b1f1f9b2a77", int64(0), int64(0), uint32(3),
		true, "wasmbus://MXYZ/Echo.Echo", "wasmbus://wasmcloud/httpserver/default/VABC", "88D4266FD4E6338D")
	f.Add("", int64(-1), `quo"te`, "<&>", int64(7), int64(1<<40), uint32(0), false, "", "", "")
	f.Add("\xff\x00", int64(1), "ünï", "tab\t", int64(-5), int64(-9), uint32(1<<32-1), true, "\u2028", "\x7f", "a\\b")
	f.Fuzz(func(t *testing.T, id string, iat int64, iss, sub string, exp, nbf int64, rev uint32, wascap bool, target, origin, hash string) {
		c := &Claims[InvocationClaims]{ID: id, IssuedAt: iat, Issuer: iss, Subject: sub, Expires: exp, NotBefore: nbf, WascapRevision: rev}
		if wascap {
			c.Wascap = &InvocationClaims{TargetURL: target, OriginURL: origin, Hash: hash}
		}
		checkAppendClaims(t, c)
	})
}

func checkAppendClaims(t *testing.T, c *Claims[InvocationClaims]) {
	t.Helper()
	prefix := []byte("prefix")
	got, err := appendClaims(prefix[:len(prefix):len(prefix)], c)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(c)
	if !bytes.Equal(got, append(prefix, want...)) {
		t.Fatalf("appendClaims\n %s\njson.Marshal\n %s", got, want)
	}
}

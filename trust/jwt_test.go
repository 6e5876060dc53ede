package trust

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/lattice"
)

func mustKey(t testing.TB, kind lattice.KeyKind) *KeyPair {
	t.Helper()
	kp, err := CreateKeyPair(kind)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestJWTHeaderIsWascapExactly(t *testing.T) {
	c := &Claims[InvocationClaims]{Subject: "x", Wascap: &InvocationClaims{}}
	tok, err := c.Sign(mustKey(t, lattice.KindCluster))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := b64url.DecodeString(strings.Split(tok, ".")[0])
	if string(h) != `{"typ":"jwt","alg":"Ed25519"}` {
		t.Fatalf("header %s", h)
	}
	var raw map[string]any
	b, _ := b64url.DecodeString(strings.Split(tok, ".")[1])
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"jti", "iat", "iss", "sub", "wascap", "wascap_revision"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("claims lack %q: %s", k, b)
		}
	}
	if _, ok := raw["exp"]; ok {
		t.Error("exp present though unset")
	}
}

func TestParseJWTRejects(t *testing.T) {
	kp := mustKey(t, lattice.KindCluster)
	good, _ := (&Claims[InvocationClaims]{Subject: "s", Wascap: &InvocationClaims{}}).Sign(kp)
	parts := strings.Split(good, ".")
	other := mustKey(t, lattice.KindCluster)
	forged := parts[0] + "." + parts[1] + "." + b64url.EncodeToString(other.Sign([]byte(parts[0]+"."+parts[1])))
	hs256 := b64url.EncodeToString([]byte(`{"typ":"jwt","alg":"HS256"}`)) + "." + parts[1] + "." + parts[2]
	none := b64url.EncodeToString([]byte(`{"typ":"jwt","alg":"none"}`)) + "." + parts[1] + "."
	body, _ := b64url.DecodeString(parts[1])
	tampered := parts[0] + "." + b64url.EncodeToString([]byte(strings.Replace(string(body), `"sub":"s"`, `"sub":"t"`, 1))) + "." + parts[2]

	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"two segments":      {parts[0] + "." + parts[1], ErrMalformedJWT},
		"garbage":           {"a.b.c", ErrMalformedJWT},
		"alg HS256":         {hs256, ErrJWTAlgorithm},
		"alg none":          {none, ErrJWTAlgorithm},
		"signed by another": {forged, ErrJWTSignature},
		"claims tampered":   {tampered, ErrJWTSignature},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseJWT[InvocationClaims](tc.token); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ParseJWT[InvocationClaims](good); err != nil {
		t.Fatalf("good token: %v", err)
	}
}

func TestCheckTime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for name, tc := range map[string]struct {
		exp, nbf int64
		skew     time.Duration
		want     error
	}{
		"no times":            {0, 0, 0, nil},
		"expired":             {now.Unix() - 10, 0, 0, ErrJWTExpired},
		"expired within skew": {now.Unix() - 10, 0, 30 * time.Second, nil},
		"not yet valid":       {0, now.Unix() + 60, 0, ErrJWTNotYet},
		"valid window":        {now.Unix() + 60, now.Unix() - 60, 0, nil},
	} {
		t.Run(name, func(t *testing.T) {
			c := &Claims[Actor]{Expires: tc.exp, NotBefore: tc.nbf}
			if err := c.CheckTime(now, tc.skew); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

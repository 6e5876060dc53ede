package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/latticed/latticed/lattice"
)

// WascapRevision is the `wascap_revision` latticed writes into every token it signs.
const WascapRevision = 3

// JWT errors. Each is distinct so that the issuer check and the claims
// checks can report a precise reason.
var (
	ErrMalformedJWT  = errors.New("malformed JWT")
	ErrJWTAlgorithm  = errors.New("JWT header is not {typ: jwt, alg: Ed25519}")
	ErrJWTSignature  = errors.New("JWT signature does not verify")
	ErrJWTExpired    = errors.New("JWT has expired")
	ErrJWTNotYet     = errors.New("JWT is not valid yet")
	ErrJWTNoMetadata = errors.New("JWT has no wascap metadata")
)

var b64url = base64.RawURLEncoding

// jwtHeader is the fixed wascap header. Its JSON form is exactly
// {"typ":"jwt","alg":"Ed25519"}, as wascap writes it.
type jwtHeader struct {
	Type      string `json:"typ"`
	Algorithm string `json:"alg"`
}

var encodedHeader = func() string {
	b, _ := json.Marshal(jwtHeader{Type: "jwt", Algorithm: "Ed25519"})
	return b64url.EncodeToString(b)
}()

// Claims is a wascap token's claim set with type-specific metadata T under `wascap`.
type Claims[T any] struct {
	Expires        int64  `json:"exp,omitempty"`
	ID             string `json:"jti"`
	IssuedAt       int64  `json:"iat"`
	Issuer         string `json:"iss"`
	Subject        string `json:"sub"`
	NotBefore      int64  `json:"nbf,omitempty"`
	Wascap         *T     `json:"wascap,omitempty"`
	WascapRevision uint32 `json:"wascap_revision,omitempty"`
}

// Sign encodes the claims as a wascap JWT signed by kp. Issuer is set to kp's
// public key; ID and IssuedAt are filled in when empty.
func (c *Claims[T]) Sign(kp *KeyPair) (string, error) {
	c.Issuer = kp.PublicKey()
	if c.ID == "" {
		c.ID = nuid.Next()
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = time.Now().Unix()
	}
	if c.WascapRevision == 0 {
		c.WascapRevision = WascapRevision
	}
	body, err := encodeClaims(c)
	if err != nil {
		return "", fmt.Errorf("encode JWT claims: %w", err)
	}
	// One buffer holds the signing input and then the whole token.
	n := len(encodedHeader) + 1 + b64url.EncodedLen(len(body))
	tok := make([]byte, 0, n+1+b64url.EncodedLen(ed25519.SignatureSize))
	tok = b64url.AppendEncode(append(append(tok, encodedHeader...), '.'), body)
	tok = b64url.AppendEncode(append(tok, '.'), kp.Sign(tok[:n]))
	return string(tok), nil
}

// ParseJWT decodes a wascap JWT and verifies its header and signature against
// the key named in `iss`. It does not check times; call CheckTime for that.
func ParseJWT[T any](token string) (*Claims[T], error) {
	// The segments are sliced out of token, not split into new strings: the
	// signing input is token's own prefix.
	dot1 := strings.IndexByte(token, '.')
	dot2 := dot1 + 1 + strings.IndexByte(token[dot1+1:], '.')
	if dot1 < 0 || dot2 <= dot1 || strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return nil, fmt.Errorf("%w: want 3 dot-separated segments, got %d", ErrMalformedJWT, strings.Count(token, ".")+1)
	}
	header, body, signature := token[:dot1], token[dot1+1:dot2], token[dot2+1:]
	// Every signer we know writes the one header; anything else is decoded.
	if header != encodedHeader {
		hb, err := b64url.DecodeString(strings.TrimRight(header, "="))
		if err != nil {
			return nil, fmt.Errorf("%w: header: %v", ErrMalformedJWT, err)
		}
		var h jwtHeader
		if err := json.Unmarshal(hb, &h); err != nil {
			return nil, fmt.Errorf("%w: header: %v", ErrMalformedJWT, err)
		}
		if h.Type != "jwt" || h.Algorithm != "Ed25519" {
			return nil, fmt.Errorf("%w (got typ %q, alg %q)", ErrJWTAlgorithm, h.Type, h.Algorithm)
		}
	}
	cb, err := b64url.DecodeString(strings.TrimRight(body, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformedJWT, err)
	}
	sig, err := b64url.DecodeString(strings.TrimRight(signature, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformedJWT, err)
	}
	c := new(Claims[T])
	if err := decodeClaims(cb, c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformedJWT, err)
	}
	if c.Issuer == "" || c.Subject == "" {
		return nil, fmt.Errorf("%w: iss and sub are required", ErrMalformedJWT)
	}
	if err := Verify(c.Issuer, []byte(token[:dot2]), sig); err != nil {
		if errors.Is(err, lattice.ErrInvalidKey) {
			return nil, fmt.Errorf("%w: issuer: %v", ErrMalformedJWT, err)
		}
		return nil, fmt.Errorf("%w (issuer %s)", ErrJWTSignature, c.Issuer)
	}
	return c, nil
}

// decodeClaims decodes a token's claim set: invocation tokens through the
// fast path when they are in its subset, everything else with encoding/json
// (a Decoder, which ignores anything after the first value, as ParseJWT
// always has).
func decodeClaims[T any](b []byte, c *Claims[T]) error {
	if ic, ok := any(c).(*Claims[InvocationClaims]); ok {
		if decodeInvocationClaims(b, ic) {
			return nil
		}
		*ic = Claims[InvocationClaims]{}
	}
	return json.NewDecoder(bytes.NewReader(b)).Decode(c)
}

// CheckTime rejects an expired token or one used before its `nbf`. skew
// tolerates clocks that disagree by that much.
func (c *Claims[T]) CheckTime(now time.Time, skew time.Duration) error {
	s := int64(skew / time.Second)
	if c.Expires != 0 && now.Unix() > c.Expires+s {
		return fmt.Errorf("%w (exp %s)", ErrJWTExpired, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	if c.NotBefore != 0 && now.Unix()+s < c.NotBefore {
		return fmt.Errorf("%w (nbf %s)", ErrJWTNotYet, time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

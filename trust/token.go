package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latticed/latticed/lattice"
	"github.com/nats-io/nuid"
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
	// The JSON is written into a pooled buffer: only its base64 form is kept.
	scratch := claimsScratch.Get().(*[]byte)
	defer claimsScratch.Put(scratch)
	body, err := appendClaims((*scratch)[:0], c)
	if err != nil {
		return "", fmt.Errorf("encode JWT claims: %w", err)
	}
	if cap(body) <= maxPooledClaimsBytes {
		*scratch = body
	}
	// One buffer holds the signing input and then the whole token.
	n := len(encodedHeader) + 1 + b64url.EncodedLen(len(body))
	tok := make([]byte, 0, n+1+b64url.EncodedLen(ed25519.SignatureSize))
	tok = b64url.AppendEncode(append(append(tok, encodedHeader...), '.'), body)
	tok = b64url.AppendEncode(append(tok, '.'), kp.Sign(tok[:n]))
	return string(tok), nil
}

// claimsScratch holds the buffers Sign encodes claims into.
var claimsScratch = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledClaimsBytes bounds a pooled claims buffer: an invocation's claims
// take about 400 bytes; an actor's with many capabilities a few KiB.
const maxPooledClaimsBytes = 16 << 10

// ParseJWT decodes a wascap JWT and verifies its header and signature against
// the key named in `iss`. It does not check times; call CheckTime for that.
func ParseJWT[T any](token string) (*Claims[T], error) { return parseJWT[T](token, nil) }

// parseJWT is ParseJWT, verifying with the issuer's table in keys when it
// has one (keys may be nil).
func parseJWT[T any](token string, keys *keyTables) (*Claims[T], error) {
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
	// One buffer holds the token's bytes (Verify takes the signing input as
	// bytes, and the decoders read them from there rather than from new
	// copies), then the decoded claims and signature: every invocation
	// parses a token, and three copies would be three allocations.
	body, signature = strings.TrimRight(body, "="), strings.TrimRight(signature, "=")
	buf := make([]byte, len(token)+b64url.DecodedLen(len(body))+b64url.DecodedLen(len(signature)))
	copy(buf, token)
	signingInput := buf[:dot2]
	cb, err := decodeSegment(buf[len(token):], buf[dot1+1:dot1+1+len(body)])
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformedJWT, err)
	}
	sig, err := decodeSegment(buf[len(token)+len(cb):], buf[dot2+1:dot2+1+len(signature)])
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
	if err := keys.verify(c.Issuer, signingInput, sig); err != nil {
		if errors.Is(err, lattice.ErrInvalidKey) {
			return nil, fmt.Errorf("%w: issuer: %v", ErrMalformedJWT, err)
		}
		return nil, fmt.Errorf("%w (issuer %s)", ErrJWTSignature, c.Issuer)
	}
	return c, nil
}

// decodeSegment decodes the base64url segment src into dst, which has room
// for it, and returns the decoded bytes: what DecodeString returns, without
// its allocation.
func decodeSegment(dst, src []byte) ([]byte, error) {
	n, err := b64url.Decode(dst, src)
	return dst[:n:n], err
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

// Key errors callers can branch on. A malformed key or seed is
// lattice.ErrInvalidKey or lattice.ErrInvalidSeed.
var (
	ErrWrongKind = errors.New("nkey of the wrong kind")
	ErrBadSig    = errors.New("signature verification failed")
)

// KeyPair is an Ed25519 key with its nkey role. It is immutable.
type KeyPair struct {
	kind lattice.KeyKind
	priv ed25519.PrivateKey
	pub  string
}

// CreateKeyPair generates a fresh key of the given role.
func CreateKeyPair(kind lattice.KeyKind) (*KeyPair, error) {
	if !kind.Known() {
		return nil, fmt.Errorf("create key: %w: unknown kind %d", ErrWrongKind, kind)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create %s key: %w", kind, err)
	}
	return newKeyPair(kind, priv), nil
}

func newKeyPair(kind lattice.KeyKind, priv ed25519.PrivateKey) *KeyPair {
	return &KeyPair{kind: kind, priv: priv, pub: lattice.EncodePublicKey(kind, priv.Public().(ed25519.PublicKey))}
}

// ParseSeed decodes an nkey seed (`S` + role letter, 58 characters).
func ParseSeed(seed string) (*KeyPair, error) {
	kind, raw, err := lattice.DecodeSeed(seed)
	if err != nil {
		return nil, err
	}
	return newKeyPair(kind, ed25519.NewKeyFromSeed(raw)), nil
}

// ParseSeedOfKind is ParseSeed that also requires the role.
func ParseSeedOfKind(seed string, kind lattice.KeyKind) (*KeyPair, error) {
	kp, err := ParseSeed(seed)
	if err != nil {
		return nil, err
	}
	if kp.kind != kind {
		return nil, fmt.Errorf("%w: want a %s seed (S%c…), got a %s seed", ErrWrongKind, kind, kind.Letter(), kp.kind)
	}
	return kp, nil
}

// DerivedServiceKey is the public key (V…) of the service key whose seed is
// the SHA-256 of label. A provider named this way has the same key on every
// node, so a link made once works lattice-wide. Anyone can derive the private
// half, so such a key must sign nothing (invocations are signed with cluster
// or delegated keys) and grants no authority.
func DerivedServiceKey(label string) string {
	seed := sha256.Sum256([]byte(label))
	return newKeyPair(lattice.KindService, ed25519.NewKeyFromSeed(seed[:])).PublicKey()
}

// Kind is the key's role.
func (k *KeyPair) Kind() lattice.KeyKind { return k.kind }

// PublicKey is the 56-character public nkey.
func (k *KeyPair) PublicKey() string { return k.pub }

// Seed is the 58-character seed. Callers must never log it.
func (k *KeyPair) Seed() string { return lattice.EncodeSeed(k.kind, k.priv.Seed()) }

// Sign signs data with the private key.
func (k *KeyPair) Sign(data []byte) []byte { return ed25519.Sign(k.priv, data) }

// Verify checks an Ed25519 signature by the public nkey pub.
func Verify(pub string, data, sig []byte) error {
	_, key, err := lattice.DecodePublicKey(pub)
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, data, sig) {
		return ErrBadSig
	}
	return nil
}

// ErrModuleHashMismatch means the module changed after its claims were signed.
var ErrModuleHashMismatch = errors.New("module hash mismatch: the module was altered after signing")

// ErrNotActorClaims means the embedded token is not an actor's (wrong subject or issuer role).
var ErrNotActorClaims = errors.New("embedded claims are not actor claims")

// Actor is the `wascap` metadata of an actor's claims.
type Actor struct {
	Name      string   `json:"name,omitempty"`
	Hash      string   `json:"hash"`
	Tags      []string `json:"tags,omitempty"`
	Caps      []string `json:"caps,omitempty"`
	Rev       int32    `json:"rev,omitempty"`
	Ver       string   `json:"ver,omitempty"`
	CallAlias string   `json:"call_alias,omitempty"`
	Provider  bool     `json:"prov"`
}

// HasCapability reports whether the claims list the contract. Empty strings
// (real actors sometimes carry `caps: [""]`) never match.
func (a *Actor) HasCapability(contract string) bool {
	if contract == "" {
		return false
	}
	for _, c := range a.Caps {
		if c == contract {
			return true
		}
	}
	return false
}

// ActorClaims is an actor's signed claim set.
type ActorClaims = Claims[Actor]

// ActorRevision is `rev` when positive, else `iat`, as wasmCloud derives it.
func ActorRevision(c *ActorClaims) int32 {
	var rev int32
	if c.Wascap != nil {
		rev = c.Wascap.Rev
	}
	return revisionOrIAT(rev, c.IssuedAt)
}

// ProviderRevision is ActorRevision for a provider archive's claims; 0
// without claims (a built-in provider).
func ProviderRevision(c *ProviderClaims) int32 {
	if c == nil {
		return 0
	}
	var rev int32
	if c.Wascap != nil {
		rev = c.Wascap.Rev
	}
	return revisionOrIAT(rev, c.IssuedAt)
}

// revisionOrIAT is wasmCloud's rule for a claim set's revision: `rev` when
// it is positive, else `iat` (issued-at, seconds) cast to 32 bits. It holds
// wherever a revision is shown: get.claims' `rev`, the inventories'
// `revision`, the actor_started event.
func revisionOrIAT(rev int32, iat int64) int32 {
	if rev > 0 {
		return rev
	}
	return int32(iat)
}

// NormalizeCallAlias applies wascap's normalisation: trimmed, lowercased,
// non-ASCII dropped, space, '-' and '.' turned into '_'.
func NormalizeCallAlias(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		switch {
		case r > 127:
		case r == ' ' || r == '-' || r == '.':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SignActorOptions are the claims `latticed claims sign` writes.
type SignActorOptions struct {
	Name      string
	Caps      []string
	Tags      []string
	Rev       int32
	Ver       string
	CallAlias string
	NotBefore time.Time // zero: valid immediately
	Expires   time.Time // zero: never expires
}

// SignActor embeds claims for module into it: the hash is computed over the
// module without claims, the token is signed by the account key and names the
// module key as subject. Existing claims are replaced.
func SignActor(module []byte, opts SignActorOptions, account, subject *KeyPair) ([]byte, *ActorClaims, error) {
	if account.Kind() != lattice.KindAccount {
		return nil, nil, fmt.Errorf("sign actor: issuer: %w: want an account key, got %s", ErrWrongKind, account.Kind())
	}
	if subject.Kind() != lattice.KindModule {
		return nil, nil, fmt.Errorf("sign actor: subject: %w: want a module key, got %s", ErrWrongKind, subject.Kind())
	}
	stripped, err := StripClaims(module)
	if err != nil {
		return nil, nil, fmt.Errorf("sign actor: %w", err)
	}
	hash, _ := ModuleHash(stripped)
	c := &ActorClaims{
		Subject: subject.PublicKey(),
		Wascap: &Actor{
			Name: opts.Name, Hash: hash, Tags: opts.Tags, Caps: opts.Caps,
			Rev: opts.Rev, Ver: opts.Ver, CallAlias: NormalizeCallAlias(opts.CallAlias),
		},
	}
	if !opts.NotBefore.IsZero() {
		c.NotBefore = opts.NotBefore.Unix()
	}
	if !opts.Expires.IsZero() {
		c.Expires = opts.Expires.Unix()
	}
	token, err := c.Sign(account)
	if err != nil {
		return nil, nil, fmt.Errorf("sign actor: %w", err)
	}
	return EmbedClaimsJWT(stripped, token), c, nil
}

// ReadActorClaims extracts and verifies a module's claims: present, signature
// valid, issuer an account key, subject a module key, module hash matching.
// Times are not checked here (see VerifyActor).
func ReadActorClaims(module []byte) (*ActorClaims, error) {
	token, err := ExtractClaimsJWT(module)
	if err != nil {
		return nil, err
	}
	c, err := ParseJWT[Actor](token)
	if err != nil {
		return nil, fmt.Errorf("actor claims: %w", err)
	}
	if c.Wascap == nil {
		return nil, fmt.Errorf("actor claims: %w", ErrJWTNoMetadata)
	}
	if !lattice.IsPublicKey(c.Subject, lattice.KindModule) || !lattice.IsPublicKey(c.Issuer, lattice.KindAccount) {
		return nil, fmt.Errorf("%w: subject must be a module (M…) key and issuer an account (A…) key", ErrNotActorClaims)
	}
	hash, err := ModuleHash(module)
	if err != nil {
		return nil, err
	}
	// wasmCloud only enforces the hash from wascap revision 3 on; latticed
	// always does (docs/protocol.md §2).
	if !strings.EqualFold(hash, c.Wascap.Hash) {
		return c, fmt.Errorf("%w (claims say %s, module is %s)", ErrModuleHashMismatch, c.Wascap.Hash, hash)
	}
	return c, nil
}

// VerifyActor is ReadActorClaims plus the time checks, as a host applies at start.
func VerifyActor(module []byte, now time.Time) (*ActorClaims, error) {
	c, err := ReadActorClaims(module)
	if err != nil {
		return c, err
	}
	if err := c.CheckTime(now, 0); err != nil {
		return c, fmt.Errorf("actor claims: %w", err)
	}
	return c, nil
}

// FlattenActor converts actor claims to the cached form.
func FlattenActor(c *ActorClaims) lattice.CachedClaims {
	w := c.Wascap
	if w == nil {
		w = &Actor{}
	}
	return lattice.CachedClaims{
		CallAlias: w.CallAlias, Issuer: c.Issuer, Name: w.Name,
		Caps: strings.Join(w.Caps, ","), Rev: strconv.Itoa(int(ActorRevision(c))),
		Tags: strings.Join(w.Tags, ","), Version: w.Ver, Subject: c.Subject,
	}
}

// The invocation token is parsed once per invocation, on the hot path, and
// encoding/json spends more there than everything else in ParseJWT but the
// signature check. decodeInvocationClaims reads the form every signer writes
// (latticed's, and wascap's) without reflection. It accepts only a strict
// subset of JSON: exact lower-case keys, each at most once; strings of
// printable ASCII without escapes; unsigned integers without leading zeros.
// Anything else returns false and the caller decodes with encoding/json, so
// the result is always what encoding/json would give (FuzzInvocationClaims
// checks that on every input the fast path accepts).

// appendClaims appends json.Marshal(c) to b, written by hand for invocation
// claims whose strings need no escaping (TestEncodeClaimsMatchesMarshal).
func appendClaims[T any](b []byte, c *Claims[T]) ([]byte, error) {
	ic, ok := any(c).(*Claims[InvocationClaims])
	if !ok || !plainJSON(ic.ID) || !plainJSON(ic.Issuer) || !plainJSON(ic.Subject) ||
		(ic.Wascap != nil && (!plainJSON(ic.Wascap.TargetURL) || !plainJSON(ic.Wascap.OriginURL) || !plainJSON(ic.Wascap.Hash))) {
		j, err := json.Marshal(c)
		return append(b, j...), err
	}
	b = slices.Grow(b, 160+len(ic.ID)+len(ic.Issuer)+len(ic.Subject)+invocationWascapLen(ic.Wascap))
	b = append(b, '{')
	if ic.Expires != 0 {
		b = strconv.AppendInt(append(b, `"exp":`...), ic.Expires, 10)
		b = append(b, ',')
	}
	b = append(append(append(b, `"jti":"`...), ic.ID...), `","iat":`...)
	b = strconv.AppendInt(b, ic.IssuedAt, 10)
	b = append(append(append(b, `,"iss":"`...), ic.Issuer...), `","sub":"`...)
	b = append(append(b, ic.Subject...), '"')
	if ic.NotBefore != 0 {
		b = strconv.AppendInt(append(b, `,"nbf":`...), ic.NotBefore, 10)
	}
	if w := ic.Wascap; w != nil {
		b = append(append(append(b, `,"wascap":{"target_url":"`...), w.TargetURL...), `","origin_url":"`...)
		b = append(append(append(b, w.OriginURL...), `","hash":"`...), w.Hash...)
		b = append(b, `"}`...)
	}
	if ic.WascapRevision != 0 {
		b = strconv.AppendUint(append(b, `,"wascap_revision":`...), uint64(ic.WascapRevision), 10)
	}
	return append(b, '}'), nil
}

func invocationWascapLen(w *InvocationClaims) int {
	if w == nil {
		return 0
	}
	return len(w.TargetURL) + len(w.OriginURL) + len(w.Hash)
}

// plainJSON reports whether json.Marshal writes s unchanged between quotes:
// printable ASCII other than the quote, the backslash and the HTML
// characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decodeInvocationClaims fills c from the JSON object b, reporting false
// (with c in an unspecified state) when b is outside the fast subset.
func decodeInvocationClaims(b []byte, c *Claims[InvocationClaims]) bool {
	// The six strings are slices of one copy of b, made once.
	s := claimScanner{b: b, str: string(b)}
	var seen uint16
	ok := s.object(func(key []byte) bool {
		var bit uint16
		var ok bool
		switch string(key) { // no allocation: the compiler compares in place
		case "exp":
			bit, ok = 1<<0, s.int64(&c.Expires)
		case "jti":
			bit, ok = 1<<1, s.text(&c.ID)
		case "iat":
			bit, ok = 1<<2, s.int64(&c.IssuedAt)
		case "iss":
			bit, ok = 1<<3, s.text(&c.Issuer)
		case "sub":
			bit, ok = 1<<4, s.text(&c.Subject)
		case "nbf":
			bit, ok = 1<<5, s.int64(&c.NotBefore)
		case "wascap_revision":
			var v int64
			bit, ok = 1<<6, s.int64(&v)
			if ok && v > 1<<32-1 {
				return false
			}
			c.WascapRevision = uint32(v)
		case "wascap":
			w := new(InvocationClaims)
			c.Wascap = w
			var wseen uint8
			bit, ok = 1<<7, s.object(func(key []byte) bool {
				var wbit uint8
				var ok bool
				switch string(key) {
				case "target_url":
					wbit, ok = 1<<0, s.text(&w.TargetURL)
				case "origin_url":
					wbit, ok = 1<<1, s.text(&w.OriginURL)
				case "hash":
					wbit, ok = 1<<2, s.text(&w.Hash)
				default:
					return false
				}
				if wseen&wbit != 0 {
					return false
				}
				wseen |= wbit
				return ok
			})
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
	if !ok {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

// claimScanner walks the fast subset of JSON; every method reports false on
// anything outside it.
type claimScanner struct {
	b   []byte
	str string // b as a string: text hands out its substrings
	i   int
}

func (s *claimScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *claimScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}; member reads each value.
func (s *claimScanner) object(member func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.raw()
		if !ok || !s.byte(':') || !member(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// raw reads a string of printable ASCII without escapes and returns its bytes.
func (s *claimScanner) raw() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *claimScanner) text(dst *string) bool {
	v, ok := s.raw()
	if ok {
		end := s.i - 1 // the closing quote
		*dst = s.str[end-len(v) : end]
	}
	return ok
}

// int64 reads a non-negative integer of at most 18 digits (no sign, no
// fraction or exponent, no leading zero), which always fits.
func (s *claimScanner) int64(dst *int64) bool {
	s.space()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	digits := s.b[start:s.i]
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] { // a number must end here, not run on as 1.5 or 1e3
		case '.', 'e', 'E', '-', '+':
			return false
		}
	}
	var v int64
	for _, d := range digits {
		v = v*10 + int64(d-'0')
	}
	*dst = v
	return true
}

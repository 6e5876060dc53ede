package trust

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latticed/latticed/lattice"
)

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
	if c.Wascap != nil && c.Wascap.Rev > 0 {
		return c.Wascap.Rev
	}
	return int32(c.IssuedAt)
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
		Caps: strings.Join(w.Caps, ","), Rev: strconv.Itoa(int(w.Rev)),
		Tags: strings.Join(w.Tags, ","), Version: w.Ver, Subject: c.Subject,
	}
}

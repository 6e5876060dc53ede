package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Credentials are one minted NATS user. The seed is a secret: it goes into
// a 0600 creds file or a provider's HostData, never into a log (LogValue
// hides it).
type Credentials struct {
	Role    Role
	Name    string // user name in the JWT, e.g. "provider V…/default"
	UserKey string // U…: what the server revokes
	JWT     string
	Seed    string
	Issued  time.Time
	Expires time.Time // zero: never
	// InboxPrefix is the private reply-inbox prefix this user may subscribe
	// to (pass it to nats.CustomInboxPrefix): the one a provider finds in
	// HostData. Empty for credentials not minted here.
	InboxPrefix string
}

// CredsFile renders the NATS .creds format (JWT and seed).
func (c Credentials) CredsFile() ([]byte, error) {
	return jwt.FormatUserConfig(c.JWT, []byte(c.Seed))
}

// LogValue shows who the user is, never the JWT or seed.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role", string(c.Role)), slog.String("user", c.UserKey), slog.String("name", c.Name))
}

// errRevocationUnavailable means this authority cannot revoke users: it was
// given no way to update the account (external NATS without signing keys).
var errRevocationUnavailable = errors.New("per-provider revocation is unavailable")

// Authority mints NATS users in the lattice account, each with its role's
// permissions (permissions.go), and revokes them by updating the account's
// claims on the server.
//
// In embedded mode the supervisor is the operator: it signs the account
// JWTs, and users are signed by a signing key generated for this run only,
// so the users of an earlier run (admin.creds included) stop working when
// the node restarts, without any revocation-time arithmetic.
type Authority struct {
	scope         Scope
	account       string        // A…: the lattice account
	signer        nkeys.KeyPair // signs user JWTs
	issuerAccount string        // set when signer is a signing key of account
	lifetime      time.Duration // provider user JWT lifetime; 0 = no expiry (and no pruning)
	// margin is added to a revoked user's last expiry before its entry may
	// go: the truncation of exp to whole seconds and the skew between this
	// clock and the server's.
	margin time.Duration

	mu     sync.Mutex
	claims *jwt.AccountClaims // the lattice account as the server has it; nil = cannot revoke
	// encode signs account claims (operator key or operator signing key).
	encode func(*jwt.AccountClaims) (string, error)
	// apply makes the server use the signed account JWT (claims is what
	// it says, so an embedded server need not decode it again) and returns
	// once it has accepted it.
	apply func(ctx context.Context, accountJWT string, claims *jwt.AccountClaims) error
	// fetch, when set, reads the account as the server has it before each
	// change (an external account may be changed by others too).
	fetch func(ctx context.Context) (*jwt.AccountClaims, error)
	// prunable holds the revocation entries this authority made for users
	// whose JWTs expire: user key -> the time after which none of its JWTs
	// is valid, so the entry can go. Entries not in it (made by others, or
	// for users that never expire) are never removed.
	prunable map[string]time.Time
	// save, when set, persists prunable after each change (external mode:
	// the account outlives the process). A failure to save only leaves
	// entries listed longer, never shorter, so save logs it and goes on.
	save func(map[string]time.Time)
}

// Account is the lattice account's public key (A…).
func (a *Authority) Account() string { return a.account }

// CanRevoke reports whether Revoke can cut a user off.
func (a *Authority) CanRevoke() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.claims != nil && a.apply != nil
}

// Mint creates a user with a fresh key for role. For RoleProvider, s names
// the provider (key, link name, contract); the lattice-wide fields of s are
// taken from the authority.
func (a *Authority) Mint(role Role, name string, s Scope) (Credentials, error) {
	s.LatticePrefix, s.CtlTopicPrefix, s.JSDomain = a.scope.LatticePrefix, a.scope.CtlTopicPrefix, a.scope.JSDomain
	s.PolicyTopic, s.PolicyChangesTopic = a.scope.PolicyTopic, a.scope.PolicyChangesTopic
	user, err := nkeys.CreateUser()
	if err != nil {
		return Credentials{}, fmt.Errorf("create user key: %w", err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	s.UserKey = pub // names a provider's private inbox
	perms, err := s.Permissions(role)
	if err != nil {
		return Credentials{}, err
	}
	return a.issue(role, name, pub, string(seed), perms)
}

// Remint issues a new JWT for c's user key with the permissions of its role
// for s (a provider whose grants changed: a key-value link added or
// removed), and a fresh expiry. The seed stays the same, so the provider
// can use it for its next connection (lattice.RPCCredentials).
func (a *Authority) Remint(c Credentials, s Scope) (Credentials, error) {
	s.LatticePrefix, s.CtlTopicPrefix, s.JSDomain = a.scope.LatticePrefix, a.scope.CtlTopicPrefix, a.scope.JSDomain
	s.PolicyTopic, s.PolicyChangesTopic = a.scope.PolicyTopic, a.scope.PolicyChangesTopic
	s.UserKey = c.UserKey
	perms, err := s.Permissions(c.Role)
	if err != nil {
		return Credentials{}, err
	}
	return a.issue(c.Role, c.Name, c.UserKey, c.Seed, perms)
}

// issue signs a user JWT for the user key pub.
func (a *Authority) issue(role Role, name, pub, seed string, perms jwt.Permissions) (Credentials, error) {
	inbox := inboxPrefix(a.scope.LatticePrefix, role)
	if role == RoleProvider {
		inbox = providerInbox(a.scope.LatticePrefix, pub)
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.IssuerAccount = a.issuerAccount
	uc.Permissions = perms
	now := time.Now()
	// Only provider users expire: they are the only ones ever revoked
	// (Supervisor.Revoke), so only their revocation entries need to go. The
	// host's and the admin users live as long as the run (embedded mode
	// signs them with a signing key made for this run only) and are never
	// in the revocation list.
	expires := role == RoleProvider && a.lifetime > 0
	if expires {
		uc.Expires = now.Add(a.lifetime).Unix()
	}
	token, err := uc.Encode(a.signer)
	if err != nil {
		return Credentials{}, fmt.Errorf("sign user JWT for %s: %w", name, err)
	}
	c := Credentials{Role: role, Name: name, UserKey: pub, JWT: token, Seed: seed, Issued: now, InboxPrefix: inbox}
	if expires {
		c.Expires = time.Unix(uc.Expires, 0)
	}
	return c, nil
}

// Renew issues a new JWT for the same user key (same role and permissions)
// with a fresh expiry; the seed stays the same.
func (a *Authority) Renew(c Credentials) (Credentials, error) {
	uc, err := jwt.DecodeUserClaims(c.JWT)
	if err != nil {
		return Credentials{}, err
	}
	now := time.Now()
	if c.Role == RoleProvider && a.lifetime > 0 {
		uc.Expires = now.Add(a.lifetime).Unix()
	}
	token, err := uc.Encode(a.signer)
	if err != nil {
		return Credentials{}, err
	}
	c.JWT, c.Issued = token, now
	if c.Role == RoleProvider && a.lifetime > 0 {
		c.Expires = time.Unix(uc.Expires, 0)
	}
	return c, nil
}

// Revoke adds userKey to the account's revocations and applies the updated
// account to the server, which closes that user's connections and refuses
// it from then on. It returns once the server accepted the update.
//
// Revocations are per user key and every launch mints a fresh key, so the
// one-second resolution of revocation times never catches a successor: a
// user issued in the same second as its predecessor's revocation has a
// different key.
//
// The same update drops the entries of users revoked earlier whose JWTs
// have all expired (prune), so the account JWT stays as large as the
// revocations of one credentials lifetime.
func (a *Authority) Revoke(ctx context.Context, userKey string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.updateLocked(ctx, userKey)
}

// Prune removes the expired revocation entries this authority made and
// applies the account if any went. It is called at start; Revoke prunes
// on every update.
func (a *Authority) Prune(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.updateLocked(ctx, "")
}

// RevocationCount is the number of entries in the account's revocation
// list as last applied, and the size of the account JWT that carried it.
func (a *Authority) RevocationCount() (entries int, jwtBytes int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.claims == nil || a.encode == nil {
		return 0, 0, errRevocationUnavailable
	}
	// Encode a copy: encoding stamps the claims, and the applied ones may
	// be held by the embedded server.
	c := *a.claims
	token, err := a.encode(&c)
	if err != nil {
		return 0, 0, fmt.Errorf("sign account JWT: %w", err)
	}
	return len(c.Revocations), len(token), nil
}

// updateLocked applies the account with userKey revoked ("" = none) and
// the expired entries of prunable removed. With nothing to change it
// applies nothing.
func (a *Authority) updateLocked(ctx context.Context, userKey string) error {
	if a.claims == nil || a.apply == nil {
		return errRevocationUnavailable
	}
	if a.fetch != nil {
		current, err := a.fetch(ctx)
		if err != nil {
			return err
		}
		a.claims = current
	}
	now := time.Now()
	next := *a.claims
	next.Revocations = make(jwt.RevocationList, len(a.claims.Revocations)+1)
	for k, v := range a.claims.Revocations {
		next.Revocations[k] = v
	}
	keep := make(map[string]time.Time, len(a.prunable)+1)
	pruned := 0
	for k, after := range a.prunable {
		if _, listed := next.Revocations[k]; !listed {
			continue // removed by someone else: nothing left to prune
		}
		// Past after, every JWT issued for k has expired: the server
		// refuses it as expired whether or not it is listed.
		if now.After(after) && k != userKey {
			next.Revocations.ClearRevocation(k)
			pruned++
			continue
		}
		keep[k] = after
	}
	if userKey != "" {
		// Revoke everything issued up to now for this key: its JWT's iat
		// is at most this second.
		next.RevokeAt(userKey, now)
		if a.lifetime > 0 {
			// No JWT is issued for a revoked key (its renewals stop), so
			// the last one expires at most a lifetime from now.
			keep[userKey] = now.Add(a.lifetime + a.margin)
		}
	} else if pruned == 0 {
		a.prunable = keep
		return nil
	}
	token, err := a.encode(&next)
	if err != nil {
		return fmt.Errorf("sign account JWT: %w", err)
	}
	if err := a.apply(ctx, token, &next); err != nil {
		if userKey == "" {
			return fmt.Errorf("apply account with %d expired revocations pruned: %w", pruned, err)
		}
		return fmt.Errorf("apply revocation of %s: %w", userKey, err)
	}
	a.claims, a.prunable = &next, keep
	if a.save != nil {
		a.save(keep)
	}
	return nil
}

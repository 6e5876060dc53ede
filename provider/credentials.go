package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/lattice"
)

// ErrRenewalRefused is wrapped by every reason a renewed user JWT is not
// applied (see checkRenewal).
var ErrRenewalRefused = errors.New("renewed credentials refused")

// userCreds is the provider's NATS identity: a fixed key pair (the seed
// from HostData) and the JWT currently vouching for it, which the
// supervisor renews (lattice.RPCCredentials) before it expires and re-mints
// when the provider's grants change (docs/security.md).
type userCreds struct {
	kp nkeys.KeyPair

	mu     sync.Mutex
	token  string
	claims *jwt.UserClaims
}

func newUserCreds(token, seed string) (*userCreds, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("%w: lattice_rpc_user_seed: not a valid seed", lattice.ErrHostData)
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return nil, fmt.Errorf("%w: lattice_rpc_user_jwt: %v", lattice.ErrHostData, err)
	}
	pub, _ := kp.PublicKey()
	if uc.Subject != pub {
		return nil, fmt.Errorf("%w: lattice_rpc_user_jwt is for user %s, the seed is %s's", lattice.ErrHostData, uc.Subject, pub)
	}
	return &userCreds{kp: kp, token: token, claims: uc}, nil
}

// current is the JWT to present now: nats.UserJWT calls it on every
// connect and reconnect, so a reconnect after a renewal uses the renewal.
func (c *userCreds) current() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, nil
}

// sign answers the server's nonce with the user key.
func (c *userCreds) sign(nonce []byte) ([]byte, error) { return c.kp.Sign(nonce) }

// errUnchanged is a renewal equal to the current JWT (a repeat): nothing to do.
var errUnchanged = errors.New("same JWT as the current one")

// offer checks token against the current JWT and, when it passes, makes it
// the current one.
func (c *userCreds) offer(token string, now time.Time) (*jwt.UserClaims, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if token == c.token {
		return nil, errUnchanged
	}
	next, err := checkRenewal(c.claims, token, now)
	if err != nil {
		return nil, err
	}
	c.token, c.claims = token, next
	return next, nil
}

// checkRenewal decides whether token may replace the user JWT cur: it must
// be a validly signed user JWT for the same user key, from the same issuer
// (the account or the signing key that issued cur, for the same account),
// not expired, issued no earlier and expiring no earlier than cur. Anything
// else is refused, so a stray or forged message can neither lock the
// provider out nor bring back an older (possibly wider) grant.
func checkRenewal(cur *jwt.UserClaims, token string, now time.Time) (*jwt.UserClaims, error) {
	next, err := jwt.DecodeUserClaims(token) // verifies the signature against its issuer
	if err != nil {
		return nil, fmt.Errorf("%w: not a user JWT: %v", ErrRenewalRefused, err)
	}
	switch {
	case next.Subject != cur.Subject:
		return nil, fmt.Errorf("%w: for user %s, this provider is %s", ErrRenewalRefused, next.Subject, cur.Subject)
	case next.Issuer != cur.Issuer || next.IssuerAccount != cur.IssuerAccount:
		return nil, fmt.Errorf("%w: issued by %s (account %q), the current one by %s (account %q)",
			ErrRenewalRefused, next.Issuer, next.IssuerAccount, cur.Issuer, cur.IssuerAccount)
	case next.Expires != 0 && next.Expires <= now.Unix():
		return nil, fmt.Errorf("%w: expired at %s", ErrRenewalRefused, time.Unix(next.Expires, 0).UTC())
	case next.IssuedAt < cur.IssuedAt:
		return nil, fmt.Errorf("%w: issued before the current one", ErrRenewalRefused)
	case cur.Expires == 0 && next.Expires != 0:
		return nil, fmt.Errorf("%w: expires, the current one does not", ErrRenewalRefused)
	case cur.Expires != 0 && next.Expires == 0:
		// Short-lived credentials are how a revocation takes effect without
		// the operator key: a renewal must not end that.
		return nil, fmt.Errorf("%w: never expires, the current one does", ErrRenewalRefused)
	case cur.Expires != 0 && next.Expires != 0 && next.Expires < cur.Expires:
		return nil, fmt.Errorf("%w: expires before the current one", ErrRenewalRefused)
	}
	return next, nil
}

// permissions are the current JWT's permissions (nil: no JWT).
func (c *userCreds) permissions() *jwt.Permissions {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	perms := c.claims.Permissions
	return &perms
}

// MayPublish reports whether the provider's current lattice connection may
// publish on subject, as far as its user JWT says (true when the provider
// has no JWT, or no connection yet). A capability waiting for a grant the
// supervisor is about to send (a key-value bucket) asks this rather than
// trying, which the server would report as a permissions violation.
func (p *Provider) MayPublish(subject string) bool {
	s := p.sess.Load()
	if s == nil || s.perms == nil {
		return true
	}
	allowed := len(s.perms.Pub.Allow) == 0
	for _, f := range s.perms.Pub.Allow {
		allowed = allowed || subjectMatches(f, subject)
	}
	for _, f := range s.perms.Pub.Deny {
		if subjectMatches(f, subject) {
			return false
		}
	}
	return allowed
}

// subjectMatches reports whether the literal subject matches filter ('*' one
// token, '>' the rest).
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// handleCredentials receives a renewed JWT. It only checks and records it
// here (the next connect presents it) and leaves the handover to
// runHandovers, which must not run on a subscription of the connection it
// retires.
func (p *Provider) handleCredentials(m *nats.Msg) {
	next, err := p.creds.offer(string(m.Data), time.Now())
	switch {
	case errors.Is(err, errUnchanged):
		return
	case err != nil:
		p.metrics.CredentialRenewal(RenewalRefused)
		p.log.Warn("ignoring renewed credentials", "err", err)
		return
	}
	p.log.Debug("credentials renewed", "user", next.Subject, "expires", expiry(next.Expires))
	select {
	case p.renewed <- struct{}{}:
	default: // a handover is already due; it will present the latest JWT
	}
}

func expiry(unix int64) string {
	if unix == 0 {
		return "never"
	}
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}

// Bounds of the wait before a failed handover is tried again.
const (
	handoverRetryMin = time.Second
	handoverRetryMax = 30 * time.Second
)

// runHandovers moves the provider to a new connection after each renewal,
// until quit is closed. A server checks a user's JWT (expiry, permissions)
// only when the connection is made and closes it when that JWT expires, so
// a renewal, and above all a re-mint with other permissions, takes effect
// only on a new connection. A handover that fails (the server busy or
// briefly unreachable) is tried again, with backoff, until one succeeds:
// a re-mint granting a key-value bucket must not wait for the old JWT's
// expiry to take effect.
func (p *Provider) runHandovers(ctx context.Context, quit <-chan struct{}) {
	retry := time.NewTimer(handoverRetryMin)
	retry.Stop()
	defer retry.Stop()
	backoff := handoverRetryMin
	for {
		select {
		case <-quit:
			return
		case <-p.renewed:
		case <-retry.C:
		}
		retry.Stop() // this attempt replaces a pending retry (a renewal may have come first)
		if err := p.handover(ctx); err != nil {
			// The old connection stays meanwhile; should the server close
			// it at its JWT's expiry, its reconnect presents the renewed JWT.
			p.metrics.CredentialRenewal(RenewalHandoverFailed)
			p.log.Warn("could not move to a connection with the renewed credentials; keeping the current one and trying again",
				"err", err, "retry_in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, handoverRetryMax)
			continue
		}
		backoff = handoverRetryMin
		p.metrics.CredentialRenewal(RenewalApplied)
	}
}

// handover connects anew, subscribes everything there, makes the new
// session current and retires the old one.
func (p *Provider) handover(ctx context.Context) error {
	perms := p.creds.permissions() // what the JWT presented below grants (or a later one's)
	nc, err := nats.Connect(p.url(), p.natsOptions(false)...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	old := p.sess.Load()
	old.handingOver.Store(true) // before next subscribes: the link feed keeps what both may receive
	next, err := p.subscribe(nc, perms, true)
	if err != nil {
		old.handingOver.Store(false)
		nc.Close()
		return err
	}
	old.next.Store(next)
	p.sess.Store(next)
	p.nc.Store(nc)
	p.metrics.Conn(nc)
	p.log.Info("moved to a new lattice connection with renewed credentials", "url", nc.ConnectedUrlRedacted())
	p.retire(ctx, old)
	return nil
}

// retire stops old taking invocations, waits (bounded by DrainTimeout) for
// the ones it holds and its outbound calls, then closes it.
func (p *Provider) retire(ctx context.Context, old *session) {
	for _, s := range old.subs {
		_ = s.Unsubscribe()
	}
	// Once the server has taken the unsubscribes (a flush of old) nothing
	// more reaches old's link channel; once next is flushed, next's channel
	// holds every link definition old received since next subscribed.
	// Then the link feed may move to next.
	_ = old.nc.FlushTimeout(time.Second)
	if next := old.next.Load(); next != nil {
		_ = next.nc.FlushTimeout(time.Second)
	}
	close(old.linksDone)
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DrainTimeout)
	defer cancel()
	if old.rpcSub != nil {
		closed := old.rpcSub.StatusChanged(nats.SubscriptionClosed)
		if err := old.rpcSub.Drain(); err == nil {
			select {
			case <-closed:
			case <-dctx.Done():
				p.log.Warn("old connection's invocation subscription did not drain in time", "timeout", p.cfg.DrainTimeout)
			}
		}
	}
	select {
	case <-old.retire():
	case <-dctx.Done():
		p.log.Warn("invocations on the old connection did not finish in time", "timeout", p.cfg.DrainTimeout)
	}
	_ = old.nc.FlushTimeout(time.Second)
	old.nc.Close()
}

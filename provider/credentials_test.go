package provider

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
)

// A renewal replaces the current user JWT only when it is for the same
// user, from the same issuer, not expired, and neither older nor
// shorter-lived than the current one; everything else is refused.
func TestRenewalIsCheckedBeforeItIsApplied(t *testing.T) {
	now := time.Now()
	k := newUserKeys(t)
	account, accountPub, signing, userPub := k.account, k.accountPub, k.signing, k.userPub
	other, _ := nkeys.CreateAccount()
	stranger, _ := nkeys.CreateUser()
	strangerPub, _ := stranger.PublicKey()

	type claims struct {
		subject       string
		signer        nkeys.KeyPair
		issuerAccount string
		exp           time.Time
	}
	// jwt's Encode stamps iat with the current second, so tokens minted here
	// are issued "now"; the current JWT's iat is set below instead.
	mint := func(c claims) string { return mintUser(t, c.subject, c.signer, c.issuerAccount, c.exp) }
	base := claims{subject: userPub, signer: signing, issuerAccount: accountPub, exp: now.Add(10 * time.Second)}
	current := func(iat time.Time) *jwt.UserClaims {
		uc, err := jwt.DecodeUserClaims(mint(base))
		if err != nil {
			t.Fatal(err)
		}
		uc.IssuedAt = iat.Unix()
		return uc
	}
	with := func(f func(*claims)) string { c := base; c.exp = now.Add(20 * time.Second); f(&c); return mint(c) }

	old := current(now.Add(-10 * time.Second))
	for _, tc := range []struct {
		name  string
		cur   *jwt.UserClaims
		token string
		ok    bool
	}{
		{"later expiry, same user and signing key", old, with(func(*claims) {}), true},
		{"garbage", old, "not a jwt", false},
		{"another user", old, with(func(c *claims) { c.subject = strangerPub }), false},
		{"signed by another account key", old, with(func(c *claims) { c.signer = other }), false},
		{"signed by the account itself instead of its signing key", old, with(func(c *claims) { c.signer, c.issuerAccount = account, "" }), false},
		{"already expired", old, with(func(c *claims) { c.exp = now.Add(-time.Second) }), false},
		{"expires before the current one", old, with(func(c *claims) { c.exp = now.Add(5 * time.Second) }), false},
		{"issued before the current one", current(now.Add(time.Minute)), with(func(*claims) {}), false},
		{"never expires while the current one does", old, with(func(c *claims) { c.exp = time.Time{} }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkRenewal(tc.cur, tc.token, now)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrRenewalRefused) {
				t.Fatalf("err %v, want ErrRenewalRefused", err)
			}
		})
	}
}

// userKeys are a provider's NATS user and the account (with a signing key)
// that issues its JWTs.
type userKeys struct {
	account, signing, user nkeys.KeyPair
	accountPub, userPub    string
}

func newUserKeys(t *testing.T) userKeys {
	t.Helper()
	var k userKeys
	var err error
	if k.account, err = nkeys.CreateAccount(); err == nil {
		if k.signing, err = nkeys.CreateAccount(); err == nil {
			k.user, err = nkeys.CreateUser()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	k.accountPub, _ = k.account.PublicKey()
	k.userPub, _ = k.user.PublicKey()
	return k
}

// mintUser signs a user JWT for subject with signer, a signing key of
// issuerAccount ("" when signer is the account), expiring at exp (zero:
// never).
func mintUser(t *testing.T, subject string, signer nkeys.KeyPair, issuerAccount string, exp time.Time) string {
	t.Helper()
	uc := jwt.NewUserClaims(subject)
	uc.IssuerAccount = issuerAccount
	if !exp.IsZero() {
		uc.Expires = exp.Unix()
	}
	tok, err := uc.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refusingDialer dials the NATS server, refusing as many dials as refuse
// holds (a server at its connection limit, briefly unreachable).
type refusingDialer struct {
	refuse atomic.Int32
	d      net.Dialer
}

func (r *refusingDialer) Dial(network, address string) (net.Conn, error) {
	if r.refuse.Add(-1) >= 0 {
		return nil, fmt.Errorf("dial %s: refused by the test", address)
	}
	return r.d.Dial(network, address)
}

// A renewal whose handover fails is not left waiting for the next renewal:
// the handover is tried again, with backoff, until the provider runs on a
// connection made with the renewed JWT (under latticed a re-mint granting a
// key-value bucket comes this way, and its link waits for it).
func TestFailedHandoverIsTriedAgain(t *testing.T) {
	e := newEnv(t)
	k := newUserKeys(t)
	seed, _ := k.user.Seed()
	mint := func(ttl time.Duration) string {
		return mintUser(t, k.userPub, k.signing, k.accountPub, time.Now().Add(ttl))
	}
	hd := e.hostData()
	hd.LatticeRPCUserJWT, hd.LatticeRPCUserSeed = mint(time.Minute), string(seed)
	dialer := &refusingDialer{}
	m := toldMetrics{told: make(chan string, 16), conns: make(chan *nats.Conn, 4)}
	r := startConfig(t, Config{HostData: hd, Metrics: m, NATSOptions: []nats.Option{nats.SetCustomDialer(dialer)}}, &fakeCapability{})
	first := <-m.conns

	dialer.refuse.Store(2)
	renewal := mint(2 * time.Minute)
	if err := e.nc.Publish(lattice.RPCCredentials("test", e.prov, "default"), []byte(renewal)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Renewal{RenewalHandoverFailed, RenewalHandoverFailed, RenewalApplied} {
		select {
		case got := <-m.told:
			if w := fmt.Sprintf("renewal %d", want); got != w {
				t.Fatalf("metrics told %q, want %q", got, w)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("metrics told nothing in 15s, want renewal %d", want)
		}
	}
	var next *nats.Conn
	select {
	case next = <-m.conns:
	default:
		t.Fatal("metrics not told of a new connection")
	}
	if next == first || next != r.p.Conn() || !next.IsConnected() {
		t.Errorf("the provider runs on %p (connected %v), want the new connection %p, not the first %p",
			r.p.Conn(), r.p.Conn().IsConnected(), next, first)
	}
	if tok, _ := r.p.creds.current(); tok != renewal {
		t.Error("the new connection does not present the renewed JWT")
	}
	if !first.IsClosed() {
		t.Error("the first connection was not closed")
	}
}

// During a handover both connections receive link definitions for a moment.
// Each change must still be applied once, in the order it was sent: a link
// changed back to an older value, even briefly, would make a capability
// close and reopen what it serves (an HTTP listener) for nothing.
func TestLinkChangesDuringHandoversAreAppliedOnceInOrder(t *testing.T) {
	e := newEnv(t)
	k := newUserKeys(t)
	seed, _ := k.user.Seed()
	ttl := time.Minute
	mint := func() string {
		ttl += time.Second // each renewal outlives the one before
		return mintUser(t, k.userPub, k.signing, k.accountPub, time.Now().Add(ttl))
	}
	hd := e.hostData()
	hd.LatticeRPCUserJWT, hd.LatticeRPCUserSeed = mint(), string(seed)
	m := toldMetrics{told: make(chan string, 64), conns: make(chan *nats.Conn, 64)}
	f := &fakeCapability{}
	startConfig(t, Config{HostData: hd, Metrics: m}, f)

	const renewals = 20
	stop, done := make(chan struct{}), make(chan int)
	go func() { // link changes all along the renewals
		i := 0
		for {
			select {
			case <-stop:
				done <- i
				return
			default:
			}
			i++
			e.publishLink(t, false, e.link(e.actor, strconv.Itoa(i)))
			if i%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for range renewals {
		if err := e.nc.Publish(lattice.RPCCredentials("test", e.prov, "default"), []byte(mint())); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-m.told:
			if got != fmt.Sprintf("renewal %d", RenewalApplied) {
				t.Fatalf("metrics told %q, want an applied renewal", got)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a renewal was not applied in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	last := fmt.Sprintf("put %s %d", e.actor[:4], <-done)
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if ev := f.Events(); len(ev) == 0 || ev[len(ev)-1] != last {
			return fmt.Errorf("last event %q, want %q", ev[len(ev)-1:], last)
		}
		return nil
	})
	prev := 0
	for _, ev := range f.Events() {
		var actor string
		var v int
		if _, err := fmt.Sscanf(ev, "put %s %d", &actor, &v); err != nil {
			continue // the deletion of the value it replaces
		}
		if v <= prev {
			t.Fatalf("link put with value %d after %d: a change was applied twice or out of order", v, prev)
		}
		prev = v
	}
}

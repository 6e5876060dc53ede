package provider

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// A renewal replaces the current user JWT only when it is for the same
// user, from the same issuer, not expired, and neither older nor
// shorter-lived than the current one; everything else is refused.
func TestRenewalIsCheckedBeforeItIsApplied(t *testing.T) {
	now := time.Now()
	account, _ := nkeys.CreateAccount()
	accountPub, _ := account.PublicKey()
	signing, _ := nkeys.CreateAccount()
	other, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
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
	mint := func(c claims) string {
		t.Helper()
		uc := jwt.NewUserClaims(c.subject)
		uc.IssuerAccount = c.issuerAccount
		if !c.exp.IsZero() {
			uc.Expires = c.exp.Unix()
		}
		tok, err := uc.Encode(c.signer)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
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

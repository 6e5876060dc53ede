package host

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// signedAt re-signs inv's antiforgery token with iat set to at, as anyone
// holding the cluster seed could: the signature is valid.
func signedAt(t *testing.T, signer *trust.KeyPair, inv *lattice.Invocation, at time.Time) []byte {
	t.Helper()
	c, err := trust.ParseJWT[trust.InvocationClaims](inv.EncodedClaims)
	if err != nil {
		t.Fatal(err)
	}
	c.IssuedAt, c.ID = at.Unix(), ""
	if inv.EncodedClaims, err = c.Sign(signer); err != nil {
		t.Fatal(err)
	}
	b, err := inv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitUntil lets the wall clock pass at: the replay window is measured on the
// host's real clock, so the attack has to wait it out.
func waitUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

func TestAttackFutureDatedInvocationIsRefused(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.ClockSkew = 2 * time.Second })
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor("test", echo.Key)

	for _, ahead := range []time.Duration{time.Minute, time.Hour, 10 * 365 * 24 * time.Hour} {
		t.Run(ahead.String(), func(t *testing.T) {
			rejected := f.m.InvocationsRejected.WithLabelValues(string(lattice.ReasonExpired))
			before := testutil.ToFloat64(rejected)
			inv := f.invocation(t, f.cluster, lattice.ActorEntity(caller.PublicKey()), echo.Key, "Echo.Echo", []byte("x"))
			resp := f.raw(t, subject, signedAt(t, f.cluster, inv, time.Now().Add(ahead)))
			if !strings.Contains(resp.Error, string(lattice.ReasonExpired)) || !strings.Contains(resp.Error, "in the future") {
				t.Fatalf("error %q, want %s ... in the future", resp.Error, lattice.ReasonExpired)
			}
			if got := testutil.ToFloat64(rejected); got != before+1 {
				t.Fatalf("rejections[expired] = %v, want %v", got, before+1)
			}
			mustEcho(t, f, echo.Key)
		})
	}
}

func TestAttackReplayAfterGuardRotationIsRefused(t *testing.T) {
	// With a 3 s window the old guard rotated every 3 s and forgot an id after
	// two rotations, while a token issued 3 s ahead (inside the skew) stayed
	// fresh until iat+window+skew = t0+11 s. The replay at about t0+6.6 s falls
	// in between.
	const window, skew = 3 * time.Second, 5 * time.Second
	f := newFixture(t, func(o *Options) { o.ReplayWindow, o.ClockSkew = window, skew })
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	origin := lattice.ActorEntity(caller.PublicKey())
	subject := lattice.RPCActor("test", echo.Key)

	t0 := time.Now()
	iat := t0.Add(window)
	captured := signedAt(t, f.cluster, f.invocation(t, f.cluster, origin, echo.Key, "Echo.Echo", []byte("x")), iat)
	if resp := f.raw(t, subject, captured); resp.Error != "" {
		t.Fatalf("first delivery: %s", resp.Error)
	}
	for _, at := range []time.Duration{window + window/10, 2*window + window/5} {
		waitUntil(t0.Add(at))
		mustEcho(t, f, echo.Key) // other traffic makes the guard rotate
	}
	resp := f.raw(t, subject, captured)
	if time.Unix(iat.Unix(), 0).Add(window + skew).Before(time.Now()) {
		t.Fatalf("the machine was too slow: the replay arrived after the token stopped being fresh (%s after t0)", time.Since(t0))
	}
	if !strings.Contains(resp.Error, string(lattice.ReasonReplayed)) || !strings.Contains(resp.Error, "already seen") {
		t.Fatalf("replay after two rotations: error %q, want %s ... already seen", resp.Error, lattice.ReasonReplayed)
	}
}

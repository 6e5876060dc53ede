package trust

import (
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/lattice"
)

// issuedAtTime re-signs inv's antiforgery token with iat set to at, as a
// holder of the cluster seed could.
func (f invFixture) issuedAtTime(t *testing.T, inv *lattice.Invocation, at time.Time) *lattice.Invocation {
	t.Helper()
	c, err := ParseJWT[InvocationClaims](inv.EncodedClaims)
	if err != nil {
		t.Fatal(err)
	}
	c.IssuedAt, c.ID = at.Unix(), ""
	if inv.EncodedClaims, err = c.Sign(f.cluster); err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestIssuersFreshnessBothWays(t *testing.T) {
	const window, skew = 5 * time.Minute, 30 * time.Second
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name string
		iat  time.Duration        // relative to now
		want lattice.RejectReason // "" = accepted
		msg  string
	}{
		{"now", 0, "", ""},
		{"ahead within skew", skew, "", ""},
		{"ahead beyond skew", skew + 2*time.Second, lattice.ReasonExpired, "in the future"},
		{"an hour ahead", time.Hour, lattice.ReasonExpired, "in the future"},
		{"ten years ahead", 10 * 365 * 24 * time.Hour, lattice.ReasonExpired, "in the future"},
		{"at the window's end", -(window + skew), "", ""},
		{"older than the window", -(window + skew + 2*time.Second), lattice.ReasonReplayed, "older than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newInvFixture(t, WithReplayGuard(NewReplayGuard(window, 1000)), WithClockSkew(skew),
				WithClock(func() time.Time { return now }))
			inv := f.issuedAtTime(t, f.invoke(t, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), "Echo.Echo", nil), now.Add(tc.iat))
			_, err := f.policy.Check(inv, f.actor)
			if got := lattice.ReasonOf(err); got != tc.want || err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("reason %q (%v), want %q containing %q", got, err, tc.want, tc.msg)
			}
		})
	}
}

func TestReplayIsRefusedForAsLongAsTheTokenIsFresh(t *testing.T) {
	// The guard's generations rotate every window on the old code, so an id
	// was forgotten after two rotations while a token issued ahead (within
	// the skew) was still fresh. Replays at each step below must be refused.
	const window, skew = time.Minute, 30 * time.Second
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	f := newInvFixture(t, WithReplayGuard(NewReplayGuard(window, 1000)), WithClockSkew(skew),
		WithClock(func() time.Time { return now }))
	fresh := func() *lattice.Invocation {
		return f.invoke(t, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), "Echo.Echo", nil)
	}
	check := func(inv *lattice.Invocation, want lattice.RejectReason) {
		t.Helper()
		if _, err := f.policy.Check(inv, f.actor); lattice.ReasonOf(err) != want {
			t.Fatalf("at t0%+v: %v, want %q", now.Sub(t0), err, want)
		}
	}

	now = t0.Add(-59 * time.Second)
	check(f.issuedAtTime(t, fresh(), now), "") // starts the guard's first generation
	now = t0
	captured := f.issuedAtTime(t, fresh(), t0.Add(skew)) // fresh until t0+skew+window+skew
	check(captured, "")
	for _, at := range []time.Duration{time.Second, 61 * time.Second, 119 * time.Second, window + 2*skew} {
		now = t0.Add(at)
		check(f.issuedAtTime(t, fresh(), now), "") // other traffic rotates the guard
		check(captured, lattice.ReasonReplayed)
	}
	if r := f.policy.replay.Retention(); r != window+2*skew {
		t.Fatalf("retention %s, want %s", r, window+2*skew)
	}
}

func TestReplayGuardForgetsEverythingAfterTwoIdlePeriods(t *testing.T) {
	g := NewReplayGuard(time.Minute, 10)
	t0 := time.Now()
	g.Remember("a", t0)
	if !g.Remember("b", t0.Add(2*time.Minute)) || !g.Remember("a", t0.Add(2*time.Minute+time.Second)) {
		t.Fatal("ids kept after two idle periods")
	}
}

package trust

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/lattice"
)

// An id must be refused for the whole retention after it was first seen,
// wherever in a bucket it landed and however the buckets rotate meanwhile,
// and forgotten (memory bounded) within one bucket after that.
func TestReplayGuardRemembersForTheWholeRetention(t *testing.T) {
	const retain = time.Minute
	span := retain / replaySlices
	t0 := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name string
		at   time.Duration // when the id is first seen, after the first bucket opened
	}{
		{"first in a bucket", 0},
		{"mid bucket", span / 2},
		{"last instant of a bucket", span - time.Nanosecond},
		{"first in the second bucket", span},
		{"last instant before the first bucket's expiry", retain - time.Nanosecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewReplayGuard(retain, 1000)
			other := 0
			traffic := func(at time.Time) { // other ids rotate and expire buckets
				t.Helper()
				other++
				if !g.Remember("other-"+strconv.Itoa(other), at) {
					t.Fatalf("a fresh id was refused at t0+%s", at.Sub(t0))
				}
			}
			traffic(t0)
			seen := t0.Add(tc.at)
			traffic(seen)
			if !g.Remember("captured", seen) {
				t.Fatal("first sight refused")
			}
			// Every step across the retention, bucket edges included.
			steps := []time.Duration{0, time.Nanosecond, span - time.Nanosecond, span, span + time.Nanosecond,
				2 * span, 3*span - time.Nanosecond, 3 * span, retain - time.Nanosecond, retain}
			for _, d := range steps {
				now := seen.Add(d)
				traffic(now)
				if g.Remember("captured", now) {
					t.Fatalf("replay accepted %s after first sight (retention %s)", d, retain)
				}
			}
			// Past the retention plus one bucket, the id is gone and so is
			// what the guard held for it.
			late := seen.Add(retain + span + time.Nanosecond)
			traffic(late)
			if !g.Remember("captured", late) {
				t.Fatalf("id still held %s after first sight: memory would grow past the retention", late.Sub(seen))
			}
			final := late.Add(retain + span + time.Nanosecond)
			traffic(final)
			if n := g.Len(); n != 1 {
				t.Fatalf("%d ids held once all but the last had expired, want 1", n)
			}
		})
	}
}

func TestReplayGuardRefusesRatherThanForgetsWhenFull(t *testing.T) {
	g := NewReplayGuard(time.Minute, 3)
	t0 := time.Unix(1_800_000_000, 0)
	for _, id := range []string{"a", "b", "c"} {
		if !g.Remember(id, t0) {
			t.Fatalf("%s refused", id)
		}
	}
	if g.remember("d", t0.Add(time.Second)) != idFull {
		t.Fatal("a fourth id was accepted beyond the capacity")
	}
	for _, id := range []string{"a", "b", "c"} {
		if g.remember(id, t0.Add(59*time.Second)) != idSeen {
			t.Fatalf("%s forgotten when the guard filled up", id)
		}
	}
	if !g.Remember("d", t0.Add(time.Minute+time.Second)) {
		t.Fatal("new id refused once the full bucket expired")
	}
}

func TestReplayGuardKeepsIDsWhenTheClockGoesBack(t *testing.T) {
	g := NewReplayGuard(time.Minute, 100)
	t0 := time.Unix(1_800_000_000, 0)
	g.Remember("a", t0)
	for _, at := range []time.Duration{-time.Hour, 30 * time.Second, -10 * time.Minute, time.Minute} {
		if g.Remember("a", t0.Add(at)) {
			t.Fatalf("a forgotten at t0%+v", at)
		}
	}
}

// Many ids exercise table growth and probing across the table's end.
func TestReplayGuardManyIDs(t *testing.T) {
	const n = 50_000
	g := NewReplayGuard(time.Minute, DefaultReplayCapacity)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range n {
		if !g.Remember(replayID(i), t0.Add(time.Duration(i)*time.Microsecond)) {
			t.Fatalf("fresh id %d refused", i)
		}
	}
	for i := range n {
		if g.Remember(replayID(i), t0.Add(time.Second)) {
			t.Fatalf("id %d accepted twice", i)
		}
	}
	if g.Len() != n {
		t.Fatalf("holds %d ids, want %d", g.Len(), n)
	}
}

// Through the policy: with the skew, the guard's buckets rotate many times
// while a captured token stays fresh; each replay is refused, and a full
// guard refuses with a message that says so.
func TestReplayRefusedAcrossBucketRotationsAndWhenFull(t *testing.T) {
	const window, skew = time.Minute, 30 * time.Second
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	f := newInvFixture(t, WithReplayGuard(NewReplayGuard(window, 1000)), WithClockSkew(skew),
		WithClock(func() time.Time { return now }))
	fresh := func() *lattice.Invocation {
		return f.invoke(t, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), "Echo.Echo", nil)
	}
	captured := f.issuedAtTime(t, fresh(), t0.Add(skew)) // fresh until t0+window+2*skew
	if _, err := f.policy.Check(captured, f.actor); err != nil {
		t.Fatal(err)
	}
	span := (window + 2*skew) / replaySlices
	for at := time.Duration(0); at <= window+2*skew; at += span / 3 {
		now = t0.Add(at)
		if _, err := f.policy.Check(f.issuedAtTime(t, fresh(), now), f.actor); err != nil {
			t.Fatalf("fresh call at t0+%s: %v", at, err)
		}
		if _, err := f.policy.Check(captured, f.actor); lattice.ReasonOf(err) != lattice.ReasonReplayed || !strings.Contains(err.Error(), "already seen") {
			t.Fatalf("replay at t0+%s: %v, want already seen", at, err)
		}
	}

	full := newInvFixture(t, WithReplayGuard(NewReplayGuard(window, 1)), WithClock(func() time.Time { return t0 }))
	call := func() *lattice.Invocation {
		return full.issuedAtTime(t, full.invoke(t, lattice.ActorEntity(mustKey(t, lattice.KindModule).PublicKey()), "Echo.Echo", nil), t0)
	}
	if _, err := full.policy.Check(call(), full.actor); err != nil {
		t.Fatal(err)
	}
	_, err := full.policy.Check(call(), full.actor)
	if lattice.ReasonOf(err) != lattice.ReasonReplayed || !strings.Contains(err.Error(), "guard is full") {
		t.Fatalf("full guard: %v, want a refusal that says the guard is full", err)
	}
}

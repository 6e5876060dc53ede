package supervisor

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

// An inventory asked for before an event was folded in may be older than
// the event: resync must then change nothing, and say so.
func TestActorTrackerResyncYieldsToNewerEvents(t *testing.T) {
	const host, actor = "NHOST", "MACTOR"
	started := func(id string) *nats.Msg {
		b, err := lattice.NewEvent(host, lattice.EventActorStarted, map[string]any{"public_key": actor, "image_ref": "file:///a.wasm", "instance_id": id})
		if err != nil {
			t.Fatal(err)
		}
		return &nats.Msg{Data: b}
	}
	inv := &lattice.HostInventory{Actors: []lattice.ActorDescription{{ID: actor, ImageRef: "file:///a.wasm",
		Instances: []lattice.ActorInstance{{InstanceID: "i1"}, {InstanceID: "i2"}, {InstanceID: "i3"}}}}}
	running := func(tr *actorTracker) int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if a := tr.running[actor]; a != nil {
			return len(a.instances)
		}
		return 0
	}

	tr := newActorTracker(host)
	tr.handle(started("i1"))
	seen := tr.seen()
	tr.handle(started("i9")) // came while the inventory was asked for
	if tr.resync(inv, seen) {
		t.Fatal("resync applied an inventory older than the last event")
	}
	if got := running(tr); got != 2 {
		t.Fatalf("after a refused resync the tracker holds %d instances, want the 2 of the events", got)
	}
	if !tr.resync(inv, tr.seen()) {
		t.Fatal("resync refused an inventory no event overtook")
	}
	if got := running(tr); got != 3 {
		t.Fatalf("after resync the tracker holds %d instances, want the inventory's 3", got)
	}
}

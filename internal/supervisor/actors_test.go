package supervisor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// An inventory asked for while events come may be older than some of them
// and newer than others: resync folds in again, over the inventory, each
// event that came meanwhile, and those the inventory already shows change
// nothing. Before, such an inventory was refused and asked for again, up
// to 5 times, so a host that kept starting and stopping instances was
// never read again.
func TestActorTrackerResyncFoldsInTheEventsThatCameMeanwhile(t *testing.T) {
	const host, actor = "NHOST", "MACTOR"
	event := func(typ, id string) *nats.Msg {
		b, err := lattice.NewEvent(host, typ, map[string]any{"public_key": actor, "image_ref": "file:///a.wasm", "instance_id": id})
		if err != nil {
			t.Fatal(err)
		}
		return &nats.Msg{Data: b}
	}
	running := func(tr *actorTracker) []string {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if a := tr.running[actor]; a != nil {
			return slices.Sorted(maps.Keys(a.instances))
		}
		return nil
	}
	// The host ran i1, i2, i3 when it answered.
	inv := &lattice.HostInventory{Actors: []lattice.ActorDescription{{ID: actor, ImageRef: "file:///a.wasm",
		Instances: []lattice.ActorInstance{{InstanceID: "i1"}, {InstanceID: "i2"}, {InstanceID: "i3"}}}}}

	tr := newActorTracker(host)
	tr.handle(event(lattice.EventActorStarted, "i1"))
	tr.record()
	tr.handle(event(lattice.EventActorStarted, "i3")) // the inventory shows it
	tr.handle(event(lattice.EventActorStopped, "i2")) // stopped after it answered
	tr.handle(event(lattice.EventActorStarted, "i9")) // started after it answered
	if !tr.resync(inv) {
		t.Fatal("resync refused an inventory")
	}
	if got, want := running(tr), []string{"i1", "i3", "i9"}; !slices.Equal(got, want) {
		t.Fatalf("after resync the tracker holds %v, want %v", got, want)
	}
	tr.handle(event(lattice.EventActorStopped, "i9")) // recording has ended: folded in once
	if got, want := running(tr), []string{"i1", "i3"}; !slices.Equal(got, want) {
		t.Fatalf("after an event that came after the resync the tracker holds %v, want %v", got, want)
	}

	// More events than it keeps while the inventory is asked for: resync
	// changes nothing and says so, and the inventory is asked for again.
	tr.record()
	for i := 0; i <= maxRecorded; i++ {
		tr.handle(event(lattice.EventActorStarted, "i1"))
	}
	if tr.resync(inv) {
		t.Fatal("resync applied an inventory after more events than it keeps")
	}
	if got, want := running(tr), []string{"i1", "i3"}; !slices.Equal(got, want) {
		t.Fatalf("after a refused resync the tracker holds %v, want %v", got, want)
	}
}

// A host that crashes gets back the actor instances it ran, counted from
// its events: after a scale down, those that were left, not those there
// were before. Before, the host announced no instance a scale down
// stopped, and the restarted host ran the count before the scale down.
func TestHostCrashAfterAScaleDownRestartsTheInstancesLeft(t *testing.T) {
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	ctl := lattice.NewCtl("", "default")
	tracked := func() int {
		n.s.actors.mu.Lock()
		defer n.s.actors.mu.Unlock()
		if a := n.s.actors.running[echo.Key]; a != nil {
			return len(a.instances)
		}
		return 0
	}
	var ack lattice.Ack
	for _, step := range []struct {
		cmd  string
		body any
		want int
	}{
		{lattice.CmdScaleActor, lattice.ScaleActorCommand{ActorID: echo.Key, Count: 4}, 4},
		{lattice.CmdStopActor, lattice.StopActorCommand{ActorRef: echo.Key, Count: 1}, 3},
		{lattice.CmdScaleActor, lattice.ScaleActorCommand{ActorID: echo.Key, Count: 2}, 2},
	} {
		n.ctlRequest(ctl.Cmd(n.s.HostID(), step.cmd), step.body, &ack)
		if !ack.Accepted {
			t.Fatalf("%s %+v: %s", step.cmd, step.body, ack.Error)
		}
		testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			if got, err := oneActorInstances(n); err != nil || got != step.want {
				return fmt.Errorf("after %s %+v the host runs %d instances (%v), want %d", step.cmd, step.body, got, err, step.want)
			}
			if got := tracked(); got != step.want {
				return fmt.Errorf("after %s %+v the supervisor counts %d instances of echo, the host runs %d", step.cmd, step.body, got, step.want)
			}
			return nil
		})
	}

	crashHostWithOneActor(t, n, 2)
}

// A host that crashes after a live update gets back the revision it ran:
// the supervisor takes the new reference from the refmap_set the update
// sends. Revision 1 is the echo actor, revision 2 the anyop actor (it
// answers with the operation's name), under one module key.
func TestHostCrashAfterALiveUpdateRestartsTheNewRevision(t *testing.T) {
	acct, mod := testenv.ActorKeys(t)
	dir := t.TempDir()
	v1 := testenv.SignActorAs(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", Rev: 1}, acct, mod)
	v2 := testenv.SignActorAs(t, dir, "./internal/testing/actors/anyop", trust.SignActorOptions{Name: "echo", Rev: 2}, acct, mod)
	n := startNode(t, nil, "file://"+v1.Path)
	answer := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, err := n.invokeEcho(ctx, mod.PublicKey(), []byte("hello"))
		return string(b), err
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got, err := answer(); err != nil || got != "hello" {
			return fmt.Errorf("revision 1 answers %q (%v)", got, err)
		}
		return nil
	})
	var ack lattice.Ack
	n.ctlRequest(lattice.NewCtl("", "default").Cmd(n.s.HostID(), lattice.CmdUpdateActor), lattice.UpdateActorCommand{NewActorRef: "file://" + v2.Path}, &ack)
	if !ack.Accepted {
		t.Fatalf("live update: %s", ack.Error)
	}
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		n.s.actors.mu.Lock()
		defer n.s.actors.mu.Unlock()
		if a := n.s.actors.running[mod.PublicKey()]; a == nil || a.ref != "file://"+v2.Path {
			return fmt.Errorf("the supervisor tracks %+v, want the reference of revision 2", a)
		}
		return nil
	})

	crashHostWithOneActor(t, n, 1)
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got, err := answer(); err != nil || got != "Echo.Echo" {
			return fmt.Errorf("the restarted host's actor answers %q (%v), want revision 2's %q", got, err, "Echo.Echo")
		}
		return nil
	})
}

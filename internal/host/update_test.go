package host

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// A live update (cmd.{host}.upd, `wash update actor`) moves every instance
// of a running actor to a new revision of its module, under the same
// instance ids, and says so (actor_updated per instance). A module that is
// not a newer revision is refused and changes nothing. Here revision 1 is
// the echo actor (it answers Echo.Echo with the payload) and revision 2 the
// anyop actor (it answers with the operation's name), signed with the same
// module key. Calls made while the update happens all succeed, answered
// by one revision or the other. Revision 1 starts interpreted and its
// compiled code arrives after the update: it must not bring revision 1
// back. Before, the host refused every live update.
func TestLiveUpdateMovesEveryInstanceToTheNewRevision(t *testing.T) {
	f := newFixture(t)
	events := f.events(t)
	acct, mod := testenv.ActorKeys(t)
	sign := func(pkg string, rev int32) string {
		return "file://" + testenv.SignActorAs(t, f.dir, pkg, trust.SignActorOptions{Name: "echo", Rev: rev}, acct, mod).Path
	}
	v1, v1again, v2 := sign(echoPkg, 1), sign(anyopPkg, 1), sign(anyopPkg, 2)
	// The update then compiles from the warm cache, in far less time than
	// revision 1's first compile.
	f.startActor(t, anyopPkg, 1, trust.SignActorOptions{Name: "warm-up"})

	var ack lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: v1, Count: 3}, &ack)
	if !ack.Accepted {
		t.Fatalf("start revision 1: %s", ack.Error)
	}
	key := mod.PublicKey()
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	// answers makes 12 calls at once (so that every instance serves some)
	// and returns the distinct answers.
	answers := func() []string {
		t.Helper()
		out := make(chan string, 12)
		for range 12 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				b, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(key),
					lattice.RPCActor("test", key), "Echo.Echo", []byte("hello"))
				if err != nil {
					b = []byte("error: " + err.Error())
				}
				out <- string(b)
			}()
		}
		var got []string
		for range 12 {
			got = append(got, <-out)
		}
		slices.Sort(got)
		return slices.Compact(got)
	}
	inventory := func() (ref string, revs []int32, ids []string) {
		for _, d := range f.h.Inventory().Actors {
			if d.ID == key {
				ref = d.ImageRef
				for _, in := range d.Instances {
					revs = append(revs, in.Revision)
					ids = append(ids, in.InstanceID)
				}
			}
		}
		slices.Sort(ids)
		return ref, slices.Compact(revs), ids
	}
	if got := answers(); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("revision 1 answers %q", got)
	}
	_, _, ids := inventory()

	// The same revision again, and a module of an actor not running here:
	// refused, and nothing changes.
	for _, bad := range []struct{ ref, want string }{
		{v1again, "has revision 1, the running actor has 1"},
		{"file://" + testenv.SignActor(t, f.dir, anyopPkg, trust.SignActorOptions{Name: "other", Rev: 9}).Path, "is not running on this host"},
	} {
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdUpdateActor), lattice.UpdateActorCommand{NewActorRef: bad.ref}, &ack)
		if ack.Accepted || !strings.HasPrefix(ack.Error, "Unable to perform live update: ") || !strings.Contains(ack.Error, bad.want) {
			t.Fatalf("update to %s: %+v, want refused with %q", bad.ref, ack, bad.want)
		}
	}
	// wash names the actor too: a module that claims another is refused.
	other := testenv.SignActor(t, f.dir, anyopPkg, trust.SignActorOptions{Name: "other", Rev: 9})
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdUpdateActor), lattice.UpdateActorCommand{ActorID: key, HostID: f.h.ID(), NewActorRef: "file://" + other.Path}, &ack)
	if want := "claims actor " + other.Key + ", not " + key; ack.Accepted || !strings.Contains(ack.Error, want) {
		t.Fatalf("update of %s to another actor's module: %+v, want refused with %q", key, ack, want)
	}
	if got := answers(); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("after refused updates the actor answers %q", got)
	}

	// Calls go on while the update happens: none may fail, each is
	// answered by one revision or the other.
	stop := make(chan struct{})
	during := make(chan map[string]int, 4)
	for range 4 {
		go func() {
			got := map[string]int{}
			for {
				select {
				case <-stop:
					during <- got
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				b, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(key),
					lattice.RPCActor("test", key), "Echo.Echo", []byte("hello"))
				cancel()
				if err != nil {
					b = []byte("error: " + err.Error())
				}
				got[string(b)]++
			}
		}()
	}
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdUpdateActor), lattice.UpdateActorCommand{ActorID: key, HostID: f.h.ID(), NewActorRef: v2}, &ack)
	if !ack.Accepted {
		t.Fatalf("update to revision 2: %s", ack.Error)
	}
	time.Sleep(100 * time.Millisecond) // calls on the new code too
	close(stop)
	calls := map[string]int{}
	for range 4 {
		for answer, n := range <-during {
			calls[answer] += n
		}
	}
	t.Logf("calls during the update: %v", calls)
	for answer := range calls {
		if answer != "hello" && answer != "Echo.Echo" {
			t.Errorf("a call during the update was answered %q", answer)
		}
	}
	f.h.upgrades.Wait() // revision 1's compiled code has come, and been dropped
	if got := answers(); !slices.Equal(got, []string{"Echo.Echo"}) {
		t.Fatalf("after the update the actor answers %q, want revision 2's %q only", got, "Echo.Echo")
	}
	ref, revs, after := inventory()
	if ref != v2 || !slices.Equal(revs, []int32{2}) || !slices.Equal(after, ids) {
		t.Errorf("after the update the inventory has %s, revisions %v, instances %v; want %s, [2], the same instances %v", ref, revs, after, v2, ids)
	}
	var updated []string
	deadline := time.After(10 * time.Second)
	for len(updated) < len(ids) {
		select {
		case e := <-events:
			var d struct {
				PublicKey  string `json:"public_key"`
				Revision   int32  `json:"revision"`
				InstanceID string `json:"instance_id"`
			}
			if strings.TrimPrefix(e.Type, lattice.EventTypePrefix) == lattice.EventActorUpdated && json.Unmarshal(e.Data, &d) == nil && d.PublicKey == key {
				if d.Revision != 2 {
					t.Errorf("actor_updated with revision %d, want 2", d.Revision)
				}
				updated = append(updated, d.InstanceID)
			}
		case <-deadline:
			t.Fatalf("actor_updated for %v, want one for each of %v", updated, ids)
		}
	}
	if slices.Sort(updated); !slices.Equal(updated, ids) {
		t.Errorf("actor_updated for %v, want one for each of %v", updated, ids)
	}
}

// A live update to a module whose instances cannot start (its initialiser
// never returns, so the start deadline ends it) is refused, with
// actor_update_failed, and the actor goes on with its running revision.
// Without the one-instance trial the update was taken, and each instance
// coming back to the pool tried, and failed, to start the new code.
func TestLiveUpdateToAModuleThatCannotStartIsRefused(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.StartTimeout = 2 * time.Second })
	events := f.events(t)
	acct, mod := testenv.ActorKeys(t)
	v1 := testenv.SignActorAs(t, f.dir, echoPkg, trust.SignActorOptions{Name: "echo", Rev: 1}, acct, mod)
	v2 := testenv.SignActorAs(t, f.dir, foreverPkg, trust.SignActorOptions{Name: "echo", Rev: 2}, acct, mod)
	f.startSigned(t, v1, 2)
	var ack lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdUpdateActor), lattice.UpdateActorCommand{ActorID: v1.Key, NewActorRef: "file://" + v2.Path}, &ack)
	if ack.Accepted || !strings.Contains(ack.Error, "start an instance of") {
		t.Fatalf("update to a module that cannot start: %+v, want refused", ack)
	}
	waitActorEvent(t, events, lattice.EventActorUpdateFailed, v1.Key, func(d map[string]any) bool { return d["revision"] == float64(2) })
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(v1.Key),
			lattice.RPCActor("test", v1.Key), "Echo.Echo", []byte("still"))
		cancel()
		if err != nil || string(b) != "still" {
			t.Fatalf("after the refused update the actor answers %q, %v; want revision 1's echo", b, err)
		}
	}
	for _, d := range f.h.Inventory().Actors {
		if d.ImageRef != "file://"+v1.Path || len(d.Instances) != 2 || d.Instances[0].Revision != 1 {
			t.Errorf("after the refused update the inventory has %+v, want revision 1's 2 instances", d)
		}
	}
}

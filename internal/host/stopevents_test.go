package host

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// The pool tells the host each instance that leaves it while the actor runs
// on: idle ones scaled away at once, busy ones when they come back. One
// that broke is replaced under its id and is not announced; a pool that
// closes announces nothing (the host's stop does).
func TestPoolAnnouncesEachRetiredInstance(t *testing.T) {
	ctx := context.Background()
	p, announced := tinyPool(t)
	if err := p.scale(ctx, 3); err != nil {
		t.Fatal(err)
	}
	busy1, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	busy2, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle := slices.DeleteFunc(p.ids(), func(id string) bool { return id == busy1.id || id == busy2.id })

	if err := p.scale(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := announced(); !slices.Equal(got, idle) {
		t.Fatalf("after a scale down to 1 with 2 of 3 busy, announced %v, want the idle one %v", got, idle)
	}
	p.release(ctx, busy1, false)
	if got, want := announced(), slices.Sorted(slices.Values(append(idle, busy1.id))); !slices.Equal(got, want) {
		t.Fatalf("after a surplus instance came back, announced %v, want %v", got, want)
	}
	p.release(ctx, busy2, false)
	if got := p.ids(); !slices.Equal(got, []string{busy2.id}) {
		t.Fatalf("the pool holds %v, want the instance that came back last, %s", got, busy2.id)
	}
	before := announced()

	in, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.release(ctx, in, true) // broken: replaced
	if got := p.ids(); !slices.Equal(got, []string{busy2.id}) {
		t.Fatalf("after a broken instance was replaced the pool holds %v, want its id %s kept", got, busy2.id)
	}
	p.close(ctx)
	if got := announced(); !slices.Equal(got, before) {
		t.Fatalf("a replacement or the pool's close announced %v, want nothing more than %v", got, before)
	}
}

// tinyPool is a pool of the tiny echo on the interpreter, and what it
// announced as retired so far, sorted.
func tinyPool(t *testing.T) (*pool, func() []string) {
	t.Helper()
	ctx := context.Background()
	r, err := NewRuntime(ctx, "", 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(ctx) })
	wasm, err := prepareModule(wasmbuild.TinyEcho())
	if err != nil {
		t.Fatal(err)
	}
	cm, err := compileABI(ctx, r.interp, wasm)
	if err != nil {
		t.Fatal(err)
	}
	m := &module{cm: cm, rt: r.interp, interpreted: true}
	var mu sync.Mutex
	var retired []string
	p := newPool(func(ctx context.Context, id string) (*instance, error) { return r.instantiate(ctx, m, id) }, 16,
		func(id string) { mu.Lock(); retired = append(retired, id); mu.Unlock() })
	t.Cleanup(func() { p.close(ctx) })
	return p, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(retired))
	}
}

// A stop that names instances (by their annotations) retires those: idle
// ones at once, busy ones when they come back, and no other; the pool then
// keeps the rest, and a later scale counts from them.
func TestPoolRetiresTheInstancesChosen(t *testing.T) {
	ctx := context.Background()
	p, announced := tinyPool(t)
	if err := p.scale(ctx, 4); err != nil {
		t.Fatal(err)
	}
	busyChosen, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	busyOther, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle := slices.DeleteFunc(p.ids(), func(id string) bool { return id == busyChosen.id || id == busyOther.id })
	chosen := []string{busyChosen.id, idle[0]}
	if n := p.retire(ctx, chosen); n != 2 {
		t.Fatalf("retire reported %d, want 2", n)
	}
	if got, want := announced(), []string{idle[0]}; !slices.Equal(got, want) {
		t.Fatalf("announced %v at once, want the idle one chosen, %v", got, want)
	}
	if live, _ := p.stats(); live != 2 {
		t.Fatalf("the pool counts %d instances staying, want 2", live)
	}
	p.release(ctx, busyOther, false) // not chosen: stays
	p.release(ctx, busyChosen, false)
	if got, want := announced(), slices.Sorted(slices.Values(chosen)); !slices.Equal(got, want) {
		t.Fatalf("announced %v, want the two chosen, %v", got, want)
	}
	if got, want := slices.Sorted(slices.Values(p.ids())), slices.Sorted(slices.Values([]string{busyOther.id, idle[1]})); !slices.Equal(got, want) {
		t.Fatalf("the pool holds %v, want the two not chosen, %v", got, want)
	}
	if n := p.retire(ctx, chosen); n != 0 {
		t.Fatalf("retiring instances already gone reported %d, want 0", n)
	}
	if err := p.scale(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got := len(p.ids()); got != 3 {
		t.Fatalf("after a scale to 3 the pool holds %d instances", got)
	}
}

// Stopping some of an actor's instances (`sa` with a count) or scaling it
// down announces each instance that stopped (actor_stopped, with its id and
// annotations), then the stop as a whole (actors_stopped, with the count
// stopped and the count remaining), as wasmCloud's host does (and a scale
// up as a whole by actors_started): wash waits for
// actor_stopped after `wash stop actor`, and the supervisor counts a host's
// instances by these events to restart them after a crash. Before, only a
// stop of every instance announced anything.
func TestStoppingSomeInstancesAnnouncesEach(t *testing.T) {
	f := newFixture(t)
	events := f.events(t)
	sa := testenv.SignActor(t, f.dir, echoPkg, trust.SignActorOptions{Name: "echo"})
	annotations := map[string]string{"app": "shop"}
	var a lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path, Count: 4, Annotations: annotations}, &a)
	if !a.Accepted {
		t.Fatalf("start: %s", a.Error)
	}
	ids := func() []string {
		inv := f.h.Inventory()
		var out []string
		for _, d := range inv.Actors {
			for _, in := range d.Instances {
				out = append(out, in.InstanceID)
			}
		}
		return slices.Sorted(slices.Values(out))
	}
	annotated := ids() // started with the annotations; a scale up's without
	// A scale up is announced as a whole too (actors_started).
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdScaleActor), lattice.ScaleActorCommand{ActorID: sa.Key, Count: 5}, &a)
	if !a.Accepted {
		t.Fatalf("scale to 5: %s", a.Error)
	}
	if d := waitActorEvent(t, events, lattice.EventActorsStarted, sa.Key, func(d map[string]any) bool { return d["count"] == float64(1) }); d["host_id"] != f.h.ID() {
		t.Errorf("actors_started of the scale up: %v", d)
	}
	running := ids()
	if len(running) != 5 {
		t.Fatalf("running %v, want 5 instances", running)
	}

	for _, step := range []struct {
		name      string
		subject   string
		body      any
		remaining int
	}{
		{"sa count 2", f.ctl.Cmd(f.h.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: sa.Key, Count: 2, Annotations: annotations}, 3},
		{"scale to 1", f.ctl.Cmd(f.h.ID(), lattice.CmdScaleActor), lattice.ScaleActorCommand{ActorID: sa.Key, Count: 1}, 1},
		{"sa count 5 (more than run)", f.ctl.Cmd(f.h.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: sa.Key, Count: 5}, 0},
	} {
		f.ctlRequest(t, step.subject, step.body, &a)
		if !a.Accepted {
			t.Fatalf("%s: %s", step.name, a.Error)
		}
		left := ids()
		if len(left) != step.remaining {
			t.Fatalf("%s: %d instances run, want %d", step.name, len(left), step.remaining)
		}
		gone := slices.DeleteFunc(slices.Clone(running), func(id string) bool { return slices.Contains(left, id) })
		stopped, batch := stopEvents(t, events, sa.Key, len(gone), annotated)
		if !slices.Equal(stopped, gone) {
			t.Errorf("%s: actor_stopped for %v, want one for each instance gone, %v", step.name, stopped, gone)
		}
		want := map[string]any{"host_id": f.h.ID(), "public_key": sa.Key, "count": float64(len(gone)), "remaining": float64(step.remaining)}
		for k, v := range want {
			if batch[k] != v {
				t.Errorf("%s: actors_stopped %s = %v, want %v (event %v)", step.name, k, batch[k], v, batch)
			}
		}
		if got := testutil.ToFloat64(f.m.ActorInstances.WithLabelValues(sa.Key)); got != float64(step.remaining) {
			t.Errorf("%s: latticed_actor_instances %v, want %d", step.name, got, step.remaining)
		}
		running = left
	}
}

// stopEvents reads events until it has n actor_stopped of actor and then
// its actors_stopped; it returns the instance ids stopped, sorted, and the
// batch event's data. Each actor_stopped must carry the annotations its
// instance was started with: those of the annotated ones, none for others.
func stopEvents(t *testing.T, events <-chan lattice.CloudEvent, actor string, n int, annotated []string) ([]string, map[string]any) {
	t.Helper()
	var ids []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			var d map[string]any
			if err := json.Unmarshal(e.Data, &d); err != nil || d["public_key"] != actor {
				continue
			}
			switch strings.TrimPrefix(e.Type, lattice.EventTypePrefix) {
			case lattice.EventActorStopped:
				id, _ := d["instance_id"].(string)
				want := map[string]any{}
				if slices.Contains(annotated, id) {
					want["app"] = "shop"
				}
				if ann, ok := d["annotations"].(map[string]any); !ok || !maps.Equal(ann, want) {
					t.Errorf("actor_stopped %v: annotations %v, want those the instance started with, %v", id, d["annotations"], want)
				}
				ids = append(ids, id)
			case lattice.EventActorsStopped:
				if len(ids) != n {
					t.Fatalf("actors_stopped after %d actor_stopped (%v), want %d", len(ids), ids, n)
				}
				return slices.Sorted(slices.Values(ids)), d
			}
		case <-deadline:
			t.Fatalf("%s", fmt.Sprintf("after 10s: %d actor_stopped (%v) and no actors_stopped, want %d and one", len(ids), ids, n))
		}
	}
}

// waitActorEvent waits for an event of type typ about actor whose data
// match says is the one, and returns its data.
func waitActorEvent(t *testing.T, events <-chan lattice.CloudEvent, typ, actor string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			var d map[string]any
			if strings.TrimPrefix(e.Type, lattice.EventTypePrefix) == typ && json.Unmarshal(e.Data, &d) == nil && d["public_key"] == actor && match(d) {
				return d
			}
		case <-deadline:
			t.Fatalf("no %s event of %s after 10s", typ, actor)
			return nil
		}
	}
}

// A stop with annotations stops only instances started with every one of
// those pairs: count of them, or all of them with count 0 (wadm stops the
// instances it started this way, and must not stop others). Before, the
// annotations were ignored and any instances stopped.
func TestStopActorWithAnnotationsStopsOnlyThoseInstances(t *testing.T) {
	f := newFixture(t)
	sa := testenv.SignActor(t, f.dir, echoPkg, trust.SignActorOptions{Name: "echo"})
	shop := map[string]string{"app": "shop"}
	web := map[string]string{"app": "shop", "tier": "web"}
	var a lattice.Ack
	for _, start := range []struct {
		count       int
		annotations map[string]string
	}{{2, shop}, {2, web}, {1, nil}} {
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path, Count: start.count, Annotations: start.annotations}, &a)
		if !a.Accepted {
			t.Fatalf("start %d with %v: %s", start.count, start.annotations, a.Error)
		}
	}
	// running counts the instances by their annotations.
	running := func() map[string]int {
		out := map[string]int{}
		for _, d := range f.h.Inventory().Actors {
			for _, in := range d.Instances {
				out[fmt.Sprint(in.Annotations)]++
			}
		}
		return out
	}
	key := func(m map[string]string) string { return fmt.Sprint(lattice.NonNil(m)) }
	if got, want := running(), map[string]int{key(shop): 2, key(web): 2, key(nil): 1}; !maps.Equal(got, want) {
		t.Fatalf("running %v, want %v", got, want)
	}
	for _, step := range []struct {
		count       int
		annotations map[string]string
		want        map[string]int
	}{
		{1, map[string]string{"tier": "web"}, map[string]int{key(shop): 2, key(web): 1, key(nil): 1}},
		{0, shop, map[string]int{key(nil): 1}},
		{1, map[string]string{"app": "other"}, map[string]int{key(nil): 1}},
		{0, nil, map[string]int{}},
	} {
		f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: sa.Key, Count: step.count, Annotations: step.annotations}, &a)
		if !a.Accepted {
			t.Fatalf("stop %d with %v: %s", step.count, step.annotations, a.Error)
		}
		if got := running(); !maps.Equal(got, step.want) {
			t.Fatalf("after a stop of %d with %v: running %v, want %v", step.count, step.annotations, got, step.want)
		}
	}
}

// Hammer: callers take and return instances (some broken, so replaced)
// while the pool is scaled up and down and chosen instances are retired.
// Afterwards every instance ever made is either still in the pool or was
// announced as retired, once, and the pool holds its target.
func TestPoolRetireHammer(t *testing.T) {
	ctx := context.Background()
	p, announced := tinyPool(t)
	// seen holds every instance the pool was seen to hold (an instance a
	// scale makes is dropped unseen when a replacement filled its place).
	seen := map[string]bool{}
	look := func() {
		for _, id := range p.ids() {
			seen[id] = true
		}
	}
	if err := p.scale(ctx, 4); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var callers sync.WaitGroup
	for c := range 6 {
		callers.Add(1)
		go func() {
			defer callers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				in, err := p.acquire(cctx)
				cancel()
				if err != nil {
					continue // all busy, or none left for a moment
				}
				p.release(ctx, in, (i+c)%7 == 0)
			}
		}()
	}
	target := 4
	for round := range 60 {
		look()
		switch round % 3 {
		case 0:
			target = 1 + round%5
			if err := p.scale(ctx, target); err != nil {
				t.Fatal(err)
			}
		case 1:
			ids := p.stayingIDs()
			slices.Sort(ids)
			chosen := ids[:len(ids)/2]
			target -= p.retire(ctx, chosen)
		case 2:
			time.Sleep(2 * time.Millisecond)
		}
	}
	close(stop)
	callers.Wait()
	look()

	live := p.ids()
	if len(live) != target {
		t.Errorf("the pool holds %d instances, want its target %d", len(live), target)
	}
	gone := announced()
	if d := slices.Compact(slices.Clone(gone)); len(d) != len(gone) {
		t.Errorf("an instance was announced twice: %v", gone)
	}
	for id := range seen {
		in, out := slices.Contains(live, id), slices.Contains(gone, id)
		if in == out {
			t.Errorf("instance %s: in the pool %v, announced as retired %v; want exactly one", id, in, out)
		}
	}
	t.Logf("%d instances seen, %d retired, %d left", len(seen), len(gone), len(live))
	if len(seen) < 2*target || len(gone) == 0 {
		t.Errorf("the hammer saw %d instances and %d retirements: too few to mean anything", len(seen), len(gone))
	}
}

package host

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// Hammer: callers use the pool while it is upgraded from interpreted to
// compiled code and scaled up and down. Every call succeeds, and afterwards
// every instance runs the compiled code, at the target count.
func TestPoolUpgradeHammer(t *testing.T) {
	ctx := context.Background()
	r, err := NewRuntime(ctx, "", 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(ctx) })
	wasm, err := prepareModule(wasmbuild.TinyEcho()) // as compileTiered does
	if err != nil {
		t.Fatal(err)
	}
	icm, err := compileABI(ctx, r.interp, wasm)
	if err != nil {
		t.Fatal(err)
	}
	ccm, err := compileABI(ctx, r.rt, wasm)
	if err != nil {
		t.Fatal(err)
	}
	interp, comp := &module{cm: icm, rt: r.interp, interpreted: true}, &module{cm: ccm, rt: r.rt}
	spawn := func(m *module) spawnFunc {
		return func(ctx context.Context, id string) (*instance, error) { return r.instantiate(ctx, m, id) }
	}
	p := newPool(spawn(interp), 1024, nil)
	if err := p.scale(ctx, 4); err != nil {
		t.Fatal(err)
	}
	const callers, before, after = 8, 500, 2000
	var failed, onInterp, onCompiled atomic.Int64
	var stop atomic.Bool
	var calls sync.WaitGroup
	for c := 0; c < callers; c++ {
		calls.Add(1)
		go func() {
			defer calls.Done()
			for i := 0; !stop.Load(); i++ {
				in, err := p.acquire(ctx)
				if err != nil {
					failed.Add(1)
					continue
				}
				msg := []byte(fmt.Sprintf("call %d", i))
				out, err := in.call(ctx, &callState{op: "Echo", msg: msg, maxHostIO: 1 << 20})
				if err != nil || string(out) != string(msg) {
					failed.Add(1)
				}
				if in.code == comp {
					onCompiled.Add(1)
				} else {
					onInterp.Add(1)
				}
				p.release(ctx, in, err != nil)
			}
		}()
	}
	// Upgrade and scale in the thick of the calls.
	testenv.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
		if onInterp.Load() < before {
			return fmt.Errorf("%d calls on interpreted code", onInterp.Load())
		}
		return nil
	})
	var changes sync.WaitGroup
	changes.Add(2)
	go func() {
		defer changes.Done()
		if !p.upgrade(ctx, comp, spawn(comp)) {
			t.Error("upgrade of an open pool reported it closed")
		}
		interp.close(ctx) // as the host does: scaling may still hold its spawn
	}()
	go func() {
		defer changes.Done()
		for i := 0; i < 40; i++ {
			if err := p.scale(ctx, 2+i%5); err != nil {
				t.Errorf("scale to %d during the upgrade: %v", 2+i%5, err)
			}
		}
		if err := p.scale(ctx, 3); err != nil {
			t.Error(err)
		}
	}()
	changes.Wait()
	testenv.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
		if onCompiled.Load() < after {
			return fmt.Errorf("%d calls on compiled code", onCompiled.Load())
		}
		return nil
	})
	stop.Store(true)
	calls.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed during the upgrade", n, onInterp.Load()+onCompiled.Load())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.live) != 3 {
		t.Fatalf("%d live instances, want 3", len(p.live))
	}
	for in := range p.live {
		if in.code != comp {
			t.Fatalf("instance %s still runs interpreted code after the upgrade", in.id)
		}
	}
}

// A cold start (empty compilation cache) serves the actor interpreted at
// once, then moves it to compiled code without losing a call or changing
// its instance ids.
func TestTieredStartServesInterpretedThenCompiled(t *testing.T) {
	f := newFixture(t)
	echo := f.startActor(t, echoPkg, 2, trust.SignActorOptions{Name: "echo"})
	a := actorOf(f.h, echo.Key)
	interpreted := func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.code.interpreted }
	if !interpreted() {
		t.Fatal("an actor started with an empty compilation cache did not start interpreted")
	}
	ids := map[string]bool{}
	for _, id := range a.pool.ids() {
		ids[id] = true
	}
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	subject := lattice.RPCActor("test", echo.Key)
	ctx, stop := context.WithCancel(context.Background())
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				out, err := rpc.Invoke(context.Background(), f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key), subject, "Echo.Echo", []byte("x"))
				calls.Add(1)
				if err != nil || len(out) == 0 {
					failed.Add(1)
					t.Logf("call failed: %v", err)
				}
			}
		}()
	}
	testenv.CheckFor(t, 2*time.Minute, 50*time.Millisecond, func() error {
		if interpreted() {
			return fmt.Errorf("still interpreted")
		}
		return nil
	})
	// Calls that were in flight at the switch finish on the old code.
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()
	if failed.Load() > 0 || calls.Load() == 0 {
		t.Fatalf("%d of %d calls failed across the upgrade", failed.Load(), calls.Load())
	}
	a.pool.mu.Lock()
	for in := range a.pool.live {
		if in.code.interpreted {
			t.Errorf("instance %s still interpreted", in.id)
		}
		if !ids[in.id] {
			t.Errorf("instance %s is new; the upgrade must keep instance ids", in.id)
		}
	}
	a.pool.mu.Unlock()
	t.Logf("%d calls across the upgrade, none failed", calls.Load())
}

// actorOf is the running actor with this key.
func actorOf(h *Host, key string) *actor {
	h.actorsMu.Lock()
	defer h.actorsMu.Unlock()
	return h.actors[key]
}

// Interpreted code is large, so only maxInterpreting actors start that way
// at once; a start beyond them waits for the compiler.
func TestInterpretedStartsAreBounded(t *testing.T) {
	ctx := context.Background()
	r, err := NewRuntime(ctx, "", 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(ctx) })
	var upgrades []<-chan compiled
	for i := 0; i < maxInterpreting+1; i++ {
		// Each module distinct (a custom section), so none is in memory yet.
		wasm := append(wasmbuild.TinyEcho(), 0, 3, 1, 'n', byte(i))
		code, up, err := r.compileTiered(ctx, r.log, wasm, 0)
		if err != nil {
			t.Fatal(err)
		}
		if i < maxInterpreting {
			if !code.interpreted || up == nil {
				t.Fatalf("start %d: want interpreted code and an upgrade to come", i)
			}
			upgrades = append(upgrades, up)
			continue
		}
		if code.interpreted || up != nil {
			t.Fatalf("start %d with %d actors interpreted: want compiled code at once", i, maxInterpreting)
		}
	}
	for _, up := range upgrades {
		if c := <-up; c.err != nil || c.m.interpreted {
			t.Fatalf("upgrade: %+v", c)
		}
		r.interpretedDone()
	}
	code, up, err := r.compileTiered(ctx, r.log, append(wasmbuild.TinyEcho(), 0, 3, 1, 'n', 9), 0)
	if err != nil || !code.interpreted || up == nil {
		t.Fatalf("with the slots free again, a start must be interpreted: %v", err)
	}
	<-up
	r.interpretedDone()
}

package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// probeControl asks for a ping and this host's inventory, as an operator
// would while something else goes on, and fails if either takes longer
// than within. It returns the slowest answer.
func probeControl(t *testing.T, f *fixture, within time.Duration) time.Duration {
	t.Helper()
	var slowest time.Duration
	for _, subject := range []string{f.ctl.PingHosts(), f.ctl.GetInventory(f.h.ID())} {
		start := time.Now()
		if _, err := f.nc.Request(subject, []byte("{}"), within); err != nil {
			t.Fatalf("%s unanswered within %s: %v", subject, within, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	return slowest
}

// ctlAsync sends a control request and delivers its reply (or error) and
// how long it took.
type ctlResult struct {
	ack     lattice.Ack
	err     error
	elapsed time.Duration
}

func (f *fixture) ctlAsync(subject string, body any, timeout time.Duration) <-chan ctlResult {
	out := make(chan ctlResult, 1)
	b, _ := json.Marshal(body)
	go func() {
		start := time.Now()
		msg, err := f.nc.Request(subject, b, timeout)
		r := ctlResult{err: err, elapsed: time.Since(start)}
		if err == nil {
			r.err = json.Unmarshal(msg.Data, &r.ack)
		}
		out <- r
	}()
	return out
}

// The attack of issue 18, hole 2: a Go actor sleeps for 30 s in a call
// whose deadline is 2 s, and the operator stops it meanwhile. The call must
// end at its deadline (the WASI sleep observes the call's context), and the
// host must answer ping and inventory promptly throughout the stop.
func TestSleepingActorMeetsItsDeadlineWhileStopKeepsControlAnswering(t *testing.T) {
	const deadline = 2 * time.Second
	f := newFixture(t, func(o *Options) { o.RPCTimeout = deadline })
	life := f.startActor(t, lifePkg, 1, trust.SignActorOptions{Name: "sleeper"})
	a := f.h.actor(life.Key)

	type result struct {
		err     error
		elapsed time.Duration
	}
	called := make(chan result, 1)
	go func() {
		start := time.Now()
		_, err := f.call(t, life.Key, "Life.Sleep", []byte("30000"))
		called <- result{err, time.Since(start)}
	}()
	// The one instance is busy once the call has reached it.
	testenv.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if len(a.pool.idle) != 0 {
			return errors.New("the sleeping call has not reached the instance yet")
		}
		return nil
	})
	stopped := f.ctlAsync(f.ctl.Cmd(f.h.ID(), lattice.CmdStopActor), lattice.StopActorCommand{ActorRef: life.Key}, 30*time.Second)

	probes, slowest := 0, time.Duration(0)
	var stop ctlResult
	for waiting := true; waiting; {
		select {
		case stop = <-stopped:
			waiting = false
		default:
			slowest = max(slowest, probeControl(t, f, time.Second))
			probes++
		}
	}
	if stop.err != nil || !stop.ack.Accepted {
		t.Fatalf("stop actor: %v %+v", stop.err, stop.ack)
	}
	if probes == 0 {
		t.Fatal("the stop returned before the control interface could be probed during it")
	}
	t.Logf("stop took %s; %d ping+inventory probes meanwhile, slowest %s", stop.elapsed, probes, slowest)

	r := <-called
	if r.err == nil || !strings.Contains(r.err.Error(), "interrupted") {
		t.Fatalf("sleeping call ended with %v, want the host's deadline error", r.err)
	}
	if margin := 3 * time.Second; r.elapsed > deadline+margin {
		t.Fatalf("sleeping call took %s, deadline %s", r.elapsed, deadline)
	}
	t.Logf("sleeping call ended after %s: %v", r.elapsed, r.err)
	var inv lattice.HostInventory
	f.ctlRequest(t, f.ctl.GetInventory(f.h.ID()), nil, &inv)
	if len(inv.Actors) != 0 {
		t.Fatalf("actor still listed after stop: %+v", inv.Actors)
	}
}

// The attack of issue 18, hole 3: an actor whose initialiser never returns.
// Its start fails at the start deadline with a clear reply and an
// actor_start_failed event, and the control interface answers meanwhile.
func TestStartForeverActorFailsAtItsStartDeadline(t *testing.T) {
	const startDeadline = 2 * time.Second
	f := newFixture(t, func(o *Options) { o.StartTimeout = startDeadline })
	events := make(chan lattice.CloudEvent, 16)
	sub, err := f.nc.Subscribe(lattice.Events("test"), func(m *nats.Msg) {
		// Each ping adds a heartbeat; only the start failures matter here.
		var e lattice.CloudEvent
		if json.Unmarshal(m.Data, &e) == nil && e.Type == lattice.EventTypePrefix+lattice.EventActorStartFailed {
			select {
			case events <- e:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sa := testenv.SignActor(t, f.dir, foreverPkg, trust.SignActorOptions{Name: "forever"})
	ref := "file://" + sa.Path

	started := f.ctlAsync(f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: ref, Count: 1}, time.Minute)
	probes := 0
	var r ctlResult
	for waiting := true; waiting; {
		select {
		case r = <-started:
			waiting = false
		default:
			probeControl(t, f, time.Second)
			probes++
		}
	}
	if r.err != nil {
		t.Fatalf("start request: %v", r.err)
	}
	if r.ack.Accepted || !strings.Contains(r.ack.Error, "start deadline of 2s passed") {
		t.Fatalf("start ack %+v, want a refusal naming the start deadline", r.ack)
	}
	// The reply includes the compile (seconds for a Go actor, more on a
	// busy machine) before the 2 s deadline; without a deadline it never came.
	if r.elapsed > 30*time.Second {
		t.Fatalf("start reply took %s", r.elapsed)
	}
	if probes == 0 {
		t.Fatal("the start failed before the control interface could be probed during it")
	}
	t.Logf("start refused after %s (%d ping+inventory probes meanwhile): %s", r.elapsed, probes, r.ack.Error)

	select { // the event may come just after the reply
	case e := <-events:
		var data struct {
			ActorRef string `json:"actor_ref"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.ActorRef != ref || !strings.Contains(data.Error, "start deadline") {
			t.Fatalf("actor_start_failed %s", e.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no actor_start_failed event")
	}
	var inv lattice.HostInventory
	f.ctlRequest(t, f.ctl.GetInventory(f.h.ID()), nil, &inv)
	if len(inv.Actors) != 0 {
		t.Fatalf("failed actor listed: %+v", inv.Actors)
	}
}

// Issue 17, defect 6: stopping a host while the optimizing compiler works on
// an actor (seconds for a Go actor, far more under -race) must not wait for
// the compile: it is cancelled, and the host stops within 2 s.
func TestHostStopsPromptlyWhileCompiling(t *testing.T) {
	const budget = 2 * time.Second
	cases := []struct {
		name      string
		headStart time.Duration
		during    func(t *testing.T, f *fixture, ref string)
	}{
		{"actor runs interpreted, upgrade compiling", 0, func(t *testing.T, f *fixture, ref string) {
			var ack lattice.Ack
			f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: ref}, &ack)
			if !ack.Accepted {
				t.Fatal(ack.Error)
			}
		}},
		{"start waits for the compiler", -1, func(t *testing.T, f *fixture, ref string) {
			// Its reply never comes: the host stops under it.
			f.ctlAsync(f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: ref}, time.Minute)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.CompileHeadStart = tc.headStart }) // a fresh, empty compile cache
			sa := testenv.SignActor(t, f.dir, echoPkg, trust.SignActorOptions{Name: "echo"})
			tc.during(t, f, "file://"+sa.Path)
			testenv.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
				if f.h.runtime.compiling.Load() == 0 {
					return fmt.Errorf("no compile in progress")
				}
				return nil
			})
			start := time.Now()
			if err := f.stopHost(); err != nil {
				t.Fatalf("host run: %v", err)
			}
			elapsed := time.Since(start)
			t.Logf("host stopped %s after the stop, with a compile in progress", elapsed)
			if elapsed > budget {
				t.Fatalf("host took %s to stop during a compile, budget %s", elapsed, budget)
			}
			if n := f.h.runtime.compiling.Load(); n != 0 {
				t.Fatalf("%d compiles still running after the host stopped", n)
			}
		})
	}
}

// A module whose start section loops forever: wazero would run it inside
// InstantiateModule, where the stop flag cannot reach it; the host calls it
// after instantiating instead (wasmstop.StartExport), so the start
// deadline ends it.
func TestStartSectionLoopFailsAtItsStartDeadline(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.StartTimeout = time.Second })
	module := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x0a, 0x02, 0x60, 0x00, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // () -> (); (i32, i32) -> i32
		0x03, 0x03, 0x02, 0x00, 0x01, // the start function, __guest_call
		0x07, 0x10, 0x01, 0x0c, '_', '_', 'g', 'u', 'e', 's', 't', '_', 'c', 'a', 'l', 'l', 0x00, 0x01,
		0x08, 0x01, 0x00, // start: function 0
		0x0a, 0x0e, 0x02,
		0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end
		0x04, 0x00, 0x41, 0x01, 0x0b, // return 1
	}
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	key, _ := trust.CreateKeyPair(lattice.KindModule)
	signed, _, err := trust.SignActor(module, trust.SignActorOptions{Name: "startloop"}, acct, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, "startloop.wasm")
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	var a lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + path}, &a)
	if a.Accepted || !strings.Contains(a.Error, "start deadline of 1s passed") {
		t.Fatalf("start ack %+v, want a refusal naming the start deadline", a)
	}
}

package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// With a policy service configured, the host asks it before starting an
// actor and before letting an invocation through, and obeys the answer.
func TestPolicyServiceGatesActorStartsAndInvocations(t *testing.T) {
	var bannedActor, bannedCaller string
	f := newFixture(t, func(o *Options) { o.PolicyTopic = "test.policy" })
	answerPolicy(t, f.nc, "test.policy", func(req policy.Request, d *policy.Decision) {
		switch {
		case req.Action == policy.ActionStartActor && req.Target.PublicKey == bannedActor:
			d.Permitted, d.Message = false, "this actor may not run here"
		case req.Action == policy.ActionPerformInvocation && req.Source.PublicKey == bannedCaller:
			d.Permitted, d.Message = false, "this caller may not invoke"
		}
	})

	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	mustEcho(t, f, echo.Key)

	banned := f.startActorExpectingRefusal(t, lifePkg, func(key string) { bannedActor = key })
	if !strings.Contains(banned, "Policy evaluation rejected") || !strings.Contains(banned, "this actor may not run here") {
		t.Fatalf("start refusal: %s", banned)
	}

	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	bannedCaller = caller.PublicKey()
	data, _ := f.invocation(t, f.cluster, lattice.ActorEntity(bannedCaller), echo.Key, "Echo.Echo", []byte("x")).Encode()
	resp := f.raw(t, lattice.RPCActor("test", echo.Key), data)
	if !strings.Contains(resp.Error, "Policy evaluation rejected invocation attempt") || !strings.Contains(resp.Error, "this caller may not invoke") {
		t.Fatalf("invocation refusal: %q", resp.Error)
	}
	if testutil.ToFloat64(f.m.InvocationsRejected.WithLabelValues(string(lattice.ReasonPolicyDenied))) != 1 {
		t.Fatal("policy denial not counted")
	}
	mustEcho(t, f, echo.Key)
}

// answerPolicy is a policy service on topic: it permits every request
// that decide leaves as it is.
func answerPolicy(t *testing.T, nc *nats.Conn, topic string, decide func(req policy.Request, d *policy.Decision)) {
	t.Helper()
	sub, err := nc.Subscribe(topic, func(m *nats.Msg) {
		var req policy.Request
		_ = json.Unmarshal(m.Data, &req)
		d := policy.Decision{RequestID: req.RequestID, Permitted: true}
		decide(req, &d)
		b, _ := json.Marshal(d)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// startActorExpectingRefusal signs pkg, lets the test learn its key before
// the host sees it, asks the host to start it and returns the refusal.
func (f *fixture) startActorExpectingRefusal(t *testing.T, pkg string, learn func(key string)) string {
	t.Helper()
	sa := testenv.SignActor(t, f.dir, pkg, trust.SignActorOptions{Name: "banned"})
	learn(sa.Key)
	var a lattice.Ack
	f.ctlRequest(t, f.ctl.Cmd(f.h.ID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + sa.Path}, &a)
	if a.Accepted {
		t.Fatalf("%s started despite the policy", pkg)
	}
	return a.Error
}

// A change notice sent while the host's control connection is down is lost
// to it (core NATS), and the permission the service withdrew would stand in
// the host's cache for good. When the connection is restored the host
// forgets its cached decisions and asks the service again.
func TestPolicyIsAskedAgainAfterChangeNoticesWereLost(t *testing.T) {
	srv := testenv.NATS(t)
	// The control connection, as a node makes it but slow to come back:
	// the notice below is surely sent while it is away.
	ctl, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Close)
	var withdrawn atomic.Bool
	var asked atomic.Int32
	var firstReq atomic.Value // the request id of the first invocation decision
	f := newFixtureAt(t, srv.ClientURL(), func(o *Options) {
		o.PolicyTopic, o.PolicyChangesTopic, o.Ctl = "test.policy", "test.policy.changes", ctl
	})
	answerPolicy(t, f.nc, "test.policy", func(req policy.Request, d *policy.Decision) {
		if req.Action == policy.ActionPerformInvocation {
			asked.Add(1)
			firstReq.CompareAndSwap(nil, req.RequestID)
			if withdrawn.Load() {
				d.Permitted, d.Message = false, "permission withdrawn"
			}
		}
	})

	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	invoke := func() *lattice.InvocationResponse {
		t.Helper()
		data, err := f.invocation(t, f.cluster, lattice.ActorEntity(caller.PublicKey()), echo.Key, "Echo.Echo", []byte("x")).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return f.raw(t, lattice.RPCActor("test", echo.Key), data)
	}
	for range 2 {
		if r := invoke(); r.Error != "" {
			t.Fatalf("permitted invocation: %s", r.Error)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("the service was asked %d times for two identical invocations, want 1 (the second from the cache)", n)
	}

	cid, err := ctl.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	withdrawn.Store(true)
	notice, _ := json.Marshal(policy.Decision{RequestID: firstReq.Load().(string), Permitted: false, Message: "permission withdrawn"})
	if err := f.nc.Publish("test.policy.changes", notice); err != nil {
		t.Fatal(err)
	}
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if ctl.Stats().Reconnects != 0 {
		t.Fatal("the control connection was back before the notice was sent: the test proves nothing")
	}
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !ctl.IsConnected() {
			return errors.New("the control connection is not back yet")
		}
		return nil
	})
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if r := invoke(); !strings.Contains(r.Error, "permission withdrawn") {
			return fmt.Errorf("invocation after the lost notice: %q, want the service's new refusal", r.Error)
		}
		return nil
	})
}

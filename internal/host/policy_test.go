package host

import (
	"encoding/json"
	"strings"
	"testing"

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
	sub, err := f.nc.Subscribe("test.policy", func(m *nats.Msg) {
		var req policy.Request
		_ = json.Unmarshal(m.Data, &req)
		d := policy.Decision{RequestID: req.RequestID, Permitted: true}
		switch {
		case req.Action == policy.ActionStartActor && req.Target.PublicKey == bannedActor:
			d.Permitted, d.Message = false, "this actor may not run here"
		case req.Action == policy.ActionPerformInvocation && req.Source.PublicKey == bannedCaller:
			d.Permitted, d.Message = false, "this caller may not invoke"
		}
		b, _ := json.Marshal(d)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

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

package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// The supervisor's policy requests (start_provider) describe the host with
// the labels the host holds, as the host's own requests (start_actor) do:
// a label put through the control interface counts, a configured label
// removed there does not.
func TestPolicyRequestsOfSupervisorAndHostCarryTheHostsLabels(t *testing.T) {
	const topic = "test.policy"
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	n := startNode(t, map[string]string{config.EnvPolicyTopic: topic, config.EnvPolicyTimeout: "2000",
		config.EnvLabelPrefix + "zone": "configured", config.EnvLabelPrefix + "tier": "gold"})
	var mu sync.Mutex
	asked := map[string]policy.Host{} // action → the host of its latest request
	sub, err := n.nc.Subscribe(topic, func(m *nats.Msg) {
		var req policy.Request
		_ = json.Unmarshal(m.Data, &req)
		mu.Lock()
		asked[req.Action] = req.Host
		mu.Unlock()
		b, _ := json.Marshal(policy.Decision{RequestID: req.RequestID, Permitted: true})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := n.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	ctl := lattice.NewCtl("", n.cfg.LatticePrefix)
	for _, c := range []struct {
		subject string
		body    lattice.LabelCommand
	}{
		{ctl.LabelPut(n.s.HostID()), lattice.LabelCommand{Key: "team", Value: "blue"}},
		{ctl.LabelDel(n.s.HostID()), lattice.LabelCommand{Key: "tier"}},
	} {
		var ack lattice.Ack
		n.ctlRequest(c.subject, c.body, &ack)
		if !ack.Accepted {
			t.Fatalf("%s: %s", c.subject, ack.Error)
		}
	}
	want := map[string]string{"zone": "configured", "team": "blue"}
	maps.Copy(want, lattice.CoreLabels(runtime.GOARCH, runtime.GOOS))
	testenv.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if got := n.s.labels.get(); !maps.Equal(got, want) {
			return fmt.Errorf("the supervisor sees the host's labels as %v, want %v", got, want)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.admin.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: "builtin:keyvalue", LinkName: "default"}); err != nil {
		t.Fatalf("launch: %v", err)
	}
	var ack lattice.Ack
	n.ctlRequest(ctl.Cmd(n.s.HostID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + echo.Path, Count: 1}, &ack)
	if !ack.Accepted {
		t.Fatalf("start actor: %s", ack.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	fromSupervisor, fromHost := asked[policy.ActionStartProvider], asked[policy.ActionStartActor]
	if !maps.Equal(fromSupervisor.Labels, want) || !maps.Equal(fromHost.Labels, want) {
		t.Errorf("policy request labels: supervisor %v, host %v; want %v in both", fromSupervisor.Labels, fromHost.Labels, want)
	}
	if fromSupervisor.PublicKey != fromHost.PublicKey || fromSupervisor.Issuer != fromHost.Issuer || fromSupervisor.LatticeID != fromHost.LatticeID ||
		fmt.Sprint(fromSupervisor.ClusterIssuers) != fmt.Sprint(fromHost.ClusterIssuers) {
		t.Errorf("the supervisor and the host describe the host differently:\n%+v\n%+v", fromSupervisor, fromHost)
	}
}

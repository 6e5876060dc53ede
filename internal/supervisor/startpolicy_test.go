package supervisor

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// The supervisor asks the external policy service before it launches a
// provider: a denial refuses the launch with the service's message, no
// answer refuses it too (fail closed), a change notice flips the cached
// decision, and every decision is counted.
func TestStartProviderAsksThePolicyService(t *testing.T) {
	const topic, changes = "test.policy", "test.policy.changes"
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	n := startNode(t, map[string]string{config.EnvPolicyTopic: topic, config.EnvPolicyChangesTopic: changes, config.EnvPolicyTimeout: "500"})
	launch := func(ref, link string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return n.admin.LaunchProvider(ctx, lattice.LaunchProviderCommand{ProviderRef: ref, LinkName: link})
	}
	counted := func(result string, cached bool) float64 {
		return testutil.ToFloat64(n.m.PolicyDecisions.WithLabelValues(policy.ActionStartProvider, result, map[bool]string{true: "true", false: "false"}[cached]))
	}

	// No policy service answers: denied, and the reason says so.
	if err := launch("builtin:keyvalue", "default"); err == nil || !strings.Contains(err.Error(), "no decision") {
		t.Fatalf("launch with no policy service: %v", err)
	}
	if counted(policy.ResultError, false) != 1 {
		t.Fatalf("error decisions counted: %v", counted(policy.ResultError, false))
	}

	// A responder that permits keyvalue and denies httpserver.
	var mu sync.Mutex
	var asked []policy.Request
	sub, err := n.nc.Subscribe(topic, func(m *nats.Msg) {
		var req policy.Request
		_ = json.Unmarshal(m.Data, &req)
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		d := policy.Decision{RequestID: req.RequestID, Permitted: req.Target.ContractID == wire.ContractKeyValue || req.Action == policy.ActionStartActor}
		if !d.Permitted {
			d.Message = "no HTTP servers on this host"
		}
		b, _ := json.Marshal(d)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := n.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := launch("builtin:httpserver", "default"); err == nil || !strings.Contains(err.Error(), "no HTTP servers on this host") {
		t.Fatalf("denied launch: %v", err)
	}
	if _, ok := n.provider("builtin:httpserver", "default"); ok {
		t.Fatal("a denied provider is listed")
	}
	if err := launch("builtin:keyvalue", "default"); err != nil {
		t.Fatalf("permitted launch: %v", err)
	}
	n.waitProviderState("builtin:keyvalue", "default", child.StateRunning)
	mu.Lock()
	req := asked[0]
	mu.Unlock()
	b, _ := builtin.Lookup("builtin:httpserver")
	if req.Action != policy.ActionStartProvider || req.Target.PublicKey != b.Key() || req.Target.ContractID != wire.ContractHTTPServer ||
		req.Target.LinkName != "default" || req.Host.PublicKey != n.s.HostID() || req.Host.LatticeID != n.cfg.LatticePrefix {
		t.Fatalf("policy request %+v", req)
	}

	// The denial is cached; a change notice for its request permits it.
	if err := launch("builtin:httpserver", "default"); err == nil {
		t.Fatal("second launch not denied")
	}
	if counted(policy.ResultDenied, true) != 1 || counted(policy.ResultDenied, false) != 1 || counted(policy.ResultPermitted, false) != 1 {
		t.Fatalf("counted denied cached %v, denied %v, permitted %v", counted(policy.ResultDenied, true), counted(policy.ResultDenied, false), counted(policy.ResultPermitted, false))
	}
	// The host and the supervisor both follow the changes topic; only the
	// supervisor asked about this request, so its reply is the one that
	// says success (the host's, {"success":false}, may come first).
	replies, err := n.nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = replies.Unsubscribe() }()
	if err := n.nc.PublishRequest(changes, replies.Subject, []byte(`{"request_id":"`+req.RequestID+`","permitted":true,"message":""}`)); err != nil {
		t.Fatal(err)
	}
	for acked := false; !acked; {
		msg, err := replies.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("change notice: no success reply: %v", err)
		}
		acked = strings.Contains(string(msg.Data), `"success":true`)
	}
	if err := launch("builtin:httpserver", "default"); err != nil {
		t.Fatalf("launch after the change notice: %v", err)
	}
	n.waitProviderState("builtin:httpserver", "default", child.StateRunning)
	if counted(policy.ResultPermitted, true) != 1 {
		t.Fatalf("cached permit not counted")
	}

	// The host child asks too (start_actor), under its own minted user:
	// the policy subjects are in its permissions.
	var ack lattice.Ack
	n.ctlRequest(lattice.NewCtl("", n.cfg.LatticePrefix).Cmd(n.s.HostID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + echo.Path, Count: 1}, &ack)
	if !ack.Accepted {
		t.Fatalf("start_actor through the node's host: %s", ack.Error)
	}
	if strings.Contains(n.logs.String(), "Permissions Violation") {
		t.Errorf("a permission violation was logged:\n%s", n.logs.String())
	}
}

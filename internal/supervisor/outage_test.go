package supervisor

// What a node does when NATS, or only the supervisor's own connection to
// it, goes away for a while (docs/operations.md, "When NATS fails").

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// A NATS outage many health intervals long must not restart a healthy
// provider: while the supervisor's own connection is down, a health check
// that gets no answer says nothing of the provider. Before, every provider
// of the node was killed as unhealthy after healthFailures intervals of an
// outage, and restarted (losing what it held, an HTTP listener among it)
// once NATS was back.
func TestNATSOutageDoesNotRestartHealthyProviders(t *testing.T) {
	srv, n, ref, p := providerOnExternalNATS(t)
	pid := p.pid()

	srv.Stop()
	outage := 6 * time.Second // 6 unanswered checks (1 s each); healthFailures is 3
	time.Sleep(outage)
	srv.Start()

	// The provider answers again, on its own reconnected connection.
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		_, err := n.nc.Request(lattice.RPCHealth("default", p.key, "default"), nil, time.Second)
		return err
	})
	// And the supervisor's checks pass again: a few intervals with it up.
	time.Sleep(4 * 500 * time.Millisecond)
	d := n.waitProviderState(ref, "default", child.StateRunning)
	if got := p.pid(); got != pid || d.Restarts != 0 {
		t.Errorf("provider restarted by a %s NATS outage: pid %d -> %d, restarts %d", outage, pid, got, d.Restarts)
	}
	logs := n.logs.String()
	if strings.Contains(logs, `"msg":"provider health check failed"`) {
		t.Error("a health check unanswered while NATS was down was counted against the provider")
	}
	if c := strings.Count(logs, `"msg":"provider health unknown while the supervisor's NATS connection is down`); c < healthFailures {
		t.Errorf("%d health checks during the outage, want %d or more: the outage was not tried", c, healthFailures)
	}
}

// providerOnExternalNATS starts a node on the real nats-server, health
// checks every 500 ms, with the HTTP server provider (a real provider, on
// the SDK), and returns once its supervision loop is past the lattice read
// it makes when the provider first answers (catchUpLinks): two checks seen
// after that first one show it. A NATS fault then meets the loop in its
// checks, not in that read, which would hold it (bounded by linksWait).
func providerOnExternalNATS(t *testing.T) (*testenv.ExternalServer, *node, string, *providerInstance) {
	t.Helper()
	srv := testenv.ExternalNATS(t)
	port := strconv.Itoa(srv.Port)
	n := startNode(t, map[string]string{ // health checks every 500 ms
		config.EnvRPCHost: "127.0.0.1", config.EnvRPCPort: port,
		config.EnvCtlHost: "127.0.0.1", config.EnvCtlPort: port,
		config.EnvRPCTimeoutMS: "500", // how long a check waits for its answer
	})
	ref := "builtin:httpserver"
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	checks, err := n.nc.SubscribeSync(lattice.RPCHealth("default", p.key, "default"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := checks.NextMsg(10 * time.Second); err != nil {
			t.Fatalf("no health check of the provider: %v", err)
		}
	}
	_ = checks.Unsubscribe()
	return srv, n, ref, p
}

// The supervisor follows link changes to grant a key-value provider the
// buckets its links name (kvgrants.go). A change sent while the
// supervisor's own connection is down never reaches it; once the connection
// is restored, it reads the provider's links from the lattice again. Here a
// link naming a new bucket is put while the supervisor's connection is cut:
// the bucket must be granted and kvcounter must count in it. Before, the
// provider waited keyvalue.GrantWait for a grant that never came, and
// refused the actor.
func TestKeyValueGrantsCatchUpAfterTheSupervisorsConnectionIsRestored(t *testing.T) {
	n, actor, port := kvcounterNode(t)
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("first count %d", got)
	}
	kv, _ := builtin.Lookup("builtin:keyvalue")
	puts, err := n.nc.SubscribeSync(lattice.RPCLinkdefPut(n.cfg.LatticePrefix, kv.Key(), "default"))
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "MISSED"
	whileSupervisorIsCut(t, n, func() {
		n.putLinks(lattice.LinkDefinition{ActorID: actor.Key, ProviderID: kv.Key(), LinkName: "default",
			ContractID: wire.ContractKeyValue, Values: map[string]string{"bucket": bucket}})
		for sent := false; !sent; {
			m, err := puts.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("the host did not send the link to the provider: %v", err)
			}
			ld, err := lattice.DecodeLinkDefinition(m.Data)
			sent = err == nil && ld.Values["bucket"] == bucket
		}
	})
	grantedCreds(t, n, bucket)
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("first count in the bucket linked while the supervisor was away: %d", got)
	}
	if !strings.Contains(n.logs.String(), "buckets read again from the lattice") {
		t.Error("the log does not say the buckets were read again")
	}
}

// whileSupervisorIsCut keeps the supervisor's connection to the embedded
// server cut while change runs: the connection is closed, and closed again
// each time it comes back (it does within ReconnectWait, 250 ms plus
// jitter), until change returns. change returns once what it changed has
// been sent (a test subscriber received it), so the supervisor's own
// subscriptions missed it: however long the host takes on a loaded
// machine, the supervisor is away (but for the moment between a
// reconnect and the next cut, at most a few ms).
func whileSupervisorIsCut(t *testing.T, n *node, change func()) {
	t.Helper()
	ns := n.s.NATSServer()
	cut := func() bool {
		connz, err := ns.Connz(&server.ConnzOptions{Limit: 4096})
		if err != nil {
			return false
		}
		cut := false
		for _, c := range connz.Conns {
			if c.Name == "latticed-supervisor" && ns.DisconnectClientByID(c.Cid) == nil {
				cut = true
			}
		}
		return cut
	}
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !cut() {
			return errors.New("the supervisor is not connected")
		}
		return nil
	})
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				cut()
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	change()
}

// The supervisor remembers the actors its host runs from the host's
// lattice events, to start them again if the host crashes (actors.go).
// Events sent while its own connection is down are lost to it; once the
// connection is restored it reads the host's inventory again. Here actor
// instances are started while the supervisor's connection is cut, then the
// host is killed: the restarted host must run as many as before. Before,
// it ran only those whose events got through.
func TestHostCrashAfterLostEventsRestartsEveryActorInstance(t *testing.T) {
	echo := echoActor(t)
	n := startNode(t, nil, "file://"+echo.Path)
	events := make(chan *nats.Msg, 256)
	sub, err := n.nc.ChanSubscribe(lattice.Events("default"), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctl := lattice.NewCtl("", "default")
	instances := 1
	whileSupervisorIsCut(t, n, func() {
		var ack lattice.Ack
		n.ctlRequest(ctl.Cmd(n.s.HostID(), lattice.CmdLaunchActor), lattice.StartActorCommand{ActorRef: "file://" + echo.Path, Count: 1}, &ack)
		if !ack.Accepted {
			t.Fatalf("start an echo instance: %s", ack.Error)
		}
		instances++
		waitEvent(t, events, lattice.EventActorStarted, echo.Key)
	})
	testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(n.logs.String(), "the actors the host runs were read again from its inventory") {
			return errors.New("the supervisor has not read the host's inventory again")
		}
		return nil
	})

	crashHostWithOneActor(t, n, instances)
}

// oneActorInstances reads the node's host inventory: how many instances
// its one actor has.
func oneActorInstances(n *node) (int, error) {
	msg, err := n.nc.Request(lattice.NewCtl("", "default").GetInventory(n.s.HostID()), []byte("{}"), 2*time.Second)
	if err != nil {
		return 0, err // a restarted host may not answer yet
	}
	var inv lattice.HostInventory
	if err := jsonUnmarshal(msg.Data, &inv); err != nil {
		return 0, err
	}
	if len(inv.Actors) != 1 {
		return 0, fmt.Errorf("the host runs %+v, want one actor", inv.Actors)
	}
	return len(inv.Actors[0].Instances), nil
}

// crashHostWithOneActor SIGKILLs the node's host child and waits until a
// new one runs its one actor with the instances it ran.
func crashHostWithOneActor(t *testing.T, n *node, instances int) {
	t.Helper()
	before := n.s.Status().Host
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if st := n.s.Status().Host; st.PID == before.PID || st.State != child.StateRunning {
			return fmt.Errorf("host %+v", st)
		}
		if got, err := oneActorInstances(n); err != nil || got != instances {
			return fmt.Errorf("the restarted host runs %d instances (%v), want the %d that ran", got, err, instances)
		}
		return nil
	})
}

// A NATS outage longer than what is left of a provider's user JWT leaves the
// provider unable to reconnect once NATS is back: it presents the JWT it
// has, which has expired, and renewals need it connected. The server
// refuses it (authorization violation), the SDK gives the connection up and
// exits, and the supervisor starts it again with new credentials: it
// serves again within seconds of NATS being back, not never.
func TestProviderWhoseCredentialsExpiredInAnOutageComesBack(t *testing.T) {
	o := startOperatorServer(t)
	env := o.env(false)
	env[config.EnvRPCTimeoutMS] = "500"
	// A lifetime below the configurable minimum keeps the test short.
	n := startNodeWith(t, env, func(s *Supervisor) { s.credsLifetime = 3 * time.Second })
	ref := "builtin:httpserver"
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
	p.mu.Lock()
	expired := p.creds
	p.mu.Unlock()
	pid := p.pid()

	o.stop()
	time.Sleep(time.Until(expired.Expires.Add(time.Second)))
	o.start(t)
	back := time.Now()

	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		d, ok := n.provider(ref, "default")
		if !ok || d.State != child.StateRunning || p.pid() == pid {
			return fmt.Errorf("provider %+v (pid %d, was %d): not running again with a new process", d, p.pid(), pid)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.creds.Expires.After(expired.Expires) {
			return errors.New("not given new credentials")
		}
		return nil
	})
	t.Logf("the provider ran again %s after NATS was back", time.Since(back).Round(time.Millisecond))
	if _, err := n.nc.Request(lattice.RPCHealth("default", p.key, "default"), nil, 2*time.Second); err != nil {
		t.Errorf("the restarted provider does not answer: %v", err)
	}
}

// A provider stopped while NATS hangs (the server's process stopped: its
// connections stay open and nothing answers on them) must stop at once.
// Here its restart is reading the provider's links from the lattice cache
// when the stop comes. Before, that read ran to its own timeout (linksWait,
// 20 s) whatever the stop, and `ctl stop provider` and the node's shutdown
// waited for it; so did a stop while the supervision loop read links.
func TestProviderStopsPromptlyWhileNATSHangs(t *testing.T) {
	srv, n, ref, p := providerOnExternalNATS(t) // past its first links read: the read under test is the restart's

	resume := srv.Hang()
	defer resume()
	if err := syscall.Kill(p.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The restart's first step is the read of the provider's links.
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(n.logs.String(), `"msg":"provider ended unexpectedly; restarting it"`) {
			return errors.New("the supervisor has not seen the provider exit")
		}
		if d, _ := n.provider(ref, "default"); d.State != child.StateStarting {
			return fmt.Errorf("provider is %s, want %s", d.State, child.StateStarting)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // well into the read, which nothing answers

	began := time.Now()
	if err := n.s.StopProvider(context.Background(), lattice.StopProviderCommand{ProviderRef: ref, LinkName: "default"}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	if took > 5*time.Second {
		t.Errorf("stopping the provider while NATS hangs took %s, want well under linksWait (%s)", took.Round(time.Millisecond), linksWait)
	}
	t.Logf("stopped in %s while NATS hung", took.Round(time.Microsecond))
	if _, listed := n.provider(ref, "default"); listed {
		t.Error("the stopped provider is still listed")
	}
}

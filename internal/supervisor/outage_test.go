package supervisor

// What a node does when NATS, or only the supervisor's own connection to
// it, goes away for a while (docs/operations.md, "When NATS fails").

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

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
	srv := testenv.ExternalNATS(t)
	port := strconv.Itoa(srv.Port)
	n := startNode(t, map[string]string{ // health checks every 500 ms
		config.EnvRPCHost: "127.0.0.1", config.EnvRPCPort: port,
		config.EnvCtlHost: "127.0.0.1", config.EnvCtlPort: port,
		config.EnvRPCTimeoutMS: "500", // how long a check waits for its answer
	})
	ref := "file://" + providerBin
	n.launch(ref, "default", "")
	n.waitProviderState(ref, "default", child.StateRunning)
	p := n.instance(ref, "default")
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
	ns := n.s.NATSServer()
	supervisorConn := func() (uint64, bool) {
		connz, err := ns.Connz(&server.ConnzOptions{Limit: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range connz.Conns {
			if c.Name == "latticed-supervisor" {
				return c.Cid, true
			}
		}
		return 0, false
	}
	// The supervisor reconnects within ReconnectWait (250 ms, plus jitter):
	// a round counts only if the host sent the link while it was away.
	var bucket string
	for round := 1; ; round++ {
		if round > 10 {
			t.Fatal("in 10 rounds the supervisor's connection was back before the host sent the link: could not make it miss one")
		}
		bucket = fmt.Sprintf("MISSED_%d", round)
		var cid uint64
		testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			var ok bool
			if cid, ok = supervisorConn(); !ok {
				return errors.New("the supervisor is not connected")
			}
			return nil
		})
		if err := ns.DisconnectClientByID(cid); err != nil {
			t.Fatal(err)
		}
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
		if _, back := supervisorConn(); !back {
			break
		}
	}
	grantedCreds(t, n, bucket)
	if got := httpCounter(t, port); got != 1 {
		t.Fatalf("first count in the bucket linked while the supervisor was away: %d", got)
	}
	if !strings.Contains(n.logs.String(), "buckets read again from the lattice") {
		t.Error("the log does not say the buckets were read again")
	}
}

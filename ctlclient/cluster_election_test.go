package ctlclient

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testhost"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// connectCluster opens a client connection that knows every server of c
// and moves to another quickly when its server dies.
func connectCluster(t *testing.T, c testenv.Cluster) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		// A server may still be joining; the first use waits for it.
		nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// lineLog collects a host's log lines for assertions.
type lineLog struct{ buf testenv.SyncBuffer }

func (l *lineLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(&l.buf, nil)) }

// A link put issued right after the cache stream's leader was killed -9
// (while the survivors wait out their 4–9 s raft election timeout) succeeds
// within the client's deadline through the product's path: ctl client →
// host control interface → lattice cache write. The entry is stored exactly
// once: the stream's last sequence moves by one for the write, however many
// attempts it took.
func TestLinkPutRidesOutStreamLeaderElection(t *testing.T) {
	cl := testenv.NewCluster(t, "election", 3)
	cl.Start(t)
	ctx := context.Background()
	const prefix = "elect"
	hostKey, _ := trust.CreateKeyPair(lattice.KindServer)
	clusterKey, _ := trust.CreateKeyPair(lattice.KindCluster)
	var hostLog lineLog
	h, _ := testhost.Start(t, host.Options{
		HostSettings: config.HostSettings{
			LatticePrefix: prefix, CacheReplicas: 3, AllowFileLoad: true, CompileCacheDir: t.TempDir(), MemoryLimitPages: 1024,
		},
		HostKey: hostKey, ClusterKey: clusterKey,
		RPC: connectCluster(t, cl), Ctl: connectCluster(t, cl),
		HeartbeatInterval: time.Hour, Logger: hostLog.logger(),
	})
	nc := connectCluster(t, cl)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream := lattice.CacheStream(prefix)

	c := New(nc, "", prefix)
	c.Timeout = time.Second // the write must not depend on a long --timeout
	actor, _ := trust.CreateKeyPair(lattice.KindModule)
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	ld := lattice.LinkDefinition{ActorID: actor.PublicKey(), ProviderID: provider.PublicKey(), ContractID: "wasmcloud:keyvalue", LinkName: "default", Values: map[string]string{"URL": "redis://x"}}

	// The scenario is a host whose cache is open when the leader dies. On a
	// loaded machine the cluster may take longer to form than the host's
	// first attempt to open its cache; then the host retries in the
	// background, and a kill during that retry tests the retry, not the
	// write. A put through the product's path proves the cache is open.
	warm := ld
	warm.LinkName = "warmup"
	testenv.CheckFor(t, 90*time.Second, 500*time.Millisecond, func() error { return c.PutLink(ctx, warm) })
	// Generous for a loaded 2-core machine: the meta leader and then the
	// stream's are elected over a few raft rounds.
	_, leader := cl.Healthy(t, stream, 60*time.Second)

	before := streamState(t, js, stream)
	cl.ByName(leader).Signal(t, syscall.SIGKILL)
	killed := time.Now()

	// What the old path did: one plain JetStream publish (the client
	// library's own two retries 250 ms apart) during the election.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	_, plainErr := js.Publish(pctx, lattice.CacheClaims(prefix, "probe"), []byte("{}"))
	pcancel()
	t.Logf("plain js.Publish %s after the kill: err=%v", time.Since(killed).Round(time.Millisecond), plainErr)

	start := time.Now()
	err = c.PutLink(ctx, ld)
	took := time.Since(start)
	t.Logf("ctl link put during the election of %s's successor returned after %s (%s after the kill): err=%v", leader, took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), err)
	if err != nil {
		t.Fatalf("link put during a leader election failed: %v\nhost log:\n%s", err, hostLog.buf.String())
	}
	if took > WriteWait {
		t.Errorf("link put took %s, beyond its deadline %s", took, WriteWait)
	}
	if plainErr == nil && !strings.Contains(hostLog.buf.String(), "waited out a JetStream leader election") {
		t.Fatalf("no election seen: the plain publish and the first attempt both succeeded, so this test tested nothing")
	}

	after := streamState(t, js, stream)
	msg, err := jsGetLast(js, stream, lattice.CacheLinkdef(prefix, lattice.LinkID(ld.ActorID, ld.ContractID, ld.LinkName)))
	if err != nil {
		t.Fatalf("link entry not in %s after a successful put: %v", stream, err)
	}
	var got lattice.LinkDefinition
	if err := json.Unmarshal(msg.Data, &got); err != nil || got.ActorID != ld.ActorID || got.Values["URL"] != "redis://x" {
		t.Fatalf("stored entry %s (%v), want the put link", msg.Data, err)
	}
	// The probe above may or may not have landed; the link must add exactly
	// one message on top of it.
	probe := uint64(0)
	if plainErr == nil {
		probe = 1
	}
	if after.LastSeq != before.LastSeq+probe+1 || msg.Sequence != after.LastSeq {
		t.Errorf("stream sequence %d → %d (link at %d, probe stored: %v): want exactly one stored write of the link", before.LastSeq, after.LastSeq, msg.Sequence, plainErr == nil)
	}
	// The host that answered knows the link too (it applies the put at once).
	// The read goes to the cache, whose new leader may still be settling
	// on a loaded machine (a read with c's 1 s timeout once got no entry):
	// it is asked again, as a user would, until it answers.
	var links []lattice.LinkDefinition
	testenv.CheckFor(t, 30*time.Second, 250*time.Millisecond, func() error {
		links, err = c.Links(ctx)
		return err
	})
	n := 0
	for _, l := range links {
		if l.ID == lattice.LinkID(ld.ActorID, ld.ContractID, ld.LinkName) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("get links lists the link %d times, want once: %+v", n, links)
	}
	_ = h
}

func streamState(t *testing.T, js jetstream.JetStream, stream string) jetstream.StreamState {
	t.Helper()
	var st jetstream.StreamState
	testenv.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		st = info.State
		return nil
	})
	return st
}

func jsGetLast(js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	// Reads, like writes, meet "JetStream system temporarily unavailable"
	// while the cluster settles after an election: retry those, but not an
	// answer that the message is not there.
	deadline := time.Now().Add(60 * time.Second)
	for {
		msg, err := getLast(js, stream, subject)
		if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) || time.Now().After(deadline) {
			return msg, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getLast(js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, subject)
}

package host

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// The host rides out a restart of a real nats-server: calls during the outage
// fail cleanly within their timeout, and the actor answers again afterwards
// without being restarted.
func TestHostSurvivesExternalNATSRestart(t *testing.T) {
	srv := testenv.ExternalNATS(t)
	f := newFixtureAt(t, srv.URL, func(o *Options) { o.RPCTimeout = time.Second })
	echo := f.startActor(t, echoPkg, 1, trust.SignActorOptions{Name: "echo"})
	mustEcho(t, f, echo.Key)

	srv.Stop()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	caller, _ := trust.CreateKeyPair(lattice.KindModule)
	_, err := rpc.Invoke(ctx, f.nc, f.cluster, f.h.ID(), lattice.ActorEntity(caller.PublicKey()), lattice.ActorEntity(echo.Key),
		lattice.RPCActor("test", echo.Key), "Echo.Echo", []byte("x"))
	cancel()
	if err == nil {
		t.Fatal("call succeeded while NATS was down")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("call hung for %s during the outage", waited)
	}

	srv.Start()
	testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		out, err := f.call(t, echo.Key, "Echo.Echo", []byte("back"))
		if err == nil && string(out) != "back" {
			t.Fatalf("wrong reply %q", out)
		}
		return err
	})
	// The control connection reconnects on its own schedule.
	testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		msg, err := f.nc.Request(f.ctl.GetInventory(f.h.ID()), nil, time.Second)
		if err != nil {
			return err
		}
		var inv lattice.HostInventory
		if err := json.Unmarshal(msg.Data, &inv); err != nil {
			return err
		}
		if len(inv.Actors) != 1 || !strings.HasPrefix(inv.Actors[0].ID, "M") {
			t.Fatalf("inventory after restart: %+v", inv)
		}
		return nil
	})
}

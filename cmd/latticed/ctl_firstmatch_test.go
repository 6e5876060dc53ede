package main

import (
	"testing"
	"time"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// On a lattice of one, `ctl scale actor` and `ctl stop actor` without
// --host-id find the host from the first matching inventory and return at
// once, not after the whole --timeout window (5 s by default, which they
// used to wait out); the host that runs the actor is the one that did the
// work. (`ctl revoke provider` without --host-id is timed the same way
// against a real `latticed up` in TestUpWithProvidersAndAdminSocketRevocation.)
func TestCtlTargetedCommandsEndAtFirstMatch(t *testing.T) {
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	const prefix = "firstmatch"
	h := startTestHost(t, s, cluster, prefix, nil)
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
	})
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	// Started on the host by id: compiling the module is not what is timed.
	e.run("ctl", "start", "actor", "file://"+echo.Path, "--host-id", h.ID(), "--timeout", "2m").want(t, 0)

	// The window these commands used to wait out in full; 2.5 s is half of
	// it, generous for a loaded machine, and fails a fixed wait.
	const bound = 2500 * time.Millisecond
	if ctlclient.DefaultTimeout <= bound {
		t.Fatalf("DefaultTimeout %s is within the bound %s: this test would not tell a fixed wait apart", ctlclient.DefaultTimeout, bound)
	}
	instances := func() int {
		for _, a := range h.Inventory().Actors {
			if a.ID == echo.Key {
				return len(a.Instances)
			}
		}
		return 0
	}
	for _, tc := range []struct {
		name string
		args []string
		want int // instances of the actor on the host afterwards
	}{
		{"scale actor", []string{"ctl", "scale", "actor", echo.Key, "2"}, 2},
		{"stop actor", []string{"ctl", "stop", "actor", echo.Key}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := e.run(tc.args...)
			took := time.Since(start)
			r.want(t, 0)
			t.Logf("%v without --host-id (default --timeout %s) returned after %s", tc.args, ctlclient.DefaultTimeout, took.Round(time.Millisecond))
			mustContain(t, "stdout", r.stdout, h.ID())
			if took >= bound {
				t.Errorf("%v took %s, want well under the %s window (< %s)", tc.args, took, ctlclient.DefaultTimeout, bound)
			}
			// The host answered after doing the work.
			if n := instances(); n != tc.want {
				t.Errorf("host %s runs %d instances of the actor, want %d", h.ID(), n, tc.want)
			}
		})
	}
}

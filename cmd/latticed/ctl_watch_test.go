package main

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestCtlWatchPrintsMatchingEvents(t *testing.T) {
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	const prefix = "watchtest"
	h := startTestHost(t, s, cluster, prefix, nil)
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
	})
	echo := testenv.SignActor(t, t.TempDir(), "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo"})
	out := make(chan result, 1)
	go func() { out <- e.run("ctl", "watch", "--type", "actors_started", "--count", "1", "--output", "json") }()
	// Start the actor until watch is surely subscribed: each start adds an
	// instance and publishes actors_started again.
	var r result
	testenv.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
		e.run("ctl", "start", "actor", "file://"+echo.Path, "--host-id", h.ID()).want(t, 0)
		select {
		case r = <-out:
			return nil
		default:
			return errNotYet
		}
	})
	r.want(t, 0)
	var ev lattice.CloudEvent
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.Type != lattice.EventTypePrefix+lattice.EventActorsStarted || ev.Source != h.ID() {
		t.Fatalf("watch printed %q (%v)", r.stdout, err)
	}
}

var errNotYet = errors.New("watch has not printed yet")

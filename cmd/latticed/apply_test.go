package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestApplyIsIdempotent(t *testing.T) {
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	const prefix = "applytest"
	h := startTestHost(t, s, cluster, prefix, map[string]string{"zone": "a"})
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
	})
	dir := t.TempDir()
	echo := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{Name: "echo", CallAlias: "applied-echo"})
	if err := os.Rename(echo.Path, filepath.Join(dir, "echo_s.wasm")); err != nil {
		t.Fatal(err)
	}
	provider, _ := trust.CreateKeyPair(lattice.KindService)
	writeManifest := func(count int) string {
		p := filepath.Join(dir, "lattice.yaml")
		body := fmt.Sprintf(`actors:
  - ref: ./echo_s.wasm
    count: %d
    constraints: {zone: a}
links:
  - actor: ./echo_s.wasm
    provider: %s
    contract: wasmcloud:keyvalue
    values: {bucket: counters}
`, count, provider.PublicKey())
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	apply := func(count int) []manifest.Step {
		var steps []manifest.Step
		// Short, since each apply also looks for the link's provider (none
		// runs here) for up to the timeout; not 1s, which a scale request
		// on a loaded machine outlasts.
		e.json(&steps, "steps", "apply", writeManifest(count), "--timeout", "3s")
		return steps
	}

	steps := apply(2)
	if len(steps) != 2 || steps[0].Action != "started" || steps[0].Key != echo.Key || steps[0].HostID != h.ID() || steps[1].Action != "put" {
		t.Fatalf("first apply: %+v", steps)
	}
	if steps = apply(2); steps[0].Action != "unchanged" {
		t.Fatalf("second apply: %+v", steps)
	}
	if steps = apply(3); steps[0].Action != "scaled" {
		t.Fatalf("apply with a new count: %+v", steps)
	}
	var inv lattice.HostInventory
	e.json(&inv, "inventory", "ctl", "get", "inventory", h.ID())
	if len(inv.Actors) != 1 || len(inv.Actors[0].Instances) != 3 {
		t.Fatalf("inventory %+v", inv.Actors)
	}
	var links []lattice.LinkDefinition
	e.json(&links, "links", "ctl", "get", "links")
	if len(links) != 1 || links[0].ActorID != echo.Key || links[0].Values["bucket"] != "counters" {
		t.Fatalf("links %+v", links)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("actorz: []\n"), 0o644)
	r := e.run("apply", bad)
	r.want(t, 2)
	mustContain(t, "bad manifest", r.stderr, "field actorz not found")
}

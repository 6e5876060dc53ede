package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	acct, mod := testenv.ActorKeys(t)
	// signEcho (re)builds ./echo_s.wasm at this revision, as a rebuild of
	// an actor at the same path does.
	signEcho := func(rev int32) testenv.SignedActor {
		echo := testenv.SignActorAs(t, dir, "github.com/latticed/latticed/actor/examples/echo",
			trust.SignActorOptions{Name: "echo", CallAlias: "applied-echo", Rev: rev}, acct, mod)
		if err := os.Rename(echo.Path, filepath.Join(dir, "echo_s.wasm")); err != nil {
			t.Fatal(err)
		}
		return echo
	}
	echo := signEcho(1)
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
	// A rebuilt actor at the same path, of a higher revision: the running
	// one is live-updated to it, its instances kept; once, then unchanged.
	signEcho(2)
	if steps = apply(3); steps[0].Action != "updated" || steps[0].Reason != "revision 2, was 1" {
		t.Fatalf("apply of a new revision: %+v", steps)
	}
	var after lattice.HostInventory
	e.json(&after, "inventory", "ctl", "get", "inventory", h.ID())
	if len(after.Actors) != 1 || len(after.Actors[0].Instances) != 3 {
		t.Fatalf("inventory after the update %+v", after.Actors)
	}
	for i, in := range after.Actors[0].Instances {
		if in.Revision != 2 || !slices.ContainsFunc(inv.Actors[0].Instances, func(b lattice.ActorInstance) bool { return b.InstanceID == in.InstanceID }) {
			t.Errorf("instance %d after the update: %+v, want revision 2 and one of the instances before", i, in)
		}
	}
	if steps = apply(3); steps[0].Action != "unchanged" {
		t.Fatalf("apply after the update: %+v", steps)
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

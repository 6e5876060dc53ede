package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/internal/oci"
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

// The usual way to ship a new version of an actor: push it under a new tag
// and point the manifest at it. apply pulls the image to read its claims,
// finds the running actor by its key and live-updates it; the same
// manifest again changes nothing, and going back to the old tag (a lower
// revision, which a live update refuses) leaves the actor as it runs and
// says so. Before, apply did not know the new tag's actor was the running
// one: it auctioned and started it, and the host refused ("already runs
// here from …; use a live update"), so apply failed.
func TestApplyUpdatesAnActorToANewTagOfItsImage(t *testing.T) {
	reg := testenv.Registry(t, nil)
	s := testenv.NATS(t)
	cluster, _ := trust.CreateKeyPair(lattice.KindCluster)
	const prefix = "applyoci"
	h := startTestHost(t, s, cluster, prefix, nil, func(o *host.Options) {
		o.OCI = oci.New(oci.Settings{AllowedInsecure: []string{reg}})
	})
	e := newCtlEnv(t, map[string]string{
		"WASMCLOUD_CTL_HOST": "127.0.0.1", "WASMCLOUD_CTL_PORT": serverPort(t, s), "WASMCLOUD_LATTICE_PREFIX": prefix,
		config.EnvOCIAllowedInsecure: reg,
	})
	dir := t.TempDir()
	acct, mod := testenv.ActorKeys(t)
	for rev := int32(1); rev <= 2; rev++ {
		echo := testenv.SignActorAs(t, dir, "github.com/latticed/latticed/actor/examples/echo",
			trust.SignActorOptions{Name: "echo", Rev: rev}, acct, mod)
		e.run("push", fmt.Sprintf("%s/latticed/echo:0.%d.0", reg, rev), echo.Path, "--insecure").want(t, 0)
	}
	apply := func(tag string) manifest.Step {
		t.Helper()
		p := filepath.Join(dir, "lattice.yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("actors:\n  - ref: %s/latticed/echo:%s\n    count: 2\n", reg, tag)), 0o644); err != nil {
			t.Fatal(err)
		}
		var steps []manifest.Step
		e.json(&steps, "steps", "apply", p, "--timeout", "3s")
		if len(steps) != 1 {
			t.Fatalf("apply of %s: %+v", tag, steps)
		}
		return steps[0]
	}
	inventory := func() lattice.ActorDescription {
		t.Helper()
		var inv lattice.HostInventory
		e.json(&inv, "inventory", "ctl", "get", "inventory", h.ID())
		if len(inv.Actors) != 1 {
			t.Fatalf("inventory %+v", inv.Actors)
		}
		return inv.Actors[0]
	}

	if st := apply("0.1.0"); st.Action != "started" || st.Key != mod.PublicKey() {
		t.Fatalf("first apply: %+v", st)
	}
	before := inventory()
	if st := apply("0.2.0"); st.Action != "updated" || st.Reason != "revision 2, was 1" {
		t.Fatalf("apply of the new tag: %+v", st)
	}
	after := inventory()
	if want := reg + "/latticed/echo:0.2.0"; after.ImageRef != want || len(after.Instances) != 2 {
		t.Fatalf("after the update the actor runs %q with %d instances, want %q with 2", after.ImageRef, len(after.Instances), want)
	}
	for i, in := range after.Instances {
		if in.Revision != 2 || !slices.ContainsFunc(before.Instances, func(b lattice.ActorInstance) bool { return b.InstanceID == in.InstanceID }) {
			t.Errorf("instance %d after the update: %+v, want revision 2 and one of the instances before", i, in)
		}
	}
	if st := apply("0.2.0"); st.Action != "unchanged" || st.Reason != "" {
		t.Fatalf("apply of the same tag again: %+v", st)
	}
	st := apply("0.1.0")
	if st.Action != "unchanged" || !strings.Contains(st.Reason, "a live update needs a higher one") {
		t.Fatalf("apply of the older tag: %+v", st)
	}
	if got := inventory(); got.ImageRef != after.ImageRef || len(got.Instances) != 2 || got.Instances[0].Revision != 2 {
		t.Fatalf("after the apply of the older tag: %+v", got)
	}
}

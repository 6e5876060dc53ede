package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/internal/testing/wasmbuild"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// make run's manifest: the banner lists echo and kvcounter where their
// links put them (kvcounter's key-value link is no place to visit).
func TestBannerPlacesOfTheDemo(t *testing.T) {
	m, err := manifest.Load(filepath.Join("..", "..", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := httpPlaces(m)
	want := []string{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/"}
	if len(got) != len(want) || got[0].url != want[0] || got[1].url != want[1] {
		t.Fatalf("places %v, want %v", got, want)
	}
	if got := httpPlaces(&manifest.Manifest{Links: []manifest.Link{
		{Actor: "MXX", Contract: "wasmcloud:httpserver", Values: map[string]string{"address": "0.0.0.0:9000"}},
		{Actor: "MYY", Contract: "wasmcloud:httpserver", Values: map[string]string{"address": "[::1]:9001"}},
		{Actor: "MZZ", Contract: "wasmcloud:httpserver", Values: map[string]string{"port": "nope"}},
	}}); len(got) != 2 || got[0].url != "http://127.0.0.1:9000/" || got[1].url != "http://[::1]:9001/" {
		t.Fatalf("every interface is reached on loopback, IPv6 in brackets, a refused link left out: %v", got)
	}
	if got, want := formatBanner([]place{{"echo", "http://127.0.0.1:8080/"}, {"metrics", "http://127.0.0.1:9090/metrics"}}),
		"\n  echo     http://127.0.0.1:8080/\n  metrics  http://127.0.0.1:9090/metrics\n\n"; got != want {
		t.Fatalf("banner %q, want %q", got, want)
	}
}

// An actor is named in the banner by its claims; a module that is not
// there (not built yet, or an OCI reference) by its reference's last part.
func TestBannerNamesActorsByTheirClaims(t *testing.T) {
	account, _ := trust.CreateKeyPair(lattice.KindAccount)
	module, _ := trust.CreateKeyPair(lattice.KindModule)
	signed, _, err := trust.SignActor(wasmbuild.TinyEcho(), trust.SignActorOptions{Name: "tiny"}, account, module)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny_s.wasm")
	if err := os.WriteFile(path, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		path: "tiny", "file://" + path: "tiny", filepath.Join(t.TempDir(), "echo_s.wasm"): "echo_s.wasm",
		"registry.example.com/team/echo:0.1.0": "echo:0.1.0",
	} {
		if got := actorLabel(ref); got != want {
			t.Errorf("actorLabel(%s) = %q, want %q", ref, got, want)
		}
	}
}

package main

import (
	"path/filepath"
	"testing"

	"github.com/latticed/latticed/internal/manifest"
)

// make run's manifest: the banner lists echo and kvcounter where their
// links put them (kvcounter's key-value link is no place to visit); a
// module that is not there yet is named by its file.
func TestBannerPlacesOfTheDemo(t *testing.T) {
	m, err := manifest.Load(filepath.Join("..", "..", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := httpPlaces(m)
	want := []place{{"echo_s.wasm", "http://127.0.0.1:8080/"}, {"kvcounter_s.wasm", "http://127.0.0.1:8081/"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
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

package manifest

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadResolvesRelativeRefsAndDefaults(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "m.yaml", `
actors:
  - ref: ./echo.wasm
  - ref: file:///abs/kv.wasm
    count: 3
providers:
  - ref: builtin:httpserver
  - ref: ./bin/provider
    link_name: backend
links:
  - {actor: ./echo.wasm, provider: builtin:httpserver, contract: wasmcloud:httpserver, values: {port: "8080"}}
`)
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Actors[0].Ref != "file://"+filepath.Join(dir, "echo.wasm") || m.Actors[0].Count != 1 || m.Actors[1].Count != 3 || m.Actors[1].Ref != "file:///abs/kv.wasm" {
		t.Fatalf("actors %+v", m.Actors)
	}
	if m.Providers[0].Ref != "builtin:httpserver" || m.Providers[0].LinkName != "default" ||
		m.Providers[1].Ref != "file://"+filepath.Join(dir, "bin/provider") || m.Providers[1].LinkName != "backend" {
		t.Fatalf("providers %+v", m.Providers)
	}
	if m.Links[0].LinkName != "default" || m.Links[0].Values["port"] != "8080" {
		t.Fatalf("links %+v", m.Links)
	}
}

func TestLoadRejectsBadManifests(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"typo":                     {"actor:\n  - ref: x.wasm\n", "field actor not found"},
		"no ref":                   {"actors:\n  - count: 2\n", "actors[0]: ref is required"},
		"negative count":           {"actors:\n  - {ref: x.wasm, count: -1}\n", "must be positive"},
		"link fields":              {"links:\n  - {actor: a}\n", "links[0]: actor, provider and contract are required"},
		"empty":                    {"", "the file is empty: a manifest lists actors, providers and/or links"},
		"only comments":            {"# nothing yet\n\n", "the file is empty"},
		"tab indent":               {"actors:\n  - ref: x\n\tcount: 2\n", "line 3: indented with a tab"},
		"syntax":                   {"actors:\n- ref: x\n  count: 1\n providers: []\n", "3 |   count: 1\n     4 |  providers: []"},
		"unknown builtin provider": {"providers:\n  - ref: builtin:nope\n", `providers[0]: "builtin:nope" is no built-in provider: the built-ins are builtin:httpserver, builtin:keyvalue`},
		"actor twice":              {"actors:\n  - {ref: oci://r/echo:1}\n  - {ref: oci://r/echo:1, count: 2}\n", "actors[1]: oci://r/echo:1 is listed already as actors[0]: give one entry its total count"},
		"provider twice":           {"providers:\n  - {ref: builtin:keyvalue}\n  - {ref: builtin:keyvalue, link_name: default}\n", "providers[1]: builtin:keyvalue on link name default is listed already as providers[0]"},
		"unknown builtin in link":  {"links:\n  - {actor: a, provider: builtin:http, contract: wasmcloud:httpserver}\n", `links[0]: provider: "builtin:http" is no built-in`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(write(t, dir, strings.ReplaceAll(name, " ", "_")+".yaml", tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestProviderKey(t *testing.T) {
	b, _ := builtin.Lookup("builtin:keyvalue")
	if k, err := ProviderKey("builtin:keyvalue"); err != nil || k != b.Key() {
		t.Fatalf("builtin: %s %v", k, err)
	}
	exe := write(t, t.TempDir(), "prov", "#!/bin/sh\n")
	k, err := ProviderKey("file://" + exe)
	if err != nil || k != trust.FileProviderKey(sha256.Sum256([]byte("#!/bin/sh\n"))) {
		t.Fatalf("file: %s %v", k, err)
	}
	if k2, _ := ProviderKey(k); k2 != k {
		t.Fatal("a key is its own key")
	}
	if _, err := ProviderKey("nope"); err == nil {
		t.Fatal("unknown ref accepted")
	}
}

// Entry providers (the HTTP server) start after the providers actors call;
// otherwise the manifest's order stays.
func TestStartOrderPutsEntryProvidersLast(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"http first", []string{"builtin:httpserver", "builtin:keyvalue"}, []string{"builtin:keyvalue", "builtin:httpserver"}},
		{"already last", []string{"builtin:keyvalue", "builtin:httpserver"}, []string{"builtin:keyvalue", "builtin:httpserver"}},
		{"files keep their order", []string{"file:///b", "builtin:httpserver", "file:///a"}, []string{"file:///b", "file:///a", "builtin:httpserver"}},
		{"a file named like a built-in is no built-in", []string{"file:///x/httpserver", "file:///y"}, []string{"file:///x/httpserver", "file:///y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps []Provider
			for _, ref := range tc.in {
				ps = append(ps, Provider{Ref: ref})
			}
			var got []string
			for _, p := range startOrder(ps) {
				got = append(got, p.Ref)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("startOrder(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// The digest that ties a link outcome to a put ignores map order and
// tells apart values that concatenate alike.
func TestLinkValuesDigest(t *testing.T) {
	a := lattice.LinkValuesDigest(map[string]string{"a": "1", "b": "2"})
	if b := lattice.LinkValuesDigest(map[string]string{"b": "2", "a": "1"}); a != b {
		t.Errorf("order changes the digest: %s vs %s", a, b)
	}
	if lattice.LinkValuesDigest(map[string]string{"ab": "c"}) == lattice.LinkValuesDigest(map[string]string{"a": "bc"}) {
		t.Error("different values, same digest")
	}
	if lattice.LinkValuesDigest(nil) != lattice.LinkValuesDigest(map[string]string{}) {
		t.Error("nil and empty values differ")
	}
}

// apply pulls an image to read its claims only when an image of the same
// repository runs under another tag or digest: the repository must be
// told apart from the tag, also behind a registry port.
func TestSameRepositoryRuns(t *testing.T) {
	running := []*lattice.HostInventory{{HostID: "N1", Actors: []lattice.ActorDescription{
		{ID: "M1", ImageRef: "127.0.0.1:5000/team/echo:0.1.0"},
		{ID: "M2", ImageRef: "file:///srv/actors/kv.wasm"},
		{ID: "M3", ImageRef: "Registry.example.com/Counter@sha256:abc"},
	}}}
	for _, c := range []struct {
		ref  string
		want bool
	}{
		{"127.0.0.1:5000/team/echo:0.2.0", true},
		{"127.0.0.1:5000/team/echo", true},             // no tag: latest
		{"127.0.0.1:5000/team/echo@sha256:def", true},  // a digest
		{"127.0.0.1:5000/team/echo:0.1.0", false},      // the running reference itself
		{"127.0.0.1:5001/team/echo:0.2.0", false},      // another registry
		{"127.0.0.1:5000/team/echo-next:0.2.0", false}, // another repository
		{"registry.example.com/counter:1.0.0", true},   // case does not matter
		{"127.0.0.1:5000/team/kv:0.1.0", false},        // a file is no repository
	} {
		if got := sameRepositoryRuns(running, c.ref); got != c.want {
			t.Errorf("sameRepositoryRuns(%q) = %v, want %v", c.ref, got, c.want)
		}
	}
}

package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// TestOutputJSONEnvelopes runs each command with -o json against a real host
// on a real NATS server and checks it prints the envelope wash prints: on
// success one object on stdout, the command's keys (docs/operations.md,
// "JSON output") plus "success": true; on failure {"success": false, "error"}
// alone on stderr, nothing on stdout, and a non-zero exit status. The rows
// run in order: each acts on what the rows before it did.
func TestOutputJSONEnvelopes(t *testing.T) {
	h, e := oneHostLattice(t, "envelopetest", nil)
	dir := t.TempDir()
	echo := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{
		Name: "echo", CallAlias: "echo", Caps: []string{wire.ContractHTTPServer},
	})
	prov, _ := trust.CreateKeyPair(lattice.KindService)
	notRunning, _ := trust.CreateKeyPair(lattice.KindModule)
	providerBin := filepath.Join(dir, "provider")
	writeSecretFile(t, providerBin, "#!/bin/sh\n")
	parPath := filepath.Join(dir, "p.par.gz")
	// The actor starts; the provider cannot (a test host runs none).
	manifestPath := filepath.Join(dir, "m.yaml")
	writeSecretFile(t, manifestPath, "actors:\n  - ref: file://"+echo.Path+"\n    count: 1\nproviders:\n  - ref: builtin:httpserver\n")

	// field decodes one key of an envelope.
	field := func(t *testing.T, fields map[string]json.RawMessage, key string, out any) {
		t.Helper()
		if err := json.Unmarshal(fields[key], out); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
	}
	str := func(t *testing.T, fields map[string]json.RawMessage, key string) string {
		t.Helper()
		var v string
		field(t, fields, key, &v)
		return v
	}

	tests := []struct {
		name string
		args []string
		// keys are the envelope's keys besides "success", all of them
		// unless atLeast.
		keys    []string
		atLeast bool
		// check looks at the envelope's values (the error envelope's, for
		// a failure).
		check func(t *testing.T, fields map[string]json.RawMessage)
		// For a failure: the exit status and part of the error message.
		code    int
		wantErr string
	}{
		{name: "get hosts", args: []string{"ctl", "get", "hosts", "--timeout", "1s"}, keys: []string{"hosts"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				var hosts []lattice.HostInfo
				field(t, f, "hosts", &hosts)
				if len(hosts) != 1 || hosts[0].ID != h.ID() {
					t.Errorf("hosts %+v, want %s", hosts, h.ID())
				}
			}},
		{name: "start actor", args: []string{"ctl", "start", "actor", "file://" + echo.Path, "--host-id", h.ID()},
			keys: []string{"result", "actor_id", "actor_ref", "host_id", "count"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				if str(t, f, "actor_id") != echo.Key || str(t, f, "host_id") != h.ID() || str(t, f, "actor_ref") != "file://"+echo.Path {
					t.Errorf("start actor: %s", f)
				}
			}},
		{name: "scale actor", args: []string{"ctl", "scale", "actor", echo.Key, "2", "--host-id", h.ID()},
			keys: []string{"result", "actor_id", "host_id", "count"}},
		{name: "get inventory", args: []string{"ctl", "get", "inventory", h.ID()}, keys: []string{"inventory"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				var inv lattice.HostInventory
				field(t, f, "inventory", &inv)
				if inv.HostID != h.ID() || len(inv.Actors) != 1 || inv.Actors[0].ID != echo.Key {
					t.Errorf("inventory %+v", inv)
				}
			}},
		{name: "get claims", args: []string{"ctl", "get", "claims"}, keys: []string{"claims"}},
		{name: "link put", args: []string{"ctl", "link", "put", echo.Key, prov.PublicKey(), wire.ContractHTTPServer, "PORT=8080"},
			keys: []string{"id", "actor_id", "provider_id", "contract_id", "link_name", "values"}},
		{name: "link query", args: []string{"ctl", "link", "query"}, keys: []string{"links"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				var links []lattice.LinkDefinition
				field(t, f, "links", &links)
				if len(links) != 1 || links[0].ProviderID != prov.PublicKey() {
					t.Errorf("links %+v", links)
				}
			}},
		{name: "get links", args: []string{"ctl", "get", "links"}, keys: []string{"links"}},
		{name: "link del", args: []string{"ctl", "link", "del", echo.Key, wire.ContractHTTPServer},
			keys: []string{"id", "actor_id", "contract_id", "link_name"}},
		{name: "label put", args: []string{"ctl", "label", "put", h.ID(), "tier=gold"}, keys: []string{"result", "host_id", "key", "value"}},
		{name: "label del", args: []string{"ctl", "label", "del", h.ID(), "tier"}, keys: []string{"result", "host_id", "key"}},
		{name: "call", args: []string{"ctl", "call", "echo", "Echo.Echo", "--data", `"<hi>"`}, keys: []string{"response"},
			check: func(t *testing.T, f map[string]json.RawMessage) {
				// The reply as it is: "<" not escaped as \u003c.
				if got := string(f["response"]); got != `"<hi>"` {
					t.Errorf("response %s, want \"<hi>\"", got)
				}
			}},
		{name: "stop actor", args: []string{"ctl", "stop", "actor", echo.Key, "--host-id", h.ID()},
			keys: []string{"result", "actor_id", "host_id", "count"}},
		{name: "claims inspect", args: []string{"claims", "inspect", echo.Path},
			keys: []string{"account", "module", "actor", "expires", "can_be_used", "version", "revision", "capabilities", "tags", "call_alias", "name", "claims"}},
		{name: "claims inspect --jwt-only", args: []string{"claims", "inspect", echo.Path, "--jwt-only"}, keys: []string{"jwt"}},
		{name: "keys gen", args: []string{"keys", "gen", "module"}, keys: []string{"public_key", "seed"}},
		{name: "par create", args: []string{"par", "create", "--capid", "wasmcloud:test", "--name", "T", "--vendor", "acme", "--revision", "1",
			"--arch", "x86_64-linux", "--binary", providerBin, "--destination", parPath},
			keys: []string{"service", "issuer", "name", "capability_contract_id", "vendor", "revision", "targets", "file"}, atLeast: true},
		{name: "par inspect", args: []string{"par", "inspect", parPath},
			keys: []string{"service", "issuer", "name", "capability_contract_id", "vendor", "revision", "targets"}, atLeast: true},
		{name: "version", args: []string{"version"}, keys: []string{"version"}},

		// Failures: wash's error envelope on stderr, exit status as in text.
		{name: "operation failure", args: []string{"ctl", "stop", "actor", notRunning.PublicKey(), "--timeout", "300ms"},
			code: exitFailure, wantErr: "not running on any host"},
		{name: "host refuses", args: []string{"ctl", "start", "provider", "builtin:httpserver", "--host-id", h.ID()},
			code: exitFailure, wantErr: "cannot manage providers"},
		{name: "usage error", args: []string{"ctl", "get", "hosts", "--timeout", "0s"},
			code: exitUsage, wantErr: "--timeout must be positive"},
		{name: "unknown flag", args: []string{"ctl", "get", "hosts", "--bogus"},
			code: exitUsage, wantErr: "unknown flag: --bogus"},
		{name: "apply, a step fails", args: []string{"apply", manifestPath, "--timeout", "2s"},
			code: exitFailure, wantErr: "provider builtin:httpserver",
			check: func(t *testing.T, f map[string]json.RawMessage) {
				var steps []struct {
					Kind string `json:"kind"`
					Key  string `json:"key"`
				}
				field(t, f, "steps", &steps)
				if len(steps) != 1 || steps[0].Kind != "actor" || steps[0].Key != echo.Key {
					t.Errorf("the error envelope's steps %+v, want the actor's", steps)
				}
			}},
		{name: "call --raw", args: []string{"ctl", "call", "echo", "Echo.Echo", "--raw"},
			code: exitUsage, wantErr: "--raw writes the reply as it is; it cannot be combined with --output json"},

		// Last: the host stops.
		{name: "stop host", args: []string{"ctl", "stop", "host", h.ID()}, keys: []string{"result", "host_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// -o right after the command, before any flag that may fail.
			args := append([]string{tt.args[0], "-o", "json"}, tt.args[1:]...)
			r := e.run(args...)
			if tt.wantErr != "" {
				r.want(t, tt.code)
				if msg := errorEnvelope(t, r); !strings.Contains(msg, tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", msg, tt.wantErr)
				}
				if tt.check != nil {
					var fields map[string]json.RawMessage
					if err := json.Unmarshal([]byte(r.stderr), &fields); err != nil {
						t.Fatal(err)
					}
					tt.check(t, fields)
				}
				return
			}
			r.want(t, exitOK)
			var fields map[string]json.RawMessage
			decodeEnvelope(t, r.stdout, "", &fields)
			var got []string
			for k := range fields {
				if k != envelopeSuccess {
					got = append(got, k)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.keys))
			if tt.atLeast {
				for _, k := range want {
					if _, ok := fields[k]; !ok {
						t.Errorf("keys %v lack %q", got, k)
					}
				}
			} else if !slices.Equal(got, want) {
				t.Errorf("keys %v, want %v:\n%s", got, want, r.stdout)
			}
			if tt.check != nil {
				tt.check(t, fields)
			}
		})
	}
}

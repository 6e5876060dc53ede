// Package builtin owns the table of capability providers compiled into the
// latticed binary: for each, its name, contract, constructor and help text,
// and the key and reference derived from the name. Everything that starts,
// names or links a built-in (the `latticed provider` commands, the
// supervisor, manifests, tests) looks it up here by name.
//
// Each provider's implementation lives in its own package below this one
// (httpserver, keyvalue).
package builtin

import (
	"fmt"
	"strings"

	"github.com/latticed/latticed/internal/builtin/httpserver"
	"github.com/latticed/latticed/internal/builtin/keyvalue"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/provider"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// RefPrefix marks a provider reference to a provider compiled into latticed.
const RefPrefix = "builtin:"

// Provider is a provider that ships inside the latticed binary.
type Provider struct {
	Name     string // e.g. "httpserver": `latticed provider <Name>`
	Contract string
	// New makes the capability `latticed provider <Name>` serves, counting
	// into m (the provider process's registry; nil counts nothing).
	New func(m *metrics.Metrics) provider.Capability
	// About is what `latticed provider <Name> --help` says of the provider.
	About string
}

// providers is the table, in the order help texts list them.
var providers = []Provider{
	{Name: "httpserver", Contract: wire.ContractHTTPServer,
		New: func(m *metrics.Metrics) provider.Capability { return httpserver.New(m) },
		About: `Each link to an actor opens one HTTP listener; every request becomes an
HttpServer.HandleRequest invocation of the actor. Link values (keys in any
case): address (host:port), else port (on 127.0.0.1), else 127.0.0.1:8000;
max_content_len (bytes, or with suffix k/m/g; default 1m; larger bodies get
413); timeout_ms (default: the host's RPC timeout; then 504);
config_json/config_b64 as wasmCloud's httpserver takes them.`},
	{Name: "keyvalue", Contract: wire.ContractKeyValue,
		New: func(m *metrics.Metrics) provider.Capability { return keyvalue.New(m) },
		About: `Every KeyValue operation is served from a NATS JetStream key-value bucket
(file storage) on the lattice's NATS server: link value "bucket" names it,
else LATTICED_KV_{prefix}_{link name}. Set with expiry needs nats-server
2.11+. Under latticed the supervisor creates each link's bucket and grants
the provider's NATS user entry access to it only; elsewhere the provider
creates a missing bucket if its user may.`},
}

// All returns every built-in provider, in a stable order.
func All() []Provider { return append([]Provider(nil), providers...) }

// Lookup resolves "builtin:<name>" (or a bare name) to a built-in provider.
func Lookup(ref string) (Provider, bool) {
	name := strings.TrimPrefix(ref, RefPrefix)
	for _, b := range providers {
		if b.Name == name {
			return b, true
		}
	}
	return Provider{}, false
}

// LookupRef is Lookup for provider references: only "builtin:<name>"
// names a built-in (a bare name in a manifest is a file path).
func LookupRef(ref string) (Provider, bool) {
	if !strings.HasPrefix(ref, RefPrefix) {
		return Provider{}, false
	}
	return Lookup(ref)
}

// CheckRef refuses a "builtin:<name>" reference to no built-in, and lists
// the ones there are (a typo would otherwise be reported as a missing file);
// other references are nil, checked where they are used.
func CheckRef(ref string) error {
	if !strings.HasPrefix(ref, RefPrefix) {
		return nil
	}
	if _, ok := LookupRef(ref); !ok {
		return fmt.Errorf("%q is no built-in provider: the built-ins are %s", ref, Refs())
	}
	return nil
}

// Refs lists the references of every built-in ("builtin:httpserver, …"), for
// messages that say what exists.
func Refs() string {
	refs := make([]string, len(providers))
	for i, b := range providers {
		refs[i] = b.Ref()
	}
	return strings.Join(refs, ", ")
}

// Key is the built-in provider's public key (V…). It is derived from the name
// alone, so it is the same on every node and a link made once works
// lattice-wide; the key signs nothing (trust.DerivedServiceKey).
func (b Provider) Key() string { return trust.DerivedServiceKey("latticed builtin provider " + b.Name) }

// Ref is the provider's reference, "builtin:<name>".
func (b Provider) Ref() string { return RefPrefix + b.Name }

// String names the provider for messages.
func (b Provider) String() string { return fmt.Sprintf("%s (%s)", b.Ref(), b.Contract) }

// Package manifest reads a declarative lattice manifest (actors with counts,
// providers with link names and config, link definitions) and applies it
// through the control interface, idempotently: applying twice changes nothing.
// `latticed apply`, `latticed up --apply` and the bench share it; it speaks
// to a lattice only through ctlclient, so it works against any host.
package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/par"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// Manifest is the file's content.
type Manifest struct {
	Actors    []Actor    `yaml:"actors"`
	Providers []Provider `yaml:"providers"`
	Links     []Link     `yaml:"links"`
}

// Actor is an actor to run with Count instances (default 1).
type Actor struct {
	Ref         string            `yaml:"ref"`
	Count       int               `yaml:"count"`
	Constraints map[string]string `yaml:"constraints"`
}

// Provider is a provider instance to run.
type Provider struct {
	Ref         string            `yaml:"ref"`
	LinkName    string            `yaml:"link_name"`
	Config      string            `yaml:"config"`
	Constraints map[string]string `yaml:"constraints"`
}

// Link is a link definition. Actor and Provider may name a key, or a ref
// listed in this manifest (and an actor also its call alias).
type Link struct {
	Actor    string            `yaml:"actor"`
	Provider string            `yaml:"provider"`
	Contract string            `yaml:"contract"`
	LinkName string            `yaml:"link_name"`
	Values   map[string]string `yaml:"values"`
}

// Load parses the manifest at path. Relative file references are resolved
// against the manifest's directory; unknown fields are errors (typos).
func Load(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := decode(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var problems []error
	// Apply reads what runs once, before its first step: a second entry for
	// the same item would start it a second time.
	actorAt := map[string]int{}
	for i := range m.Actors {
		a := &m.Actors[i]
		a.Ref = absRef(base, a.Ref)
		if a.Ref == "" {
			problems = append(problems, fmt.Errorf("actors[%d]: ref is required", i))
		} else if j, dup := actorAt[a.Ref]; dup {
			problems = append(problems, fmt.Errorf("actors[%d]: %s is listed already as actors[%d]: give one entry its total count", i, a.Ref, j))
		} else {
			actorAt[a.Ref] = i
		}
		if a.Count == 0 {
			a.Count = 1
		}
		if a.Count < 0 {
			problems = append(problems, fmt.Errorf("actors[%d]: count %d must be positive", i, a.Count))
		}
	}
	providerAt := map[providerLink]int{}
	for i := range m.Providers {
		p := &m.Providers[i]
		if err := builtin.CheckRef(p.Ref); err != nil {
			problems = append(problems, fmt.Errorf("providers[%d]: %w", i, err))
		}
		if _, isBuiltin := builtin.LookupRef(p.Ref); !isBuiltin {
			p.Ref = absRef(base, p.Ref)
		}
		if p.Ref == "" {
			problems = append(problems, fmt.Errorf("providers[%d]: ref is required", i))
		}
		if p.LinkName == "" {
			p.LinkName = "default"
		}
		if j, dup := providerAt[providerLink{p.Ref, p.LinkName}]; dup && p.Ref != "" {
			problems = append(problems, fmt.Errorf("providers[%d]: %s on link name %s is listed already as providers[%d]: one instance runs per link name", i, p.Ref, p.LinkName, j))
		} else {
			providerAt[providerLink{p.Ref, p.LinkName}] = i
		}
	}
	for i := range m.Links {
		l := &m.Links[i]
		// A link may name an actor or provider by the ref it is listed under.
		l.Actor = absRef(base, l.Actor)
		if !strings.HasPrefix(l.Provider, builtin.RefPrefix) {
			l.Provider = absRef(base, l.Provider)
		} else if err := builtin.CheckRef(l.Provider); err != nil {
			problems = append(problems, fmt.Errorf("links[%d]: provider: %w", i, err))
		}
		if l.LinkName == "" {
			l.LinkName = "default"
		}
		if l.Actor == "" || l.Provider == "" || l.Contract == "" {
			problems = append(problems, fmt.Errorf("links[%d]: actor, provider and contract are required", i))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return &m, nil
}

// absRef turns a relative file path into a file:// URL; other refs pass.
func absRef(base, ref string) string {
	path, isFile := strings.CutPrefix(ref, "file://")
	if !isFile && !strings.HasSuffix(ref, ".wasm") && !strings.HasPrefix(ref, "./") && !strings.HasPrefix(ref, "../") && !filepath.IsAbs(ref) {
		return ref
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(base, path)
	}
	return "file://" + path
}

// Step is one thing Apply did or found already done.
type Step struct {
	Kind   string `json:"kind"` // actor, provider, link
	Ref    string `json:"ref"`
	Key    string `json:"key,omitempty"`
	HostID string `json:"host_id,omitempty"`
	Action string `json:"action"` // started, updated, scaled, unchanged, put, failed
	// Reason says why an item failed (a link its provider refused, e.g.
	// its port is taken), or why a put link could not be confirmed.
	Reason string `json:"reason,omitempty"`
}

// ErrLinkRefused means a provider refused a link of the manifest (the
// provider's own reason is in the error and in the link's Step).
var ErrLinkRefused = errors.New("link refused by its provider")

// Apply makes the lattice match m: actors run with their counts, links exist,
// providers run. Links go before providers so that a provider this manifest
// starts receives them in its HostData. Then each link's outcome is taken
// from the provider that received it (latticed providers report it): a link
// the provider refused is a "failed" step with the provider's reason, and
// Apply returns an error wrapping ErrLinkRefused naming every such link.
//
// What already runs is read once, from the inventories of the hosts that
// answer a ping within window, before the first step: a lookup per actor
// and per provider waited the window out each time (8 s of `latticed up
// --apply` on the demo manifest). An item another client starts while
// Apply runs is not seen, as it was not between a lookup and its start.
//
// claims reads the claims of an actor's module where this machine can
// (nil: file references only, FileClaims), so that an actor whose module
// changed (a rebuilt file, a new tag of an image) is found by its key and
// live-updated.
func Apply(ctx context.Context, c *ctlclient.Client, m *Manifest, window time.Duration, claims ActorClaims) ([]Step, error) {
	if claims == nil {
		claims = FileClaims
	}
	var steps []Step
	running, err := c.Inventories(ctx, window)
	if err != nil {
		return nil, fmt.Errorf("read what runs in the lattice: %w", err)
	}
	actorKeys := map[string]string{} // ref -> key
	for _, a := range m.Actors {
		st, err := applyActor(ctx, c, a, claims, running, window)
		if err != nil {
			return steps, fmt.Errorf("actor %s: %w", a.Ref, err)
		}
		actorKeys[a.Ref] = st.Key
		steps = append(steps, st)
	}
	providerKeys := map[string]string{}
	var puts []putLink
	for _, p := range m.Providers {
		key, err := ProviderKey(p.Ref)
		if err != nil {
			return steps, fmt.Errorf("provider %s: %w", p.Ref, err)
		}
		providerKeys[p.Ref] = key
	}
	for _, l := range m.Links {
		actor, ok := actorKeys[l.Actor]
		if !ok {
			var err error
			if actor, err = c.ResolveActor(ctx, l.Actor); err != nil {
				return steps, fmt.Errorf("link %s → %s: %w", l.Actor, l.Provider, err)
			}
		}
		provider, ok := providerKeys[l.Provider]
		if !ok {
			var err error
			if provider, err = ProviderKey(l.Provider); err != nil {
				return steps, fmt.Errorf("link %s → %s: %w", l.Actor, l.Provider, err)
			}
		}
		ld := lattice.LinkDefinition{ActorID: actor, ProviderID: provider, ContractID: l.Contract, LinkName: l.LinkName, Values: l.Values}
		if err := c.PutLink(ctx, ld); err != nil {
			return steps, fmt.Errorf("link %s → %s: %w", l.Actor, l.Provider, err)
		}
		puts = append(puts, putLink{ld: ld, step: len(steps), name: l.Actor + " → " + l.Provider})
		steps = append(steps, Step{Kind: "link", Ref: l.Contract + "/" + l.LinkName, Key: actor, Action: "put"})
	}
	// Where each provider of the manifest runs (found or started above):
	// the link outcomes are read there, without a second lookup.
	providerHost := map[providerLink]string{}
	for _, p := range startOrder(m.Providers) {
		st, err := applyProvider(ctx, c, p, providerKeys[p.Ref], running, window)
		if err != nil {
			return steps, fmt.Errorf("provider %s: %w", p.Ref, err)
		}
		steps = append(steps, st)
		providerHost[providerLink{st.Key, p.LinkName}] = st.HostID
	}
	var refused []error
	for _, pl := range puts {
		st := &steps[pl.step]
		host, applied, reason, err := linkOutcome(ctx, c, pl.ld, providerHost[providerLink{pl.ld.ProviderID, pl.ld.LinkName}], window)
		if err != nil {
			return steps, fmt.Errorf("link %s: %w", pl.name, err)
		}
		st.HostID, st.Reason = host, reason
		if !applied {
			st.Action = "failed"
			refused = append(refused, fmt.Errorf("%w: link %s (%s) on host %s: %s", ErrLinkRefused, pl.name, st.Ref, host, reason))
		}
	}
	return steps, errors.Join(refused...)
}

// startOrder is the order providers start in: entry providers (an HTTP
// server: they invoke actors on outside requests) after the others, so
// that on a node start the providers the actors call already run when the
// first request comes in. Otherwise the manifest's order is kept.
func startOrder(ps []Provider) []Provider {
	entry := func(p Provider) bool {
		b, ok := builtin.LookupRef(p.Ref)
		return ok && wire.EntryContract(b.Contract)
	}
	out := make([]Provider, 0, len(ps))
	for _, p := range ps {
		if !entry(p) {
			out = append(out, p)
		}
	}
	for _, p := range ps {
		if entry(p) {
			out = append(out, p)
		}
	}
	return out
}

// providerLink names a provider instance in a lattice: its key and link name.
type providerLink struct{ key, linkName string }

// putLink is a link Apply put, and where its Step is.
type putLink struct {
	ld   lattice.LinkDefinition
	step int
	name string
}

// LinkOutcomeTimeout bounds how long Apply waits for a running provider to
// report what it made of a link (the supervisor checks within a second of
// sending it one).
var LinkOutcomeTimeout = 30 * time.Second

// linkOutcome waits until the provider instance the link is for reports
// what it made of it, and returns the instance's host, whether the link
// was applied, and the provider's reason if not. host is where Apply found
// or started the provider; "" looks it up, and the first host that runs it
// ends the lookup (any of them reports the outcome; waiting out the window
// cost every link of `latticed up --apply` its whole length). A link whose
// provider runs nowhere, or does not report link outcomes (a wasmCloud host
// or provider), counts as applied, with reason saying it could not be
// confirmed.
func linkOutcome(ctx context.Context, c *ctlclient.Client, ld lattice.LinkDefinition, host string, window time.Duration) (_ string, applied bool, reason string, err error) {
	if host == "" {
		if host, err = c.FindProviderHost(ctx, ld.ProviderID, ld.LinkName, window); err != nil {
			return "", false, "", err
		}
	}
	if host == "" {
		return "", true, "no instance of the provider runs: it receives the link when it starts", nil
	}
	digest := lattice.LinkValuesDigest(ld.Values)
	ctx, cancel := context.WithTimeout(ctx, LinkOutcomeTimeout)
	defer cancel()
	for {
		inv, err := c.Inventory(ctx, host)
		if err == nil {
			for _, d := range inv.Providers {
				if d.ID != ld.ProviderID || d.LinkName != ld.LinkName {
					continue
				}
				// A running instance reported in its first health reply
				// whether it reports links; a wasmCloud host lists no state.
				if !d.ReportsLinks && (d.State == "" || d.State == "running") {
					return host, true, "the provider does not report link outcomes", nil
				}
				for _, o := range d.Links {
					if o.ActorID == ld.ActorID && o.ValuesDigest == digest {
						return host, o.Error == "", o.Error, nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return host, false, "", fmt.Errorf("provider %s (link name %s) on host %s did not report the link's outcome within %s",
				ld.ProviderID, ld.LinkName, host, LinkOutcomeTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// applyActor scales the actor where running lists it, else auctions and
// starts it. A running actor is found by the manifest's reference, or by
// the key its module claims; when that module claims a higher revision
// than the running one, the actor is live-updated to it first (a rebuilt
// actor at the same path, a new tag of its image). A module of the same or
// a lower revision under another reference is left as it runs, and the
// step says why: a host live-updates only to a higher revision, as
// wasmCloud's does.
//
// The claims are read only where they can change the outcome, since
// reading an image's means pulling it: a file's always (it may have been
// rebuilt in place), an image's only when the actor is not found by its
// reference and an image of the same repository runs (another tag or
// digest). So `up --apply` does not pull every image twice, once here and
// once on the host that starts it.
func applyActor(ctx context.Context, c *ctlclient.Client, a Actor, claims ActorClaims, running []*lattice.HostInventory, window time.Duration) (Step, error) {
	var local *trust.ActorClaims
	inv, d := runningActor(running, func(d *lattice.ActorDescription) bool { return d.ImageRef == a.Ref || d.ID == a.Ref })
	switch {
	case d != nil:
		local = FileClaims(ctx, a.Ref)
	case strings.HasPrefix(a.Ref, "file://") || sameRepositoryRuns(running, a.Ref):
		if local = claims(ctx, a.Ref); local != nil {
			inv, d = runningActor(running, func(d *lattice.ActorDescription) bool { return d.ID == local.Subject })
		}
	}
	if d != nil {
		st := Step{Kind: "actor", Ref: a.Ref, Key: d.ID, HostID: inv.HostID, Action: "unchanged"}
		if local != nil && d.ID == local.Subject {
			switch rev, was := trust.ActorRevision(local), runningRevision(*d); {
			case rev > was:
				if err := c.UpdateActor(ctx, inv.HostID, d.ID, a.Ref); err != nil {
					return st, err
				}
				st.Action, st.Reason = "updated", fmt.Sprintf("revision %d, was %d", rev, was)
			case d.ImageRef != a.Ref && d.ID != a.Ref:
				st.Reason = fmt.Sprintf("runs from %s at revision %d; this module is revision %d, and a live update needs a higher one (stop the actor and apply again to run it)",
					d.ImageRef, was, rev)
			}
		}
		if len(d.Instances) != a.Count {
			if err := c.ScaleActor(ctx, inv.HostID, lattice.ScaleActorCommand{ActorID: d.ID, ActorRef: a.Ref, Count: a.Count}); err != nil {
				return st, err
			}
			if st.Action == "updated" {
				st.Reason += fmt.Sprintf("; scaled to %d", a.Count)
			} else {
				st.Action = "scaled"
			}
		}
		return st, nil
	}
	host, err := c.AuctionActor(ctx, a.Ref, a.Constraints, window)
	if err != nil {
		return Step{}, err
	}
	started, err := c.StartActor(ctx, host, lattice.StartActorCommand{ActorRef: a.Ref, Count: a.Count, HostID: host})
	if err != nil {
		return Step{}, err
	}
	return Step{Kind: "actor", Ref: a.Ref, Key: started.ActorID, HostID: host, Action: "started"}, nil
}

// ActorClaims returns the verified claims of the actor module at ref, or
// nil when this machine cannot read or verify it (the host that starts it
// says why).
type ActorClaims func(ctx context.Context, ref string) *trust.ActorClaims

// FileClaims is ActorClaims for file references; it returns nil for any
// other.
func FileClaims(_ context.Context, ref string) *trust.ActorClaims {
	path, ok := strings.CutPrefix(ref, "file://")
	if !ok {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	claims, err := trust.VerifyActor(data, time.Now())
	if err != nil {
		return nil
	}
	return claims
}

// runningActor is the first actor of running that match selects, with the
// inventory of its host; nil when none does.
func runningActor(running []*lattice.HostInventory, match func(*lattice.ActorDescription) bool) (*lattice.HostInventory, *lattice.ActorDescription) {
	for _, inv := range running {
		for i := range inv.Actors {
			if match(&inv.Actors[i]) {
				return inv, &inv.Actors[i]
			}
		}
	}
	return nil, nil
}

// sameRepositoryRuns reports whether an actor of running comes from an
// image of ref's repository under another tag or digest.
func sameRepositoryRuns(running []*lattice.HostInventory, ref string) bool {
	repo := imageRepository(ref)
	_, d := runningActor(running, func(d *lattice.ActorDescription) bool {
		return d.ImageRef != ref && imageRepository(d.ImageRef) == repo
	})
	return d != nil
}

// imageRepository is an image reference without its tag or digest
// (registry:port/path/name), lower-cased as pulls treat it.
func imageRepository(ref string) string {
	ref, _, _ = strings.Cut(strings.ToLower(ref), "@")
	if slash := strings.LastIndexByte(ref, '/'); slash >= 0 {
		if colon := strings.LastIndexByte(ref[slash:], ':'); colon >= 0 {
			ref = ref[:slash+colon]
		}
	}
	return ref
}

// runningRevision is the highest revision among an actor's instances.
func runningRevision(d lattice.ActorDescription) int32 {
	var rev int32
	for _, in := range d.Instances {
		rev = max(rev, in.Revision)
	}
	return rev
}

// applyProvider leaves the provider where running lists it on its link
// name, else auctions and launches it and waits until it runs.
func applyProvider(ctx context.Context, c *ctlclient.Client, p Provider, key string, running []*lattice.HostInventory, window time.Duration) (Step, error) {
	st := Step{Kind: "provider", Ref: p.Ref, Key: key}
	for _, inv := range running {
		if slices.ContainsFunc(inv.Providers, func(d lattice.ProviderDescription) bool {
			return (d.ID == key || d.ImageRef == key) && d.LinkName == p.LinkName
		}) {
			st.HostID, st.Action = inv.HostID, "unchanged"
			return st, nil
		}
	}
	host, err := c.AuctionProvider(ctx, p.Ref, p.LinkName, p.Constraints, window)
	if err != nil {
		return st, err
	}
	if err := c.StartProvider(ctx, host, lattice.LaunchProviderCommand{ProviderRef: p.Ref, LinkName: p.LinkName, Configuration: p.Config}); err != nil {
		return st, err
	}
	st.HostID = host
	// The launch was accepted; "started" means it runs: wait for it.
	if err := waitProviderRunning(ctx, c, host, key, p.LinkName); err != nil {
		return st, err
	}
	st.Action = "started"
	return st, nil
}

// ProviderStartTimeout bounds how long Apply waits for a provider it
// launched to run (latticed's supervisor gives a new provider 30 s to pass
// its first health check).
var ProviderStartTimeout = 45 * time.Second

// waitProviderRunning polls the host's inventory until the provider runs
// (a host without the latticed state extension: once it is listed), and
// fails at once when it ended failed or revoked.
func waitProviderRunning(ctx context.Context, c *ctlclient.Client, host, key, linkName string) error {
	ctx, cancel := context.WithTimeout(ctx, ProviderStartTimeout)
	defer cancel()
	last := "not listed"
	for {
		inv, err := c.Inventory(ctx, host)
		if err == nil {
			for _, d := range inv.Providers {
				if d.ID != key || d.LinkName != linkName {
					continue
				}
				switch d.State {
				case "", "running":
					return nil
				case "failed", "revoked":
					return fmt.Errorf("provider %s (link name %s) %s: %s", key, linkName, d.State, d.ExitReason)
				}
				last = d.State
				if d.ExitReason != "" {
					last += " (" + d.ExitReason + ")"
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provider %s (link name %s) not running after %s: %s", key, linkName, ProviderStartTimeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// decode parses a manifest strictly (unknown fields are errors), with
// messages a person can act on: an empty file says what it should hold, and
// a syntax error shows the lines it is about. yaml.v3 reports a scanner
// error at the line of its context, often the line before the fault (a tab
// on line 3 is "line 2"), so the excerpt shows that line and the next, and
// a tab in the indentation, the commonest case, is found and named exactly.
func decode(data []byte, m *Manifest) error {
	if len(strings.TrimSpace(stripComments(string(data)))) == 0 {
		return errors.New("the file is empty: a manifest lists actors, providers and/or links (see `latticed apply --help` for an example)")
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]; strings.Contains(indent, "\t") {
			return fmt.Errorf("line %d: indented with a tab; YAML indents with spaces only", i+1)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(m)
	if err == nil {
		return nil
	}
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr != nil || line < 1 || line > len(lines) {
		return err // a type error: yaml.v3 names the right line
	}
	excerpt := fmt.Sprintf("\n  %4d | %s", line, lines[line-1])
	if line < len(lines) && strings.TrimSpace(lines[line]) != "" {
		excerpt += fmt.Sprintf("\n  %4d | %s", line+1, lines[line])
	}
	return fmt.Errorf("%w (the fault is on one of these lines):%s", err, excerpt)
}

// stripComments drops YAML comment lines, so a file of only comments counts
// as empty.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// ProviderKey is the public key a provider reference stands for: a key
// itself, a built-in's fixed key, or the key derived from an executable's bytes.
func ProviderKey(ref string) (string, error) {
	if lattice.IsPublicKey(ref, lattice.KindService) {
		return ref, nil
	}
	if b, ok := builtin.LookupRef(ref); ok {
		return b.Key(), nil
	}
	path, _ := strings.CutPrefix(ref, "file://")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("not a provider key, builtin:<name> or readable executable: %w", err)
	}
	if strings.HasSuffix(path, ".par.gz") || strings.HasSuffix(path, ".par") {
		a, err := par.Read(data) // a provider archive: its claims name the key
		if err != nil {
			return "", err
		}
		return a.Claims.Subject, nil
	}
	return trust.FileProviderKey(sha256.Sum256(data)), nil
}

package host

import (
	"sort"
	"sync"

	"github.com/latticed/latticed/lattice"
)

// latticeState is what this host knows of the lattice: claims (and call
// aliases) and link definitions. It is safe for concurrent use.
type latticeState struct {
	mu      sync.RWMutex
	claims  map[string]lattice.CachedClaims
	aliases map[string]string // call alias -> actor key
	links   map[string]lattice.LinkDefinition
	// targets finds a link by what a host call names (actor, contract, link
	// name) without hashing the three into its id on every call. It holds
	// only links whose id is lattice.LinkID of their own fields (every
	// normalized link): exactly those a lookup by that id finds.
	targets map[linkTarget]string
	refmaps map[string]string // artifact reference -> public key
}

func newLatticeState() *latticeState {
	return &latticeState{claims: map[string]lattice.CachedClaims{}, aliases: map[string]string{}, links: map[string]lattice.LinkDefinition{}, targets: map[linkTarget]string{}, refmaps: map[string]string{}}
}

func (s *latticeState) putClaims(c lattice.CachedClaims) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims[c.Subject] = c
	// First writer wins, and one-character aliases are ignored, as in wasmCloud.
	if len(c.CallAlias) > 1 {
		if _, taken := s.aliases[c.CallAlias]; !taken {
			s.aliases[c.CallAlias] = c.Subject
		}
	}
}

func (s *latticeState) resolveAlias(alias string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.aliases[alias]
	return k, ok
}

func (s *latticeState) allClaims() []lattice.CachedClaims {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]lattice.CachedClaims, 0, len(s.claims))
	for _, c := range s.claims {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out
}

// linkTarget is what an actor's host call names to reach a link.
type linkTarget struct{ actor, contract, linkName string }

func targetOf(l *lattice.LinkDefinition) linkTarget {
	return linkTarget{l.ActorID, l.ContractID, l.LinkName}
}

func (s *latticeState) putLink(l lattice.LinkDefinition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.links[l.ID]; ok {
		s.unindex(&old)
	}
	s.links[l.ID] = l
	if l.ID == lattice.LinkID(l.ActorID, l.ContractID, l.LinkName) {
		s.targets[targetOf(&l)] = l.ID
	}
}

func (s *latticeState) delLink(id string) (lattice.LinkDefinition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[id]
	if ok {
		s.unindex(&l)
	}
	delete(s.links, id)
	return l, ok
}

// unindex forgets l's target, if it is l's. The caller holds mu.
func (s *latticeState) unindex(l *lattice.LinkDefinition) {
	if t := targetOf(l); s.targets[t] == l.ID {
		delete(s.targets, t)
	}
}

func (s *latticeState) link(actor, contract, linkName string) (lattice.LinkDefinition, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.targets[linkTarget{actor, contract, linkName}]
	if !ok {
		return lattice.LinkDefinition{}, false
	}
	l, ok := s.links[id]
	return l, ok
}

func (s *latticeState) allLinks() []lattice.LinkDefinition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]lattice.LinkDefinition, 0, len(s.links))
	for _, l := range s.links {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *latticeState) putRefMap(rm RefMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refmaps[rm.OCIURL] = rm.PublicKey
}

func (s *latticeState) claimsOf(key string) (lattice.CachedClaims, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.claims[key]
	return c, ok
}

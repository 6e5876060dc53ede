package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/cacheread"
	"github.com/latticed/latticed/lattice"
)

// linksWait bounds how long a provider's start waits for its link
// definitions before the start fails (and, on a restart, is retried after
// the backoff): a provider never starts with a partial set.
const linksWait = cacheread.ProviderLinksWait

// Where a provider's link definitions came from, for the log.
const (
	linksFromCache = "lattice cache"
	linksFromHost  = "host (get.links)"
	linksFromNone  = "none: no lattice cache and no host answers, so no link exists yet"
)

// fetchLinks returns every link definition of this provider and link name,
// retrying until it has them all, linksWait passes, or the instance is
// stopped. The log says how many, and from where.
func (p *providerInstance) fetchLinks(ctx context.Context) ([]lattice.LinkDefinition, error) {
	s := p.sup
	deadline := time.Now().Add(linksWait)
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		readCtx, cancel := context.WithTimeout(ctx, linksWait)
		links, source, err := s.linksFor(readCtx, p.key, p.link)
		cancel()
		if err == nil {
			s.log.Info("provider link definitions read", "child", p.label(), "links", len(links), "from", source,
				"took", time.Since(start).Round(time.Millisecond).String(), "attempt", attempt)
			return links, nil
		}
		if time.Now().Add(delay).After(deadline) {
			return nil, fmt.Errorf("could not read the link definitions of %s for %s; not starting it without them "+
				"(check that the lattice cache stream %s is readable): %w", p.label(), linksWait, lattice.CacheStream(s.prefix), err)
		}
		s.log.Warn("could not read a provider's link definitions; retrying", "child", p.label(), "attempt", attempt, "in", delay.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s was stopped while reading its link definitions", p.label())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// linksFor reads the link definitions of provider key with link name link
// from the lattice cache, which holds any number of them. Only when there
// is no cache to read (no JetStream) does it ask a host on get.links; a
// host answers that with an error when the list does not fit one NATS
// message, and that is an error here too, never an empty list.
func (s *Supervisor) linksFor(ctx context.Context, key, link string) ([]lattice.LinkDefinition, string, error) {
	r, err := cacheread.New(s.nc, s.settings().Lattice.JSDomain, s.prefix)
	if err == nil {
		r.OnSkipped = func(sk cacheread.Skipped) {
			s.log.Warn("skipping bad lattice cache entry", "subject", sk.Subject, "err", sk.Err)
		}
		var links []lattice.LinkDefinition
		if links, err = r.LinksOf(ctx, key, link); err == nil {
			return links, linksFromCache, nil
		}
	}
	if !errors.Is(err, cacheread.ErrUnavailable) {
		return nil, "", err
	}
	cacheErr := err
	msg, err := s.nc.RequestWithContext(ctx, s.ctl.GetLinks(), []byte("{}"))
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, linksFromNone, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%v; and get.links: %w", cacheErr, err)
	}
	var reply struct {
		lattice.LinksList
		lattice.Ack
	}
	if err := jsonUnmarshal(msg.Data, &reply); err != nil {
		return nil, "", fmt.Errorf("get.links reply: %w", err)
	}
	if reply.Links == nil && reply.Error != "" {
		return nil, "", fmt.Errorf("%v; and the host could not list the links: %s", cacheErr, reply.Error)
	}
	var out []lattice.LinkDefinition
	for _, l := range reply.Links {
		if l.ProviderID == key && l.LinkName == link {
			out = append(out, l)
		}
	}
	return out, linksFromHost, nil
}

func linkIDs(links []lattice.LinkDefinition) map[string]bool {
	ids := make(map[string]bool, len(links))
	for _, l := range links {
		ids[l.ID] = true
	}
	return ids
}

// catchUpLinks closes the window between reading a provider's links and
// the provider subscribing to new ones: a link put meanwhile (say by `up
// --apply` right after the launch) was published to nobody. Once the
// process answers health checks it listens, so the links it did not get in
// HostData are sent to it now (a provider may receive a link twice and
// must not mind, docs/protocol.md §10).
func (p *providerInstance) catchUpLinks(ctx context.Context) {
	p.mu.Lock()
	had := p.startLinks
	p.mu.Unlock()
	p.sendLinks(ctx, "sent a provider the links put while it started",
		"links put while it started may be missing until put again",
		func(ld *lattice.LinkDefinition) bool { return !had[ld.ID] }, nil)
}

// resyncLinks brings a provider whose lattice connection was restored up
// to date: what was sent to it while it was away never arrived (core NATS
// keeps nothing for a subscriber that is gone). It is sent every link of
// the lattice for it again (it ignores those it has), and a deletion of
// each link it holds that the lattice no longer has.
func (p *providerInstance) resyncLinks(ctx context.Context) {
	p.mu.Lock()
	held := slices.Clone(p.linkOutcomes)
	p.mu.Unlock()
	p.sendLinks(ctx, "sent a provider its links again after its lattice connection was restored",
		"links changed while its connection was down may be missing until put again",
		func(*lattice.LinkDefinition) bool { return true },
		func(links []lattice.LinkDefinition) []lattice.LinkDefinition {
			inLattice := make(map[string]bool, len(links))
			for _, ld := range links {
				inLattice[ld.ActorID] = true
			}
			var gone []lattice.LinkDefinition
			for _, o := range held {
				if !inLattice[o.ActorID] {
					gone = append(gone, lattice.LinkDefinition{ID: lattice.LinkID(o.ActorID, o.ContractID, p.link),
						ActorID: o.ActorID, ProviderID: p.key, LinkName: p.link, ContractID: o.ContractID})
				}
			}
			return gone
		})
}

// maxLinkSendRounds bounds sendLinks' reads: links changing without pause
// for that long are left to the host's own messages.
const maxLinkSendRounds = 5

// linkMsg is a link definition sent to a provider, put or deleted.
type linkMsg struct {
	ld  lattice.LinkDefinition
	del bool
}

func (m linkMsg) same(o linkMsg) bool {
	return m.del == o.del && (m.del || maps.Equal(m.ld.Values, o.ld.Values))
}

// sendLinks sends the provider again those of its links in the lattice
// that pick selects, and a deletion of each link that gone (if not nil)
// returns for the links read. It logs what it sent (done) or, when the
// links cannot be read, what that means (missing).
//
// A link the host changes meanwhile must not be overtaken: read here, then
// changed by the host (its cache write, then its message to the provider),
// then sent here, older, after the host's message. So the links are read
// again after each round of sending, and what differs from what was sent
// is sent, until a read finds nothing to send. The host writes the lattice
// cache before it tells the provider (internal/host, PutLink), so a change
// whose message could have come before one of ours is in the next read,
// and one written after a read that finds nothing to send reaches the
// provider after everything sent here.
func (p *providerInstance) sendLinks(ctx context.Context, done, missing string, pick func(*lattice.LinkDefinition) bool, gone func([]lattice.LinkDefinition) []lattice.LinkDefinition) {
	s := p.sup
	told := map[string]linkMsg{} // by link id
	sent := 0
	for round := 1; ; round++ {
		readCtx, cancel := context.WithTimeout(ctx, linksWait)
		links, _, err := s.linksFor(readCtx, p.key, p.link)
		cancel()
		if err != nil {
			s.log.Warn("could not read a provider's link definitions; "+missing, "child", p.label(), "err", err)
			break
		}
		if round == 1 && s.afterLinksRead != nil {
			s.afterLinksRead()
		}
		want := map[string]linkMsg{}
		for _, ld := range links {
			if pick(&ld) {
				want[ld.ID] = linkMsg{ld: ld}
			}
		}
		if gone != nil {
			for _, ld := range gone(links) {
				want[ld.ID] = linkMsg{ld: ld, del: true}
			}
		}
		for id, m := range told {
			if _, ok := want[id]; !ok && !m.del {
				want[id] = linkMsg{ld: m.ld, del: true} // sent before, deleted since
			}
		}
		n := 0
		for id, m := range want {
			if t, ok := told[id]; ok && t.same(m) {
				continue
			}
			if p.sendLink(m) {
				told[id] = m
				n++
			}
		}
		sent += n
		if n == 0 {
			break
		}
		if round == maxLinkSendRounds {
			s.log.Warn("a provider's links kept changing while they were sent to it; the host's own messages bring the rest",
				"child", p.label(), "rounds", round)
			break
		}
	}
	if sent > 0 {
		s.log.Info(done, "child", p.label(), "links", sent)
	}
}

// sendLink publishes one link definition, or its deletion, to the provider
// as the host does; it reports whether it was sent.
func (p *providerInstance) sendLink(m linkMsg) bool {
	s := p.sup
	b, err := lattice.Marshal(&m.ld)
	if err != nil {
		return false
	}
	subj := lattice.RPCLinkdefPut(s.prefix, p.key, p.link)
	if m.del {
		subj = lattice.RPCLinkdefDel(s.prefix, p.key, p.link)
	}
	if err := s.nc.Publish(subj, b); err != nil {
		s.log.Warn("could not send a link definition to a provider", "child", p.label(), "actor", m.ld.ActorID, "deletion", m.del, "err", err)
		return false
	}
	if m.del {
		s.log.Info("sent a provider the deletion of a link deleted while it could not be told", "child", p.label(), "actor", m.ld.ActorID)
	}
	return true
}

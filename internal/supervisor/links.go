package supervisor

import (
	"context"
	"errors"
	"fmt"
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
		readCtx, cancel := context.WithTimeout(context.Background(), linksWait)
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
func (p *providerInstance) catchUpLinks() {
	p.mu.Lock()
	had := p.startLinks
	p.mu.Unlock()
	p.sendLinks("sent a provider the links put while it started",
		"links put while it started may be missing until put again",
		func(ld *lattice.LinkDefinition) bool { return !had[ld.ID] })
}

// resyncLinks brings a provider whose lattice connection was restored up
// to date: what was sent to it while it was away never arrived (core NATS
// keeps nothing for a subscriber that is gone). It is sent every link of
// the lattice for it again (it ignores those it has), and a deletion of
// each link it holds that the lattice no longer has.
func (p *providerInstance) resyncLinks() {
	links, ok := p.sendLinks("sent a provider its links again after its lattice connection was restored",
		"links changed while its connection was down may be missing until put again",
		func(*lattice.LinkDefinition) bool { return true })
	if !ok {
		return
	}
	inLattice := make(map[string]bool, len(links))
	for _, ld := range links {
		inLattice[ld.ActorID] = true
	}
	p.mu.Lock()
	held := slices.Clone(p.linkOutcomes)
	p.mu.Unlock()
	s := p.sup
	for _, o := range held {
		if inLattice[o.ActorID] {
			continue
		}
		b, err := lattice.Marshal(&lattice.LinkDefinition{ActorID: o.ActorID, ProviderID: p.key, LinkName: p.link, ContractID: o.ContractID})
		if err != nil {
			continue
		}
		if err := s.nc.Publish(lattice.RPCLinkdefDel(s.prefix, p.key, p.link), b); err != nil {
			s.log.Warn("could not send a link deletion to a provider", "child", p.label(), "actor", o.ActorID, "err", err)
			continue
		}
		s.log.Info("sent a provider the deletion of a link deleted while its lattice connection was down", "child", p.label(), "actor", o.ActorID)
	}
}

// sendLinks sends the provider again those of its links in the lattice
// that pick selects, logging what (done) or, when the links cannot be
// read, what it means (missing). It returns the links read, and whether
// they could be.
func (p *providerInstance) sendLinks(done, missing string, pick func(*lattice.LinkDefinition) bool) ([]lattice.LinkDefinition, bool) {
	s := p.sup
	ctx, cancel := context.WithTimeout(context.Background(), linksWait)
	defer cancel()
	links, _, err := s.linksFor(ctx, p.key, p.link)
	if err != nil {
		s.log.Warn("could not read a provider's link definitions; "+missing, "child", p.label(), "err", err)
		return nil, false
	}
	sent := 0
	for i := range links {
		if !pick(&links[i]) {
			continue
		}
		b, err := lattice.Marshal(&links[i])
		if err != nil {
			continue
		}
		if err := s.nc.Publish(lattice.RPCLinkdefPut(s.prefix, p.key, p.link), b); err != nil {
			s.log.Warn("could not send a link definition to a provider", "child", p.label(), "link_id", links[i].ID, "err", err)
			continue
		}
		sent++
	}
	if sent > 0 {
		s.log.Info(done, "child", p.label(), "links", sent)
	}
	return links, true
}

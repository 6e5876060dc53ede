package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

// LinkValidator is implemented by capabilities that can tell, without side
// effects, whether a link's values can work (a listen address that parses, a
// bucket name). The provider asks before it closes the current link for a
// changed one, so a bad change is refused and the working link stays.
type LinkValidator interface {
	ValidateLink(ld lattice.LinkDefinition) error
}

// linkBuffer is how many link definitions a session's channel holds; a
// provider that falls further behind loses them (a slow consumer).
const linkBuffer = 4096

// linkFeed applies the link definitions of one session at a time, in the
// order its connection received them, and moves to the next session when a
// handover retires the current one. Both connections receive the ones sent
// while the two overlap; those are applied once: a link changed back to an
// older value, even for a moment, would make the capability close and
// reopen what it serves for nothing.
type linkFeed struct {
	p   *Provider
	cur *session
	// tail: what cur's channel gave since a handover began (cur.handingOver),
	// the messages next may have received too; at most linkBuffer.
	tail []*nats.Msg
}

func (f *linkFeed) apply(ctx context.Context, m *nats.Msg) {
	f.p.applyLinkMsg(ctx, m)
	if !f.cur.handingOver.Load() {
		f.tail = nil // none, or those of a handover that failed: the tail must have no gap
		return
	}
	if len(f.tail) == linkBuffer {
		f.tail = f.tail[1:]
	}
	f.tail = append(f.tail, m)
}

// switchSession moves to the session that replaced cur: once cur's channel
// is empty, the messages waiting in the next one's that repeat the end of
// cur's (received by both) are dropped, and the rest applied.
func (f *linkFeed) switchSession(ctx context.Context) {
	for drained := false; !drained; {
		select {
		case m := <-f.cur.links:
			f.apply(ctx, m)
		default:
			drained = true
		}
	}
	next := f.cur.next.Load()
	var head []*nats.Msg
	for drained := false; !drained; {
		select {
		case m := <-next.links:
			head = append(head, m)
		default:
			drained = true
		}
	}
	skip := repeated(f.tail, head)
	f.cur, f.tail = next, nil
	for _, m := range head[skip:] {
		f.apply(ctx, m)
	}
}

// repeated is how many of head's first messages repeat tail's last ones:
// the longest run that is both. A run longer than what both connections
// really received holds only messages just applied, in the same order, so
// a link definition's last value per actor is the same either way.
func repeated(tail, head []*nats.Msg) int {
	for k := min(len(tail), len(head)); k > 0; k-- {
		same := true
		for i := 0; i < k && same; i++ {
			a, b := tail[len(tail)-k+i], head[i]
			same = a.Subject == b.Subject && bytes.Equal(a.Data, b.Data)
		}
		if same {
			return k
		}
	}
	return 0
}

// applyLinkMsg handles one message from the linkdefs.put/del subjects.
func (p *Provider) applyLinkMsg(ctx context.Context, m *nats.Msg) {
	ld, err := lattice.DecodeLinkDefinition(m.Data)
	if err != nil {
		p.log.Warn("ignoring malformed link definition", "subject", m.Subject, "err", err)
		return
	}
	if m.Subject == lattice.RPCLinkdefDel(p.hd.LatticeRPCPrefix, p.hd.ProviderKey, p.hd.LinkName) {
		p.deleteLink(ctx, *ld)
		return
	}
	p.putLink(ctx, *ld, "lattice")
}

// putLink records a link and tells the capability. Hosts repeat link
// definitions (every host's cache watcher republishes them), so a put equal
// to the current link is a no-op; a changed one replaces it: the old link is
// closed, then the new one opened.
func (p *Provider) putLink(ctx context.Context, ld lattice.LinkDefinition, source string) {
	if ld.LinkName == "" {
		ld.LinkName = p.hd.LinkName
	}
	if ld.ProviderID != p.hd.ProviderKey || ld.LinkName != p.hd.LinkName || ld.ActorID == "" {
		p.log.Warn("ignoring a link definition for another provider instance", "actor", ld.ActorID,
			"for_provider", ld.ProviderID, "for_link_name", ld.LinkName, "source", source)
		return
	}
	if ld.Values == nil {
		ld.Values = map[string]string{}
	}
	old, exists := p.Link(ld.ActorID)
	if exists && sameLink(old, ld) {
		p.setOutcome(ld, nil) // a repeat of a link in force: applied
		p.log.Debug("link definition unchanged", "actor", ld.ActorID, "source", source)
		return
	}
	// Values the capability cannot use never cost the working link.
	if v, ok := p.c.(LinkValidator); ok {
		if err := v.ValidateLink(ld); err != nil {
			p.setOutcome(ld, err)
			p.log.Error("link refused: its values cannot work", "actor", ld.ActorID, "source", source,
				"kept_current_link", exists, "err", err)
			return
		}
	}
	if exists {
		p.log.Info("link definition changed; replacing it", "actor", ld.ActorID, "source", source)
		p.forget(ld.ActorID)
		if err := p.c.DeleteLink(ctx, old); err != nil {
			p.log.Warn("close replaced link", "actor", ld.ActorID, "err", err)
		}
	}
	if err := p.c.PutLink(ctx, ld); err != nil {
		if exists {
			// Valid values can still fail (the new port is taken): reopen
			// the link that worked, as it was.
			rerr := p.c.PutLink(ctx, old)
			if rerr == nil {
				p.linksMu.Lock()
				p.links[ld.ActorID] = old
				p.linksMu.Unlock()
				p.setOutcome(ld, fmt.Errorf("%w (the current link stays)", err))
				p.log.Error("link refused; kept the current link", "actor", ld.ActorID, "source", source, "err", err)
				return
			}
			err = errors.Join(err, fmt.Errorf("reopen the current link: %w", rerr))
		}
		p.setOutcome(ld, err)
		p.log.Error("link refused", "actor", ld.ActorID, "source", source, "err", err)
		return
	}
	p.linksMu.Lock()
	p.links[ld.ActorID] = ld
	p.linksMu.Unlock()
	p.setOutcome(ld, nil)
	p.log.Info("link added", "actor", ld.ActorID, "source", source)
}

func (p *Provider) deleteLink(ctx context.Context, ld lattice.LinkDefinition) {
	old, exists := p.Link(ld.ActorID)
	if !exists {
		p.forget(ld.ActorID) // a refused link's outcome goes with it
		p.log.Debug("link delete for an actor that is not linked", "actor", ld.ActorID)
		return
	}
	p.forget(ld.ActorID)
	if err := p.c.DeleteLink(ctx, old); err != nil {
		p.log.Warn("delete link", "actor", ld.ActorID, "err", err)
	}
	p.log.Info("link deleted", "actor", ld.ActorID)
}

// setOutcome records what became of the last put of ld (err nil: applied).
func (p *Provider) setOutcome(ld lattice.LinkDefinition, err error) {
	o := lattice.LinkOutcome{ActorID: ld.ActorID, ContractID: ld.ContractID, LinkName: ld.LinkName,
		ValuesDigest: lattice.LinkValuesDigest(ld.Values)}
	if err != nil {
		o.Error = err.Error()
	}
	p.linksMu.Lock()
	p.outcomes[ld.ActorID] = o
	p.linksMu.Unlock()
}

// LinkOutcomes returns what became of the last put of each actor's link,
// ordered by actor (health replies carry them).
func (p *Provider) LinkOutcomes() []lattice.LinkOutcome {
	p.linksMu.RLock()
	out := make([]lattice.LinkOutcome, 0, len(p.outcomes))
	for _, o := range p.outcomes {
		out = append(out, o)
	}
	p.linksMu.RUnlock()
	slices.SortFunc(out, func(a, b lattice.LinkOutcome) int { return strings.Compare(a.ActorID, b.ActorID) })
	return out
}

// forget drops the record first, so invocations are refused while the
// capability closes what the link had opened.
func (p *Provider) forget(actor string) {
	p.linksMu.Lock()
	delete(p.links, actor)
	delete(p.outcomes, actor)
	p.linksMu.Unlock()
}

func sameLink(a, b lattice.LinkDefinition) bool {
	return a.ActorID == b.ActorID && a.ProviderID == b.ProviderID && a.ContractID == b.ContractID &&
		a.LinkName == b.LinkName && maps.Equal(a.Values, b.Values)
}

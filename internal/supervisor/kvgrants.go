package supervisor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/builtin/keyvalue"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/wire"
)

// A key-value provider may use exactly the buckets its links name
// (docs/security.md): the supervisor creates each bucket and grants it to
// the provider's user. Links come and go at run time, so the supervisor
// follows the link definitions the host sends providers
// (lattice.RPCLinkdefPut/Del) and, when a key-value provider's set of
// buckets changes, re-mints its user (same key, new permissions) and sends
// the JWT through the renewal subject; the provider SDK moves to a new
// connection with it.

// followLinks subscribes to the link definitions sent to every provider of
// the lattice; stop with the returned subscription's Unsubscribe. Puts and
// dels come on one subscription, so they are applied in the order the host
// sent them: a link deleted and put again ends granted.
func (s *Supervisor) followLinks() (*nats.Subscription, error) {
	subj := lattice.RPCLinkdefPutOrDel(s.prefix, "*", "*")
	sub, err := s.nc.Subscribe(subj, s.linkChanged)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subj, err)
	}
	return sub, nil
}

// linkChanged updates the buckets of the key-value provider a link
// definition is for, if it runs here.
func (s *Supervisor) linkChanged(m *nats.Msg) {
	put, ok := lattice.IsLinkdefPut(m.Subject)
	if !ok {
		return // another subject under linkdefs.*: not a link change
	}
	ld, err := lattice.DecodeLinkDefinition(m.Data)
	if err != nil {
		s.log.Warn("ignoring a malformed link definition", "subject", m.Subject, "err", err)
		return
	}
	link := ld.LinkName
	if link == "" {
		link = "default"
	}
	s.provMu.Lock()
	p := s.provs[provKey{ld.ProviderID, link}]
	s.provMu.Unlock()
	if p == nil {
		return
	}
	if put {
		p.pokeHealth() // its outcome is wanted soon (provider.go)
	}
	if p.contract != wire.ContractKeyValue {
		return
	}
	p.mu.Lock()
	if put {
		if b, err := keyvalue.BucketName(ld.Values, s.prefix, link); err == nil {
			p.buckets[ld.ActorID] = b
		} else {
			delete(p.buckets, ld.ActorID) // the provider refuses such a link too
		}
	} else {
		delete(p.buckets, ld.ActorID)
	}
	p.mu.Unlock()
	p.syncGrants()
}

// bucketsOf resets a key-value provider's buckets to those of links and
// returns them (sorted, each once).
func (p *providerInstance) bucketsOf(links []lattice.LinkDefinition) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buckets = map[string]string{}
	if p.contract != wire.ContractKeyValue {
		return nil
	}
	for _, ld := range links {
		if b, err := keyvalue.BucketName(ld.Values, p.sup.prefix, p.link); err == nil {
			p.buckets[ld.ActorID] = b
		}
	}
	return p.bucketSetLocked()
}

func (p *providerInstance) bucketSetLocked() []string {
	var out []string
	for _, b := range p.buckets {
		out = append(out, b)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// syncGrants re-mints the running provider's user when its buckets differ
// from those its credentials grant, creating new buckets first, and sends
// it the new JWT.
func (p *providerInstance) syncGrants() {
	s := p.sup
	p.credMu.Lock()
	defer p.credMu.Unlock()
	p.mu.Lock()
	want, c, granted, stopping := p.bucketSetLocked(), p.creds, p.granted, p.child.StopReason() != ""
	p.mu.Unlock()
	if stopping || c.Role != RoleProvider || s.auth == nil || slices.Equal(want, granted) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.ensureBuckets(ctx, want); err != nil {
		s.log.Error("could not create a key-value bucket; the provider is not granted it", "child", p.label(), "err", err)
		return
	}
	next, err := s.auth.Remint(c, p.scope(want))
	if err != nil {
		s.log.Error("could not re-mint the provider's user for its buckets", "child", p.label(), "err", err)
		return
	}
	p.mu.Lock()
	if p.child.StopReason() != "" || p.creds.JWT != c.JWT {
		p.mu.Unlock()
		return
	}
	p.creds, p.granted = next, want
	p.mu.Unlock()
	if err := s.nc.Publish(lattice.RPCCredentials(s.prefix, p.key, p.link), []byte(next.JWT)); err != nil {
		s.log.Warn("could not send the re-minted credentials", "child", p.label(), "err", err)
		return
	}
	s.log.Info("provider user re-minted for its key-value buckets", "child", p.label(), "user", c.UserKey, "buckets", want)
}

// ensureBuckets creates the key-value buckets that do not exist yet, with
// the configuration the key-value provider uses.
func (s *Supervisor) ensureBuckets(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var js jetstream.JetStream
	var err error
	if d := s.settings().Lattice.JSDomain; d != "" {
		js, err = jetstream.NewWithDomain(s.nc, d)
	} else {
		js, err = jetstream.New(s.nc)
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		if _, err := js.KeyValue(ctx, name); err == nil {
			continue
		}
		_, noTTL, err := keyvalue.CreateBucket(ctx, js, name)
		if err != nil {
			return fmt.Errorf("create key-value bucket %s: %w", name, err)
		}
		if noTTL {
			s.log.Warn("this NATS server has no per-message TTL (nats-server 2.11+); Set with expiry will fail", "bucket", name)
		}
	}
	return nil
}

package supervisor

import (
	"context"
	"fmt"
	"log/slog"
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
// definition is for, if it runs here, and asks for its health check, after
// which its grants are synced (syncGrants).
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
	if put || p.contract == wire.ContractKeyValue {
		// A put's outcome is wanted soon (provider.go); a key-value
		// provider's grants are synced after that check, on the
		// provider's own goroutine: a bucket creation that waits for
		// JetStream holds up no other provider's link changes.
		p.pokeHealth()
	}
	if p.contract != wire.ContractKeyValue {
		return
	}
	p.mu.Lock()
	p.linkChanges++
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
}

// bucketsOf resets a key-value provider's buckets to those of links and
// returns them (sorted, each once).
func (p *providerInstance) bucketsOf(links []lattice.LinkDefinition) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setBucketsLocked(links)
	return p.bucketSetLocked()
}

func (p *providerInstance) setBucketsLocked(links []lattice.LinkDefinition) {
	p.buckets = map[string]string{}
	if p.contract != wire.ContractKeyValue {
		return
	}
	for _, ld := range links {
		if b, err := keyvalue.BucketName(ld.Values, p.sup.prefix, p.link); err == nil {
			p.buckets[ld.ActorID] = b
		}
	}
}

// linkChangesMissed marks every key-value provider's buckets to be read
// again from the lattice at its next health check, which is asked for at
// once: link changes were lost to linkChanged (conn.go: sent while the
// supervisor's connection was down, or dropped for falling behind), so a
// bucket linked meanwhile would not be granted, and one unlinked would
// stay granted.
func (s *Supervisor) linkChangesMissed() {
	s.provMu.Lock()
	var kv []*providerInstance
	for _, p := range s.provs {
		if p.contract == wire.ContractKeyValue {
			kv = append(kv, p)
		}
	}
	s.provMu.Unlock()
	for _, p := range kv {
		p.mu.Lock()
		p.rebuild = true
		p.mu.Unlock()
		p.pokeHealth()
	}
}

// rebuildBucketsIfMissed reads a key-value provider's buckets again from
// the lattice's links when linkChangesMissed asked for it. A link change
// that linkChanged applies while the links are being read may be newer
// than what was read: then what was read is dropped, and read again at the
// next health check. So is a read that fails.
func (p *providerInstance) rebuildBucketsIfMissed(ctx context.Context) {
	s := p.sup
	p.mu.Lock()
	due, seen := p.rebuild, p.linkChanges
	p.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	links, _, err := s.linksFor(ctx, p.key, p.link)
	if err != nil {
		s.log.Warn("could not read a key-value provider's links again after link changes were lost; "+
			"retried at the next health check", "child", p.label(), "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.linkChanges != seen {
		return // a change came while reading: read again next time
	}
	p.setBucketsLocked(links)
	p.rebuild = false
	s.log.Info("key-value provider's buckets read again from the lattice: link changes were lost",
		"child", p.label(), "buckets", p.bucketSetLocked())
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
// it the new JWT. It runs when a link changes and at every health check, so
// a sync that failed (JetStream unavailable, a bucket that cannot be made
// yet) is tried again.
func (p *providerInstance) syncGrants(ctx context.Context) {
	if p.remintForBuckets(ctx) {
		p.resendRefusedLinks(ctx)
	}
}

// remintForBuckets is syncGrants' re-mint; it reports whether one was sent.
func (p *providerInstance) remintForBuckets(ctx context.Context) bool {
	s := p.sup
	p.credMu.Lock()
	defer p.credMu.Unlock()
	p.mu.Lock()
	want, c, granted, stopping := p.bucketSetLocked(), p.creds, p.granted, p.child.StopReason() != ""
	p.mu.Unlock()
	if stopping || c.Role != RoleProvider || s.auth == nil || slices.Equal(want, granted) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.ensureBuckets(ctx, want); err != nil {
		p.grantFailed("could not create a key-value bucket; the provider is not granted it until it can be (retried at each health check)", err)
		return false
	}
	next, err := s.auth.Remint(c, p.scope(want))
	if err != nil {
		p.grantFailed("could not re-mint the provider's user for its buckets (retried at each health check)", err)
		return false
	}
	p.mu.Lock()
	if p.child.StopReason() != "" || p.creds.JWT != c.JWT {
		p.mu.Unlock()
		return false
	}
	p.creds, p.granted, p.grantErr = next, want, ""
	p.mu.Unlock()
	if err := p.sendCredentials(next.JWT); err != nil {
		s.log.Warn("could not send the re-minted credentials", "child", p.label(), "err", err)
		return false
	}
	s.log.Info("provider user re-minted for its key-value buckets", "child", p.label(), "user", c.UserKey, "buckets", want)
	return true
}

// resendRefusedLinks sends a key-value provider again the links it last
// reported refused whose bucket its user is now granted. The provider
// waits keyvalue.GrantWait for a link's grant and then refuses the link;
// a grant that came later (the bucket could not be made for a while) must
// still bring the link up, without anyone putting it again.
func (p *providerInstance) resendRefusedLinks(ctx context.Context) {
	p.mu.Lock()
	refused := map[string]bool{}
	for _, o := range p.linkOutcomes {
		if o.Error != "" && slices.Contains(p.granted, p.buckets[o.ActorID]) {
			refused[o.ActorID] = true
		}
	}
	p.mu.Unlock()
	if len(refused) == 0 {
		return
	}
	p.sendLinks(ctx, "sent a key-value provider again the links it refused before their buckets were granted",
		"links it refused stay refused until put again",
		func(ld *lattice.LinkDefinition) bool { return refused[ld.ActorID] }, nil)
}

// grantFailed logs why a grant sync failed: at error level when the cause
// is new, at debug level while the retries meet the same one.
func (p *providerInstance) grantFailed(msg string, err error) {
	p.mu.Lock()
	repeat := p.grantErr == err.Error()
	p.grantErr = err.Error()
	p.mu.Unlock()
	level := slog.LevelError
	if repeat {
		level = slog.LevelDebug
	}
	p.sup.log.Log(context.Background(), level, msg, "child", p.label(), "err", err)
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

package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/revstore"
	"github.com/latticed/latticed/lattice"
)

// prunableRecord is the file's content.
type prunableRecord struct {
	Account  string               `json:"account"`
	Prunable map[string]time.Time `json:"prunable"` // user key -> removable after
}

// loadPrunable reads the record for account. A missing file is an empty
// record; an unreadable or foreign one is set aside (its entries then stay
// in the account for good, which is safe) and reported.
func loadPrunable(path, account string) (map[string]time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]time.Time{}, nil
	}
	if err != nil {
		return map[string]time.Time{}, fmt.Errorf("read %s: %w", path, err)
	}
	var rec prunableRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Account == "" {
		aside := path + ".bad"
		_ = os.Rename(path, aside)
		return map[string]time.Time{}, fmt.Errorf("%s is not a revocation record (moved to %s; the entries it listed are kept in the account): %v", path, aside, err)
	}
	if rec.Account != account {
		return map[string]time.Time{}, fmt.Errorf("%s is for account %s, not %s: its entries are not pruned", path, rec.Account, account)
	}
	if rec.Prunable == nil {
		rec.Prunable = map[string]time.Time{}
	}
	return rec.Prunable, nil
}

// savePrunable writes the record (0600, atomically).
func savePrunable(path, account string, m map[string]time.Time) error {
	b, err := json.Marshal(prunableRecord{Account: account, Prunable: m})
	if err != nil {
		return err
	}
	return datadir.WriteSecret(path, b)
}

// revocationsIndex indexes the entries of latticed's revocations bucket
// (lattice.RevocationsBucket) by when each may go: lattice.DelegationRevocation's
// Until, past which no delegation it could refuse is valid, so hosts
// already drop it from memory (trust.Issuers.Revoke).
type revocationsIndex struct {
	mu     sync.Mutex
	loaded bool
	until  map[string]time.Time // subject -> removable after
}

// jetStream is the supervisor's JetStream context, in the configured domain.
func (s *Supervisor) jetStream() (jetstream.JetStream, error) {
	if d := s.settings().Lattice.JSDomain; d != "" {
		return jetstream.NewWithDomain(s.nc, d)
	}
	return jetstream.New(s.nc)
}

// moveRevocations makes the revocations bucket and moves into it the
// revocations an older latticed wrote into the lattice cache stream, before
// the host starts: a wasmCloud 0.60+ host starting beside this node must find
// only key types it can migrate there (docs/protocol.md §11.3).
func (s *Supervisor) moveRevocations(ctx context.Context) error {
	js, err := s.jetStream()
	if err != nil {
		return err
	}
	if _, err := revstore.Ensure(ctx, js, s.prefix, s.settings().Host.CacheReplicas); err != nil {
		return err
	}
	n, err := revstore.MoveLegacy(ctx, js, s.prefix)
	if n > 0 {
		s.log.Info("moved signing-key revocations out of the lattice cache", "moved", n,
			"from", lattice.CacheStream(s.prefix), "to", lattice.RevocationsBucket(s.prefix))
	}
	return err
}

// recordSigningRevocation notes an entry just written and prunes the bucket.
func (s *Supervisor) recordSigningRevocation(ctx context.Context, subject string, until time.Time) {
	s.sigRevs.mu.Lock()
	if s.sigRevs.until == nil {
		s.sigRevs.until = map[string]time.Time{}
	}
	s.sigRevs.until[subject] = until
	s.sigRevs.mu.Unlock()
	if err := s.pruneSigningRevocations(ctx); err != nil {
		s.log.Warn("could not remove expired signing-key revocations; they stay until the next revocation or restart",
			"bucket", lattice.RevocationsBucket(s.prefix), "err", err)
	}
}

// pruneSigningRevocations purges the bucket's entries whose Until has
// passed. The first call reads every entry from the stream (the node's
// start); later ones work from the index.
func (s *Supervisor) pruneSigningRevocations(ctx context.Context) error {
	s.sigRevs.mu.Lock()
	defer s.sigRevs.mu.Unlock()
	now := time.Now()
	if s.sigRevs.loaded && !anyDue(s.sigRevs.until, now) {
		return nil // the common case costs no request
	}
	js, err := s.jetStream()
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, lattice.RevocationsStream(s.prefix))
	if err != nil {
		return fmt.Errorf("revocations bucket %s: %w", lattice.RevocationsBucket(s.prefix), err)
	}
	if s.sigRevs.until == nil {
		s.sigRevs.until = map[string]time.Time{}
	}
	if !s.sigRevs.loaded {
		if err := loadSigningRevocations(ctx, stream, s.prefix, s.sigRevs.until, s.log); err != nil {
			return err
		}
		s.sigRevs.loaded = true
	}
	var errs []error
	for subject, until := range s.sigRevs.until {
		if !now.After(until) {
			continue
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			errs = append(errs, fmt.Errorf("purge %s: %w", subject, err))
			continue
		}
		delete(s.sigRevs.until, subject)
	}
	return errors.Join(errs...)
}

func anyDue(until map[string]time.Time, now time.Time) bool {
	for _, t := range until {
		if now.After(t) {
			return true
		}
	}
	return false
}

// loadSigningRevocations adds every entry of the revocations bucket to until.
func loadSigningRevocations(ctx context.Context, stream jetstream.Stream, prefix string, until map[string]time.Time, log *slog.Logger) error {
	filter := lattice.RevocationsSubjects(prefix)
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("list %s: %w", filter, err)
	}
	for subject := range info.State.Subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged meanwhile
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", subject, err)
		}
		var rv lattice.DelegationRevocation
		if err := json.Unmarshal(m.Data, &rv); err != nil || rv.Until.IsZero() {
			// Not ours to judge: an entry without a time is kept.
			log.Warn("signing-key revocation has no expiry; it is kept", "subject", subject)
			continue
		}
		until[subject] = rv.Until
	}
	return nil
}

package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/datadir"
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

// cacheRevocations indexes the signing-key revocations in the lattice cache
// (lc.{prefix}.revocations.*) by when each may go: lattice.DelegationRevocation's
// Until, past which no delegation it could refuse is valid, so hosts
// already drop it from memory (trust.Issuers.Revoke).
type cacheRevocations struct {
	mu     sync.Mutex
	loaded bool
	until  map[string]time.Time // subject -> removable after
}

// recordCacheRevocation notes an entry just written and prunes the cache.
func (s *Supervisor) recordCacheRevocation(ctx context.Context, subject string, until time.Time) {
	s.cacheRevs.mu.Lock()
	if s.cacheRevs.until == nil {
		s.cacheRevs.until = map[string]time.Time{}
	}
	s.cacheRevs.until[subject] = until
	s.cacheRevs.mu.Unlock()
	if err := s.pruneCacheRevocations(ctx); err != nil {
		s.log.Warn("could not remove expired signing-key revocations from the lattice cache; they stay until the next revocation or restart",
			"stream", lattice.CacheStream(s.prefix), "err", err)
	}
}

// pruneCacheRevocations purges the cache's revocation entries whose Until
// has passed. The first call reads every such entry from the stream (the
// node's start); later ones work from the index.
func (s *Supervisor) pruneCacheRevocations(ctx context.Context) error {
	s.cacheRevs.mu.Lock()
	defer s.cacheRevs.mu.Unlock()
	now := time.Now()
	if s.cacheRevs.loaded && !anyDue(s.cacheRevs.until, now) {
		return nil // the common case costs no request
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, lattice.CacheStream(s.prefix))
	if err != nil {
		return fmt.Errorf("lattice cache %s: %w", lattice.CacheStream(s.prefix), err)
	}
	if s.cacheRevs.until == nil {
		s.cacheRevs.until = map[string]time.Time{}
	}
	if !s.cacheRevs.loaded {
		if err := loadCacheRevocations(ctx, stream, s.prefix, s.cacheRevs.until, s.log); err != nil {
			return err
		}
		s.cacheRevs.loaded = true
	}
	var errs []error
	for subject, until := range s.cacheRevs.until {
		if !now.After(until) {
			continue
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			errs = append(errs, fmt.Errorf("purge %s: %w", subject, err))
			continue
		}
		delete(s.cacheRevs.until, subject)
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

// loadCacheRevocations adds every revocation entry of the cache to until.
func loadCacheRevocations(ctx context.Context, stream jetstream.Stream, prefix string, until map[string]time.Time, log *slog.Logger) error {
	filter := strings.TrimSuffix(lattice.CacheRevocation(prefix, "*"), "*") + ">"
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
			log.Warn("lattice cache revocation entry has no expiry; it is kept", "subject", subject)
			continue
		}
		until[subject] = rv.Until
	}
	return nil
}

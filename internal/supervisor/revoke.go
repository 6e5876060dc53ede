package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
)

// connObserver tells how many connections a NATS user has open.
type connObserver interface {
	openConns(ctx context.Context, userKey string) (int, error)
}

// embeddedObserver asks the embedded server directly.
type embeddedObserver struct{ s *server.Server }

func (o embeddedObserver) openConns(_ context.Context, userKey string) (int, error) {
	cz, err := o.s.Connz(&server.ConnzOptions{Username: true, User: userKey, State: server.ConnOpen})
	if err != nil {
		return 0, err
	}
	return cz.NumConns, nil
}

// waitClosed returns when userKey has no open connection left, with the
// time that was observed.
func waitClosed(ctx context.Context, o connObserver, userKey string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, revokeObserve)
	defer cancel()
	wait := 100 * time.Microsecond
	for {
		n, err := o.openConns(ctx, userKey)
		if err == nil && n == 0 {
			return time.Now(), nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = fmt.Errorf("%d connection(s) still open", n)
			}
			return time.Time{}, fmt.Errorf("connection of user %s not seen closed within %s: %v", userKey, revokeObserve, err)
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// Revoke revokes the NATS user of a provider instance: the account's
// claims gain a revocation of that user's key and are applied to the
// server, which closes the provider's connection at once and refuses it
// from then on. It counts as done when the connection is seen closed; the
// report says when. The process is then killed and not restarted; the host
// and other providers are untouched.
//
// Without a way to revoke (external NATS with shared provider credentials)
// the provider is stopped and not restarted, and the error says revocation
// is unavailable.
func (s *Supervisor) Revoke(ctx context.Context, cmd lattice.StopProviderCommand) (admin.RevocationReport, error) {
	requested := time.Now()
	p, err := s.findProvider(cmd)
	if err != nil {
		return admin.RevocationReport{}, err
	}
	proc, err := p.child.Stop(child.ExitRevoked)
	if err != nil {
		return admin.RevocationReport{}, fmt.Errorf("provider %s with link name %s is %w", p.key, p.link, err)
	}
	p.mu.Lock()
	creds, sg, instanceID := p.creds, p.signing, p.instanceID
	p.mu.Unlock()
	// The signing key goes first: a stolen key must stop working on every
	// node, whatever happens to the NATS user.
	if err := s.revokeSigning(ctx, p, sg, instanceID); err != nil {
		s.log.Error("could not revoke the provider's signing key", "child", p.label(), "err", err)
	}
	rep := admin.RevocationReport{ProviderID: p.key, LinkName: p.link, InstanceID: instanceID, User: creds.UserKey, Requested: requested}

	var revokeErr error
	switch {
	case s.auth == nil || creds.Role != RoleProvider:
		revokeErr = fmt.Errorf("%w: %s", errRevocationUnavailable, s.revocationStatus())
	case !s.auth.CanRevoke():
		// External NATS with only an account signing key: the user's JWT
		// expires soon and is no longer renewed (the stop reason stops that).
		if !creds.Expires.IsZero() {
			exp := creds.Expires
			rep.CredentialsExpire = &exp
		}
	default:
		revokeErr = s.auth.Revoke(ctx, creds.UserKey)
		if revokeErr == nil && s.observer != nil {
			rep.Closed, revokeErr = waitClosed(ctx, s.observer, creds.UserKey)
		}
	}
	// Stop the process either way: a revoked (or unrevokable) provider does not run on.
	p.child.Quit()
	if proc != nil {
		proc.Kill()
	}
	<-p.child.Done()
	if revokeErr != nil && !errors.Is(revokeErr, errRevocationUnavailable) {
		s.m.Revocations.WithLabelValues(metrics.ResultError).Inc()
		s.log.Error("revocation failed; the provider was stopped and will not be restarted", "child", p.label(), "user", creds.UserKey, "err", revokeErr)
		return rep, revokeErr
	}
	if rep.Closed.IsZero() {
		rep.Closed = time.Now()
	}
	rep.Seconds = rep.Closed.Sub(requested).Seconds()
	if revokeErr != nil {
		s.m.Revocations.WithLabelValues(metrics.ResultError).Inc()
		s.log.Warn("per-provider revocation is unavailable; the provider was stopped and will not be restarted", "child", p.label(), "detail", s.revocationStatus())
		s.publishEvent(lattice.EventProviderRevoked, p.eventData(map[string]any{"user": creds.UserKey, "revoked": false, "detail": s.revocationStatus()}))
		return rep, revokeErr
	}
	s.m.Revocations.WithLabelValues(metrics.ResultOK).Inc()
	if rep.CredentialsExpire == nil {
		s.m.RevocationDuration.Observe(rep.Seconds)
	}
	s.log.Info("provider revoked", "child", p.label(), "user", creds.UserKey, "instance_id", instanceID,
		"connection_closed_after", time.Duration(rep.Seconds*float64(time.Second)).String())
	s.publishEvent(lattice.EventProviderRevoked, p.eventData(map[string]any{
		"user": creds.UserKey, "revoked": true, "requested": rep.Requested, "closed": rep.Closed, "seconds": rep.Seconds,
	}))
	return rep, nil
}

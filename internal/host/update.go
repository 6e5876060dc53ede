package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// ErrNotNewer refuses a live update to a module whose revision is not above
// the running one's.
var ErrNotNewer = errors.New("a live update needs a module of a higher revision")

// UpdateActor is a live update (cmd.{host}.upd): the actor whose key the
// module at newRef claims, running here, moves to that module. The module
// must pass the checks of a start (claims, issuers, policy) and claim a
// higher revision (docs/protocol.md §6). It is compiled, and one instance
// of it started and closed, before anything changes, so a module that does
// not compile or whose instances cannot start leaves the actor as it was.
// Then every instance moves to the new code under its id (idle ones now,
// busy ones when their call ends), the new claims and reference map are
// published, and each instance is announced by actor_updated; a failure
// once the actor is known is announced by actor_update_failed per instance.
//
// actorID, when not empty, is the actor the caller means to update (wash
// sends it): a module that claims another key is refused.
func (h *Host) UpdateActor(ctx context.Context, actorID, newRef string) error {
	if newRef == "" {
		return errors.New("new_actor_ref is required")
	}
	module, err := h.loadActor(ctx, newRef)
	if err != nil {
		return err
	}
	claims, err := h.verifyModule(module)
	if err != nil {
		return err
	}
	if actorID != "" && actorID != claims.Subject {
		return fmt.Errorf("the module at %s claims actor %s, not %s: a live update keeps an actor's key", newRef, claims.Subject, actorID)
	}
	unlock, err := h.lifecycle.lock(ctx, claims.Subject)
	if err != nil {
		return err
	}
	defer unlock()
	a := h.actor(claims.Subject)
	if a == nil {
		return fmt.Errorf("actor %s is not running on this host: start it rather than update it", claims.Subject)
	}
	rev, running := trust.ActorRevision(claims), trust.ActorRevision(a.claims())
	fail := func(err error) error {
		for _, id := range a.pool.ids() {
			h.events.publish(lattice.EventActorUpdateFailed, map[string]any{
				"public_key": a.key, "revision": rev, "instance_id": id, "reason": err.Error()})
		}
		return err
	}
	if rev <= running {
		return fail(fmt.Errorf("%w: %s has revision %d, the running actor has %d; sign the new module with a higher one", ErrNotNewer, newRef, rev, running))
	}
	if err := h.mayStart(ctx, claims); err != nil {
		return fail(err)
	}
	// Compiled, never interpreted first: an update is not a cold start,
	// and the running code serves meanwhile.
	code, _, err := h.runtime.compileTiered(ctx, h.log.With(progress.KeyActor, a.key, progress.KeyName, actorName(claims)), module, -1)
	if err != nil {
		return fail(fmt.Errorf("compile %s: %w", newRef, err))
	}
	// One instance first: a module whose instances cannot start (an
	// initialiser that traps or never returns) is refused here, rather
	// than tried again each time an instance comes back to the pool.
	spawn := h.spawner(a, code)
	probe, err := spawn(ctx, "live-update-probe")
	if err != nil {
		code.close(context.Background())
		return fail(fmt.Errorf("start an instance of %s: %w", newRef, err))
	}
	probe.close(ctx)
	if !a.pool.upgrade(ctx, code, spawn) {
		code.close(context.Background())
		return fail(errPoolClosed)
	}
	h.m.ActorInfo.DeleteLabelValues(a.infoLabels()...)
	from := a.ref()
	a.from.Store(&actorModule{ref: newRef, claims: claims})
	h.m.ActorInfo.WithLabelValues(a.infoLabels()...).Set(1)
	// Closing code that instances still run is safe in wazero; the last of
	// them moves to the new code when its call returns.
	a.mu.Lock()
	a.code.close(context.Background())
	a.code = code
	a.mu.Unlock()
	h.publishModule(ctx, a, code)
	ids := a.pool.ids()
	for _, id := range ids {
		h.events.publish(lattice.EventActorUpdated, map[string]any{"public_key": a.key, "revision": rev, "instance_id": id})
	}
	h.log.Info("actor updated", "actor", a.key, "name", a.name(), "from", from, "ref", newRef, "revision", rev,
		"previous_revision", running, "instances", len(ids))
	return nil
}

package supervisor

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

// actorTracker remembers the actors this node's host runs, from the host's
// own events (actor_started / actor_stopped, one per instance), so that a
// host that crashed gets them back: the supervisor starts the same
// references with the same instance counts on the new host process.
//
// Events rather than the host's inventory: they also cover actors started
// by anyone through the control interface, need no polling, and are still
// there when the host is not — a crash emits no actor_stopped. A graceful
// host stop does emit them, so a stopped host has nothing to replay.
type actorTracker struct {
	hostID string

	mu      sync.Mutex
	running map[string]*trackedActor // actor key →
	pending map[string]*trackedActor // to start on the next host process
	folded  uint64                   // events folded in: resync's guard
}

type trackedActor struct {
	ref       string
	instances map[string]bool
	count     int // pending only
}

func newActorTracker(hostID string) *actorTracker {
	return &actorTracker{hostID: hostID, running: map[string]*trackedActor{}, pending: map[string]*trackedActor{}}
}

// handle folds one lattice event in.
func (t *actorTracker) handle(m *nats.Msg) {
	var ev lattice.CloudEvent
	if json.Unmarshal(m.Data, &ev) != nil || ev.Source != t.hostID {
		return
	}
	var d struct {
		PublicKey  string `json:"public_key"`
		ImageRef   string `json:"image_ref"`
		InstanceID string `json:"instance_id"`
	}
	typ := strings.TrimPrefix(ev.Type, lattice.EventTypePrefix)
	if typ != lattice.EventActorStarted && typ != lattice.EventActorStopped {
		return
	}
	if json.Unmarshal(ev.Data, &d) != nil || d.PublicKey == "" || d.InstanceID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.folded++
	a := t.running[d.PublicKey]
	switch typ {
	case lattice.EventActorStarted:
		if a == nil {
			a = &trackedActor{ref: d.ImageRef, instances: map[string]bool{}}
			t.running[d.PublicKey] = a
		}
		a.instances[d.InstanceID] = true
	case lattice.EventActorStopped:
		if a != nil {
			delete(a.instances, d.InstanceID)
			if len(a.instances) == 0 {
				delete(t.running, d.PublicKey)
			}
		}
	}
}

// seen is how many events have been folded in; resync takes it.
func (t *actorTracker) seen() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.folded
}

// resync replaces what the tracker knows runs by inv, the host's inventory:
// events were missed (the supervisor's connection was down, or the
// subscription fell behind and NATS dropped some). inv was asked for when
// seen events had been folded in; if more came since, inv may be older
// than they are, and resync changes nothing and reports false.
func (t *actorTracker) resync(inv *lattice.HostInventory, seen uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.folded != seen {
		return false
	}
	t.running = map[string]*trackedActor{}
	for _, d := range inv.Actors {
		a := &trackedActor{ref: d.ImageRef, instances: map[string]bool{}}
		for _, in := range d.Instances {
			a.instances[in.InstanceID] = true
		}
		if len(a.instances) > 0 {
			t.running[d.ID] = a
		}
	}
	return true
}

// hostCrashed moves what ran to the list to start again.
func (t *actorTracker) hostCrashed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, a := range t.running {
		if a.ref != "" && len(a.instances) > 0 {
			t.pending[k] = &trackedActor{ref: a.ref, count: len(a.instances)}
		}
	}
	t.running = map[string]*trackedActor{}
}

// replay starts the pending actors; those that fail stay pending for the
// next host start.
func (t *actorTracker) replay(ctx context.Context, start func(context.Context, string, int) error, log *slog.Logger) {
	t.mu.Lock()
	keys := make([]string, 0, len(t.pending))
	for k := range t.pending {
		keys = append(keys, k)
	}
	t.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		t.mu.Lock()
		a := t.pending[k]
		t.mu.Unlock()
		if a == nil {
			continue
		}
		if err := start(ctx, a.ref, a.count); err != nil {
			log.Error("could not restart an actor on the restarted host", "actor", k, "ref", a.ref, "err", err)
			continue
		}
		t.mu.Lock()
		delete(t.pending, k)
		t.mu.Unlock()
		log.Info("actor restarted on the restarted host", "actor", k, "ref", a.ref, "instances", a.count)
	}
}

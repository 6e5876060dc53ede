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
// own events (actor_started / actor_stopped, one per instance, and
// refmap_set, which a live update sends with the new reference), so that a
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
	// While an inventory is asked for (recording), the events folded in
	// are kept too, to be folded in again over it (resync).
	recording bool
	since     []actorEvent
}

type trackedActor struct {
	ref       string
	instances map[string]bool
	count     int // pending only
}

// actorEvent is an actor_started, actor_stopped or refmap_set event of the
// host's (a live update announces its new reference by refmap_set).
type actorEvent struct {
	typ                  string
	key, ref, instanceID string
}

// maxRecorded bounds the events kept while an inventory is asked for; more
// (a host starting and stopping instances by the thousand meanwhile) make
// resync fail, and the inventory is asked for again.
const maxRecorded = 100_000

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
		OCIURL     string `json:"oci_url"`
		InstanceID string `json:"instance_id"`
	}
	typ := strings.TrimPrefix(ev.Type, lattice.EventTypePrefix)
	if json.Unmarshal(ev.Data, &d) != nil || d.PublicKey == "" {
		return
	}
	e := actorEvent{typ: typ, key: d.PublicKey, ref: d.ImageRef, instanceID: d.InstanceID}
	switch typ {
	case lattice.EventActorStarted, lattice.EventActorStopped:
		if d.InstanceID == "" {
			return
		}
	case lattice.EventRefmapSet:
		if e.ref = d.OCIURL; e.ref == "" {
			return
		}
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fold(e)
	if t.recording && len(t.since) <= maxRecorded { // one more makes resync fail
		t.since = append(t.since, e)
	}
}

// fold applies e. Each event names its instance, so folding one in twice,
// or over an inventory that already shows it, changes nothing.
func (t *actorTracker) fold(e actorEvent) {
	a := t.running[e.key]
	switch e.typ {
	case lattice.EventActorStarted:
		if a == nil {
			a = &trackedActor{ref: e.ref, instances: map[string]bool{}}
			t.running[e.key] = a
		}
		a.instances[e.instanceID] = true
	case lattice.EventActorStopped:
		if a != nil {
			delete(a.instances, e.instanceID)
			if len(a.instances) == 0 {
				delete(t.running, e.key)
			}
		}
	case lattice.EventRefmapSet: // a start's (same reference) or a live update's
		if a != nil {
			a.ref = e.ref
		}
	}
}

// record starts keeping the events folded in, for a resync with an
// inventory asked for from now on.
func (t *actorTracker) record() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recording, t.since = true, nil
}

// stopRecording ends a record whose inventory never came.
func (t *actorTracker) stopRecording() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recording, t.since = false, nil
}

// resync replaces what the tracker knows runs by inv, the host's inventory
// asked for after record: events were missed (the supervisor's connection
// was down, or the subscription fell behind and NATS dropped some). The
// events that came since record are folded in again over inv: the host
// changes what it runs before it announces it, so inv is at least as new
// as every event before record, and may be older than those after it;
// those it already shows change nothing (fold). It reports false, changing
// nothing, if more than maxRecorded came.
func (t *actorTracker) resync(inv *lattice.HostInventory) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	since := t.since
	t.recording, t.since = false, nil
	if len(since) > maxRecorded {
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
	for _, e := range since {
		t.fold(e)
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

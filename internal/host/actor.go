package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// MaxModuleBytes bounds an actor module read from a reference.
const MaxModuleBytes = 64 << 20

// Errors of actor start that callers branch on.
var (
	ErrFileLoadDisabled = errors.New("loading actors from files is disabled: set WASMCLOUD_ALLOW_FILE_LOAD=true")
	ErrIssuerNotAllowed = errors.New("actor issuer is not in LATTICED_ALLOWED_ACTOR_ISSUERS")
	ErrUnsupportedRef   = errors.New("unsupported actor reference")
)

// actor is one actor running on this host: verified claims, compiled module,
// instance pool and its RPC subscription.
type actor struct {
	key  string
	pool *pool
	sub  *nats.Subscription
	// from is where the running module came from and what it claims; a
	// live update replaces both at once (UpdateActor).
	from atomic.Pointer[actorModule]

	mu          sync.Mutex
	annotations map[string]map[string]string // instance id -> annotations
	code        *module                      // the code new instances run; closed with the actor
	removed     bool

	gate  gate        // invocations dispatched to this actor
	srv   *rpc.Server // receives them (Host.newServer)
	calls *callMetrics
}

// actorModule is where an actor's module came from and what it claims.
type actorModule struct {
	ref    string
	claims *trust.ActorClaims
}

// ref is the reference the running module was loaded from.
func (a *actor) ref() string { return a.from.Load().ref }

// claims are the running module's claims.
func (a *actor) claims() *trust.ActorClaims { return a.from.Load().claims }

func (a *actor) name() string { return actorName(a.claims()) }

// actorName is the name in an actor's claims, "" when it has none.
func actorName(c *trust.ActorClaims) string {
	if c.Wascap != nil {
		return c.Wascap.Name
	}
	return ""
}

// infoLabels are the actor's latticed_actor_info labels: key, name, call
// alias, version.
func (a *actor) infoLabels() []string {
	if w := a.claims().Wascap; w != nil {
		return []string{a.key, w.Name, w.CallAlias, w.Ver}
	}
	return []string{a.key, "", "", ""}
}

// loadModule reads the bytes an actor reference points at.
func loadModule(ref string, allowFile bool) ([]byte, error) {
	path, ok := strings.CutPrefix(ref, "file://")
	if !ok {
		if !filepath.IsAbs(ref) && !strings.HasPrefix(ref, "./") && !strings.HasSuffix(ref, ".wasm") {
			return nil, fmt.Errorf("%w %q: want an OCI reference (registry/repo:tag) or a file (file:///path/actor.wasm)", ErrUnsupportedRef, ref)
		}
		path = ref
	}
	if !allowFile {
		return nil, ErrFileLoadDisabled
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read actor module: %w", err)
	}
	defer f.Close()
	// Sized from the file: io.ReadAll alone grows its buffer by copying, a
	// dozen allocations and copies for a Go actor at every start.
	size := int64(bytes.MinRead)
	if fi, err := f.Stat(); err == nil {
		if fi.Size() > MaxModuleBytes {
			return nil, fmt.Errorf("actor module %s is larger than %d bytes", path, MaxModuleBytes)
		}
		size += fi.Size()
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err = buf.ReadFrom(io.LimitReader(f, MaxModuleBytes+1))
	b := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("read actor module %s: %w", path, err)
	}
	if len(b) > MaxModuleBytes {
		return nil, fmt.Errorf("actor module %s is larger than %d bytes", path, MaxModuleBytes)
	}
	return b, nil
}

// verifyModule checks the claims an actor must carry before it may start.
func (h *Host) verifyModule(module []byte) (*trust.ActorClaims, error) {
	claims, err := trust.VerifyActor(module, time.Now())
	if err != nil {
		return nil, fmt.Errorf("actor claims invalid: %w", err)
	}
	if len(h.opts.AllowedActorIssuers) > 0 {
		allowed := false
		for _, iss := range h.opts.AllowedActorIssuers {
			allowed = allowed || iss == claims.Issuer
		}
		if !allowed {
			return nil, fmt.Errorf("%w: %s", ErrIssuerNotAllowed, claims.Issuer)
		}
	}
	return claims, nil
}

// StartActor loads, verifies and starts count instances of the actor at ref.
// Starting an actor already running from the same reference adds instances.
func (h *Host) StartActor(ctx context.Context, ref string, count int, annotations map[string]string) (*trust.ActorClaims, error) {
	if count <= 0 {
		count = 1
	}
	begin := time.Now()
	module, err := h.loadActor(ctx, ref)
	if err != nil {
		return nil, err
	}
	read := time.Now()
	claims, err := h.verifyModule(module)
	if err != nil {
		return nil, err
	}
	// Start-up phases at debug level: where a (cold) start spends its time.
	h.log.Debug("actor module read and verified", "ref", ref, "read_seconds", read.Sub(begin).Seconds(),
		"verify_seconds", time.Since(read).Seconds())
	if err := h.mayStart(ctx, claims); err != nil {
		return claims, err
	}
	return claims, h.startVerified(ctx, ref, module, claims, count, annotations)
}

// mayStart asks the policy service, if there is one, whether the actor with
// these claims may start (or be updated to them).
func (h *Host) mayStart(ctx context.Context, claims *trust.ActorClaims) error {
	if h.policySvc == nil {
		return nil
	}
	exp := time.Now().Add(time.Minute).Unix() // wasmCloud's placeholder source
	src := policy.Source{Capabilities: []string{}, ExpiresAt: &exp}
	_, err := h.policySvc.Decide(ctx, policy.ActionStartActor, src, policy.Target{PublicKey: claims.Subject, Issuer: claims.Issuer})
	return err
}

func (h *Host) startVerified(ctx context.Context, ref string, module []byte, claims *trust.ActorClaims, count int, annotations map[string]string) error {
	unlock, err := h.lifecycle.lock(ctx, claims.Subject)
	if err != nil {
		return err
	}
	defer unlock()
	if a := h.actor(claims.Subject); a != nil {
		if a.ref() != ref {
			return fmt.Errorf("actor %s already runs here from %q; use a live update to change its module", claims.Subject, a.ref())
		}
		live, _ := a.pool.stats()
		return h.scale(ctx, a, live+count, annotations)
	}
	start := time.Now()
	code, upgrade, err := h.runtime.compileTiered(ctx, h.log.With(progress.KeyActor, claims.Subject, progress.KeyName, actorName(claims)),
		module, h.opts.CompileHeadStart)
	if err != nil {
		return err
	}
	compiled := time.Now()
	if code.interpreted {
		h.m.ActorStartDuration.WithLabelValues("interpreted").Observe(time.Since(start).Seconds())
	} else {
		h.observeCompile(time.Since(start), code.cached)
	}
	a := &actor{key: claims.Subject, annotations: map[string]map[string]string{},
		calls: newCallMetrics(h.m, claims.Subject), code: code}
	a.from.Store(&actorModule{ref: ref, claims: claims})
	a.pool = newPool(h.spawner(a, code), h.opts.QueueLength, h.instanceRetired(a))
	a.srv = h.newServer(a)
	// From here on, an upgrade that arrives must be applied or released.
	if upgrade != nil {
		h.upgrades.Add(1)
		go func() {
			defer h.upgrades.Done()
			h.upgradeWhenCompiled(a, code, upgrade, start)
		}()
	}
	if err := h.scale(ctx, a, count, annotations); err != nil {
		h.release(ctx, a)
		return err
	}
	instantiated := time.Now()
	sub, err := h.subscribe(a)
	if err != nil {
		h.release(ctx, a)
		return err
	}
	a.sub = sub
	h.log.Debug("actor serving", "actor", a.key, "compile_seconds", compiled.Sub(start).Seconds(), "cached", code.cached,
		"interpreted", code.interpreted, "instantiate_seconds", instantiated.Sub(compiled).Seconds(),
		"subscribe_seconds", time.Since(instantiated).Seconds())
	h.actorsMu.Lock()
	h.actors[a.key] = a
	running := len(h.actors)
	h.actorsMu.Unlock()
	h.publishModule(ctx, a, code)
	h.m.ActorsRunning.Set(float64(running))
	h.m.ActorInfo.WithLabelValues(a.infoLabels()...).Set(1)
	h.log.Info("actor started", "actor", a.key, "name", a.name(), "ref", ref, "instances", count,
		"compile_seconds", time.Since(start).Seconds(), "interpreted", code.interpreted)
	return nil
}

// publishModule makes the module a runs known: its claims and reference
// map go into the lattice cache (and refmap_set), and the runtime
// remembers the reference's code for the next host to preload.
func (h *Host) publishModule(ctx context.Context, a *actor, code *module) {
	from := a.from.Load()
	h.runtime.rememberRef(from.ref, code.key)
	h.state.putClaims(trust.FlattenActor(from.claims))
	if err := h.cache.Load().putClaims(ctx, trust.FlattenActor(from.claims)); err != nil {
		h.log.Warn("actor claims not written to the lattice cache", "actor", a.key, "err", err)
	}
	if err := h.cache.Load().putRefMap(ctx, RefMap{OCIURL: from.ref, PublicKey: a.key}); err != nil {
		h.log.Warn("reference map not written to the lattice cache", "ref", from.ref, "err", err)
	}
	h.events.publish(lattice.EventRefmapSet, RefMap{OCIURL: from.ref, PublicKey: a.key})
}

// actor returns the running actor with this key, or nil.
func (h *Host) actor(key string) *actor {
	h.actorsMu.Lock()
	defer h.actorsMu.Unlock()
	return h.actors[key]
}

// actorList is a snapshot of the running actors, for work that must not
// hold actorsMu.
func (h *Host) actorList() []*actor {
	h.actorsMu.Lock()
	defer h.actorsMu.Unlock()
	out := make([]*actor, 0, len(h.actors))
	for _, a := range h.actors {
		out = append(out, a)
	}
	return out
}

// WaitCompiled waits until the actor with this key runs compiled code (it
// may have started interpreted, see Options.CompileHeadStart), for callers
// that measure steady-state speed.
func (h *Host) WaitCompiled(ctx context.Context, key string) error {
	for {
		a := h.actor(key)
		if a == nil {
			return fmt.Errorf("actor %s is not running on this host", key)
		}
		a.mu.Lock()
		interpreted := a.code.interpreted
		a.mu.Unlock()
		if !interpreted {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("actor %s still interpreted: %w", key, ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling a compile of seconds
		}
	}
}

// spawner makes instances of a's code, each start bounded by the start
// deadline: guest code runs in it (Go's runtime init, _initialize), and a
// guest that never returns from it must not hold up whoever waits.
func (h *Host) spawner(a *actor, code *module) spawnFunc {
	return func(ctx context.Context, id string) (*instance, error) {
		ctx, cancel := context.WithTimeout(ctx, h.opts.StartTimeout)
		defer cancel()
		in, err := h.runtime.instantiate(ctx, code, id)
		if errors.Is(err, ErrStartTimeout) {
			err = fmt.Errorf("start deadline of %s passed: %w", h.opts.StartTimeout, err)
		}
		if err != nil {
			h.log.Warn("actor instance did not start", "actor", a.key, "ref", a.ref(), "err", err)
		}
		return in, err
	}
}

// upgradeWhenCompiled moves an actor that started interpreted onto the
// compiler's code once it is ready. Until then, and for good if the compiler
// fails where the interpreter did not, the actor keeps serving interpreted.
// A host that stops cancels the compile, which ends this too. Code that
// arrives after the actor stopped, or after a live update replaced the
// interpreted code, is dropped: it is the old module's.
func (h *Host) upgradeWhenCompiled(a *actor, interpreted *module, upgrade <-chan compiled, start time.Time) {
	c := <-upgrade // the compile always ends, promptly once cancelled
	defer h.runtime.interpretedDone()
	if c.err != nil {
		if h.life.Err() == nil {
			h.log.Warn("actor keeps running interpreted: compiling it failed", "actor", a.key, "err", c.err)
		}
		return
	}
	h.observeCompile(time.Since(start), c.m.cached)
	// The lifecycle lock, not a.mu, is held across the instance starts the
	// upgrade makes, so that inventory never waits for them.
	unlock, err := h.lifecycle.lock(h.life, a.key)
	if err != nil {
		c.m.close(context.Background()) // the host is stopping
		return
	}
	defer unlock()
	a.mu.Lock()
	gone := a.removed || a.code != interpreted // stopped, or live-updated, meanwhile
	a.mu.Unlock()
	if gone || !a.pool.upgrade(h.life, c.m, h.spawner(a, c.m)) {
		c.m.close(context.Background())
		return
	}
	// Closing code that instances still run is safe in wazero; the last of
	// them is replaced when its call returns.
	a.mu.Lock()
	a.code.close(context.Background())
	a.code = c.m
	a.mu.Unlock()
	// The interpreted code was most of the heap the start took (~95 MiB
	// for a Go actor); return it to the system now rather than when the
	// scavenger gets to it. Once per cold actor start.
	debug.FreeOSMemory()
	h.log.Info("actor now runs compiled code", "actor", a.key, "compile_seconds", time.Since(start).Seconds())
}

// scale sets the instance count and keeps annotations and metrics in step.
// The caller holds a's lifecycle lock; instance starts happen here, under
// no lock the control interface needs. Instances that fail to start are
// reported as an actor_start_failed event.
func (h *Host) scale(ctx context.Context, a *actor, n int, annotations map[string]string) error {
	before := map[string]bool{}
	for _, id := range a.pool.ids() {
		before[id] = true
	}
	err := a.pool.scale(ctx, n) // those it retires are announced by instanceRetired
	ids := a.pool.ids()
	a.mu.Lock()
	for _, id := range ids {
		if !before[id] {
			a.annotations[id] = annotations
			h.events.publish(lattice.EventActorStarted, map[string]any{
				"public_key": a.key, "image_ref": a.ref(), "api_version": "n/a", "instance_id": id,
				"annotations": lattice.NonNil(annotations), "claims": claimsEventData(a.claims()),
			})
		}
	}
	a.mu.Unlock()
	h.m.ActorInstances.WithLabelValues(a.key).Set(float64(len(ids)))
	if err != nil {
		err = fmt.Errorf("scale actor %s to %d: %w", a.key, n, err)
		if !errors.Is(err, errPoolClosed) {
			h.events.publish(lattice.EventActorStartFailed, map[string]any{
				"actor_ref": a.ref(), "public_key": a.key, "error": err.Error()})
		}
		return err
	}
	return nil
}

// StopActor stops count instances (0 = all) of the actor with this key;
// with annotations, only instances started with every one of those pairs
// (count of them, or all of them with 0). A stop of every instance waits
// for the invocations already delivered to them (each ends within its
// call deadline), holding only the actor's lifecycle lock; an instance
// stopped from among others that is busy stops when its call ends.
func (h *Host) StopActor(ctx context.Context, key string, count int, annotations map[string]string) error {
	unlock, err := h.lifecycle.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	a := h.actor(key)
	if a == nil {
		return fmt.Errorf("actor %s is not running on this host", key)
	}
	live, _ := a.pool.stats()
	if len(annotations) > 0 {
		ids := a.annotated(a.pool.stayingIDs(), annotations)
		if count > 0 && count < len(ids) {
			ids = ids[:count]
		}
		if len(ids) < live {
			n := a.pool.retire(ctx, ids) // each is announced, and counted, by instanceRetired
			if count > 0 && n > 0 {
				h.actorsStopped(a, n, live-n, annotations)
			}
			return nil
		}
		// Every instance goes.
	} else if count > 0 && count < live {
		if err := h.scale(ctx, a, live-count, nil); err != nil {
			return err
		}
		h.actorsStopped(a, count, live-count, annotations)
		return nil
	}
	h.remove(ctx, a)
	if count > 0 {
		h.actorsStopped(a, live, 0, annotations)
	}
	return nil
}

// annotated lists, sorted, those of ids whose instances were started with
// every pair of want.
func (a *actor) annotated(ids []string, want map[string]string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, id := range ids {
		got := a.annotations[id]
		all := true
		for k, v := range want {
			if w, ok := got[k]; !ok || w != v {
				all = false
				break
			}
		}
		if all {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// instanceRetired announces an instance a's pool let go while the actor
// runs on (a scale down, or a broken instance it could not replace): one
// actor_stopped per instance, as for a stop, so that whoever follows the
// events (wash waits for it; the supervisor counts instances by them to
// restart a crashed host's actors) sees the count the inventory shows.
func (h *Host) instanceRetired(a *actor) func(id string) {
	return func(id string) {
		a.mu.Lock()
		annotations := a.annotations[id]
		delete(a.annotations, id)
		if !a.removed { // release marks it, under a.mu, before the gauge goes
			h.m.ActorInstances.WithLabelValues(a.key).Set(float64(len(a.pool.ids())))
		}
		a.mu.Unlock()
		h.events.publish(lattice.EventActorStopped, map[string]any{
			"public_key": a.key, "instance_id": id, "annotations": lattice.NonNil(annotations)})
	}
}

// actorsStarted publishes the batch event of a start, or a scale up, of
// count instances of the actor with these claims, from ref.
func (h *Host) actorsStarted(claims *trust.ActorClaims, ref string, annotations map[string]string, count int) {
	h.events.publish(lattice.EventActorsStarted, map[string]any{"public_key": claims.Subject, "image_ref": ref,
		"annotations": lattice.NonNil(annotations), "host_id": h.id, "claims": claimsEventData(claims), "count": count})
}

// actorsStopped publishes the batch event of a stop of count instances
// (a stop with a count, or a scale down), after its actor_stopped events,
// as wasmCloud does; a stop of every instance (count 0) and a host
// stopping have none.
func (h *Host) actorsStopped(a *actor, count, remaining int, annotations map[string]string) {
	h.events.publish(lattice.EventActorsStopped, map[string]any{
		"host_id": h.id, "public_key": a.key, "count": count, "remaining": remaining,
		"annotations": lattice.NonNil(annotations)})
}

// remove takes a out of the actors map at once (inventory no longer lists
// it), then serves what was delivered to it and closes it. The caller holds
// a's lifecycle lock, so the same actor cannot start again meanwhile.
func (h *Host) remove(ctx context.Context, a *actor) {
	h.actorsMu.Lock()
	if h.actors[a.key] == a {
		delete(h.actors, a.key)
	}
	running := len(h.actors)
	h.actorsMu.Unlock()
	h.m.ActorsRunning.Set(float64(running))
	// Invocations the server already delivered to this host are served, not
	// dropped: drain the subscription, then let them finish, then close.
	drainSubscription(a.sub, drainTimeout)
	a.gate.closeAndWait() // each ends within its call deadline
	ids := a.pool.ids()
	h.release(ctx, a)
	h.m.ActorInstances.DeleteLabelValues(a.key)
	h.m.ActorInfo.DeleteLabelValues(a.infoLabels()...)
	annotations := make([]map[string]string, len(ids))
	a.mu.Lock()
	for i, id := range ids {
		annotations[i] = lattice.NonNil(a.annotations[id])
	}
	a.mu.Unlock()
	for i, id := range ids {
		h.events.publish(lattice.EventActorStopped, map[string]any{
			"public_key": a.key, "instance_id": id, "annotations": annotations[i]})
	}
	h.log.Info("actor stopped", "actor", a.key)
}

// release closes an actor's instances and its code; an upgrade still
// compiling finds it removed. The caller holds a's lifecycle lock.
func (h *Host) release(ctx context.Context, a *actor) {
	a.pool.close(ctx)
	a.mu.Lock()
	a.removed = true
	a.code.close(ctx)
	a.mu.Unlock()
}

func (h *Host) observeCompile(d time.Duration, cached bool) {
	// wazero does not say whether code came from the cache; the warm index
	// expected it there, or a module that compiles in well under the cold
	// time was cached.
	phase := "compile"
	if cached || d < 50*time.Millisecond {
		phase = "cached"
	}
	h.m.ActorStartDuration.WithLabelValues(phase).Observe(d.Seconds())
}

func claimsEventData(c *trust.ActorClaims) map[string]any {
	w := c.Wascap
	if w == nil {
		w = &trust.Actor{}
	}
	human := func(ts int64, none string) string {
		if ts == 0 {
			return none
		}
		return time.Unix(ts, 0).UTC().Format(time.RFC3339)
	}
	return map[string]any{
		"call_alias": w.CallAlias, "caps": w.Caps, "issuer": c.Issuer, "tags": w.Tags, "name": w.Name,
		"version": w.Ver, "revision": trust.ActorRevision(c),
		"not_before_human": human(c.NotBefore, "immediately"), "expires_human": human(c.Expires, "never"),
	}
}

// drainTimeout bounds how long stopping an actor waits for the invocations
// already on their way to it.
const drainTimeout = 5 * time.Second

// drainSubscription stops new deliveries and waits until those already
// buffered have been handed to the callback (or d passes; a connection that
// is closed cannot drain, and then nothing is buffered either).
func drainSubscription(sub *nats.Subscription, d time.Duration) {
	if err := sub.Drain(); err != nil {
		_ = sub.Unsubscribe()
		return
	}
	for deadline := time.Now().Add(d); sub.IsValid() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // nats.go signals drain completion only by invalidating the subscription
	}
}

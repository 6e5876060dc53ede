// Package host is the wasm host: it runs actors under wazero, serves their
// RPC subjects behind the issuer check, routes their outgoing calls, and
// answers the lattice control interface.
//
// It runs as its own process (`latticed host`), a child of the supervisor
// under `latticed up` or alone against an existing NATS server, and imports
// nothing of the supervisor: they meet over NATS and the admin socket
// (docs/architecture.md, "Process tree").
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/latticed/latticed/internal/buildinfo"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// ProviderLauncher starts and stops capability providers on behalf of the
// control interface. The supervisor implements it; nil means this host cannot.
type ProviderLauncher interface {
	LaunchProvider(ctx context.Context, cmd lattice.LaunchProviderCommand) error
	StopProvider(ctx context.Context, cmd lattice.StopProviderCommand) error
	RevokeProvider(ctx context.Context, cmd lattice.StopProviderCommand) error
	Providers() []lattice.ProviderDescription
}

// Options configure a Host: its settings, resolved once by config (see
// config.HostSettings), and what the process hands it. Connections are
// owned by the caller.
type Options struct {
	config.HostSettings

	HostKey    *trust.KeyPair // N…: the host's identity
	ClusterKey *trust.KeyPair // C…: signs outgoing invocations

	RPC *nats.Conn // invocations
	Ctl *nats.Conn // control interface and events

	// CompileHeadStart is how long an actor start waits for optimized code
	// (from the compilation cache, typically) before it starts the actor
	// interpreted and switches it to compiled code when the compiler is
	// done. 0 means 100ms; negative never interprets.
	CompileHeadStart  time.Duration
	HeartbeatInterval time.Duration // default 30s
	FriendlyName      string
	CtlHost, RPCHost  string // reported in host info
	ProvRPCHost       string

	// OCI pulls actors given as OCI references (registry/repo:tag) and keeps
	// the registry credentials registries.put sends; nil: file references only.
	OCI *oci.Client

	Providers ProviderLauncher
	Metrics   *metrics.Metrics
	Logger    *slog.Logger

	// Runtime, when set, is the wasm runtime the host runs actors on and
	// closes when it stops, created before the host (NewRuntime with
	// CompileCacheDir and MemoryLimitPages) so that it can preload actors
	// (Runtime.Preload) while the process connects to NATS; nil: New
	// creates one.
	Runtime *Runtime
}

func (o *Options) setDefaults() error {
	if o.HostKey == nil || o.ClusterKey == nil || o.RPC == nil || o.Ctl == nil {
		return errors.New("host: HostKey, ClusterKey, RPC and Ctl are required")
	}
	o.HostSettings = o.HostSettings.WithDefaults()
	if o.CompileHeadStart == 0 {
		o.CompileHeadStart = 100 * time.Millisecond
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 30 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FriendlyName == "" {
		o.FriendlyName = friendlyName(o.HostKey.PublicKey())
	}
	if !slices.Contains(o.Issuers, o.ClusterKey.PublicKey()) {
		o.Issuers = append([]string{o.ClusterKey.PublicKey()}, o.Issuers...)
	}
	return nil
}

// Host is a lattice node's wasm host.
type Host struct {
	opts      Options
	id        string
	ctl       lattice.Ctl
	runtime   *Runtime
	issuers   *trust.Issuers
	state     *latticeState
	cache     atomic.Pointer[latticeCache] // nil until the cache stream opens (retried in the background)
	cacheOpen chan struct{}                // closed once cache is set
	cacheOnce sync.Once
	policySvc *policy.Service // nil when no policy service is configured
	events    *eventPublisher
	m         *metrics.Metrics
	log       *slog.Logger
	started   time.Time
	ready     chan struct{}

	rejectEvents *rate.Limiter

	// actorsMu guards the actors map only and is never held while anything
	// waits (a compile, an instance start, a call, a drain): inventory,
	// ping and heartbeats take it. Starting, scaling and stopping one actor
	// are serialised by that actor's lifecycle lock instead.
	actorsMu  sync.Mutex
	actors    map[string]*actor
	lifecycle keyLocks

	// life ends when the host stops; control requests and the actor starts
	// they run derive from it, so none outlives the host.
	life    context.Context
	endLife context.CancelFunc

	labelsMu sync.RWMutex
	labels   map[string]string

	upgrades sync.WaitGroup // actors started interpreted, waiting for compiled code
	rpcGate  gate           // invocations being served
	serving  *workers       // the goroutines serving them
	ctlGate  gate           // control requests being answered
	stop     chan struct{}  // closed by a ctl stop command
	stopOnce sync.Once
}

// New creates a host and its wasm runtime. Nothing is subscribed until Run.
func New(ctx context.Context, opts Options) (*Host, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	rt := opts.Runtime
	if rt == nil {
		var err error
		if rt, err = NewRuntime(ctx, opts.CompileCacheDir, opts.MemoryLimitPages); err != nil {
			return nil, err
		}
	}
	rt.log = opts.Logger
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	h := &Host{
		life: life, endLife: endLife, lifecycle: keyLocks{m: map[string]*keyLock{}},
		opts: opts, id: opts.HostKey.PublicKey(), ctl: lattice.NewCtl(opts.CtlTopicPrefix, opts.LatticePrefix),
		runtime: rt, state: newLatticeState(), m: opts.Metrics,
		log:     opts.Logger.With("host", opts.HostKey.PublicKey()),
		started: time.Now(), ready: make(chan struct{}), actors: map[string]*actor{}, cacheOpen: make(chan struct{}),
		labels: map[string]string{}, stop: make(chan struct{}),
		rejectEvents: rate.NewLimiter(rate.Limit(10), 20),
	}
	h.serving = newWorkers(life.Done(), h.serve)
	for k, v := range opts.Labels {
		h.labels[k] = v
	}
	// The core labels win over configured ones of the same name, as in
	// wasmCloud's hosts.
	maps.Copy(h.labels, lattice.CoreLabels(runtime.GOARCH, runtime.GOOS))
	h.issuers = trust.NewIssuers(opts.Issuers,
		trust.WithReplayGuard(trust.NewReplayGuard(opts.ReplayWindow, trust.DefaultReplayCapacity)),
		trust.WithClockSkew(opts.ClockSkew))
	if opts.PolicyTopic != "" {
		h.policySvc = policy.New(opts.Ctl, opts.PolicyTopic, opts.PolicyTimeout, h.policyHost)
		h.policySvc.ObserveDecisions(policy.CountDecisions(h.m.PolicyDecisions))
	}
	h.events = &eventPublisher{nc: opts.Ctl, subject: lattice.Events(opts.LatticePrefix), source: h.id, log: h.log}
	reasons := make([]string, len(lattice.RejectReasons))
	for i, r := range lattice.RejectReasons {
		reasons[i] = string(r)
	}
	h.m.InitRejectReasons(reasons)
	return h, nil
}

// ID is the host's public key.
func (h *Host) ID() string { return h.id }

// Ready is closed once the host answers the control interface.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Stopped is closed when a control-interface stop command asked the host to stop.
func (h *Host) Stopped() <-chan struct{} { return h.stop }

// Run serves the control interface and heartbeats until ctx ends (or a stop
// command arrives), then stops every actor and releases the runtime.
func (h *Host) Run(ctx context.Context) error {
	stopRetry := func() {}
	if err := h.startCache(ctx); err != nil {
		h.log.Warn("lattice cache unavailable; retrying in the background, and refusing link changes until it opens", "err", err)
		retryCtx, cancel := context.WithCancel(ctx)
		retried := make(chan struct{})
		go func() { defer close(retried); h.retryCache(retryCtx) }()
		stopRetry = func() { cancel(); <-retried }
	}
	defer stopRetry() // on early returns; shutdown stops it first otherwise
	// Auto mode on the stream: switch to the bucket once a wasmCloud 0.60+
	// host (or a latticed in kv mode) made it.
	watchCtx, stopWatchCancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); h.watchForData(watchCtx) }()
	stopWatch := func() { stopWatchCancel(); <-watched }
	defer stopWatch()
	subs, err := h.subscribeCtl()
	if err == nil && h.policySvc != nil && h.opts.PolicyChangesTopic != "" {
		var s *nats.Subscription
		if s, err = h.policySvc.SubscribeChanges(h.opts.PolicyChangesTopic, h.log.Warn); err == nil {
			subs = append(subs, s)
		}
	}
	unsubscribe := func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	defer unsubscribe() // on early returns; idempotent
	if err != nil {
		_ = h.runtime.Close(context.WithoutCancel(ctx))
		return err
	}
	if err := h.opts.Ctl.Flush(); err != nil {
		return fmt.Errorf("flush control subscriptions: %w", err)
	}
	h.events.publish(lattice.EventHostStarted, map[string]any{
		"labels": h.labelsCopy(), "friendly_name": h.opts.FriendlyName,
		"uptime_seconds": 0, "version": buildinfo.Version,
	})
	close(h.ready)
	h.log.Info("host ready", "lattice_prefix", h.opts.LatticePrefix, "issuers", strings.Join(h.opts.Issuers, ","))

	tick := time.NewTicker(h.opts.HeartbeatInterval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-h.stop:
			done = true
		case <-tick.C:
			h.heartbeat()
		}
	}
	unsubscribe()
	stopRetry() // a cache opened after shutdown closed it would leak its consumer
	stopWatch()
	return h.shutdown(context.WithoutCancel(ctx))
}

// shutdown stops in dependency order: control requests (they may start
// actors; ending the host's life cancels their compiles and instance
// starts), then each actor (its delivered invocations are served), then
// whatever invocation is still in flight. No compile is waited for: they are
// cancelled first, and end between two functions.
func (h *Host) shutdown(ctx context.Context) error {
	h.endLife()
	h.runtime.cancelCompiles()
	h.ctlGate.closeAndWait()
	for _, a := range h.actorList() {
		if err := h.StopActor(ctx, a.key, 0, nil); err != nil {
			h.log.Warn("actor not stopped cleanly", "actor", a.key, "err", err)
		}
	}
	h.rpcGate.closeAndWait()
	h.upgrades.Wait() // the cancelled compiles deliver their errors promptly
	h.cache.Load().close()
	h.events.publish(lattice.EventHostStopped, map[string]any{"labels": h.labelsCopy()})
	_ = h.opts.Ctl.Flush()
	h.log.Info("host stopped")
	return h.runtime.Close(ctx)
}

// startCache opens the lattice cache and replays it before the host answers
// anything, so its first get.links already knows the lattice's links.
func (h *Host) startCache(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	c, err := h.openCache(cctx)
	if err != nil {
		return err
	}
	h.cache.Store(c)
	h.cacheOnce.Do(func() { close(h.cacheOpen) })
	for _, replayed := range []chan struct{}{c.replayed, c.revsReplayed} {
		select {
		case <-replayed:
		case <-cctx.Done():
			h.log.Warn("lattice cache replay did not finish in time; continuing with what arrived", "timeout", replayTimeout)
			return nil
		}
	}
	return nil
}

// cacheRetry is how often a host without its lattice cache tries again.
const cacheRetry = time.Second

// cacheWait is how long a link change waits for a lattice cache the host is
// still opening (JetStream electing its leaders while a cluster or a node
// starts), as a cache write waits out an election; the control client waits
// longer for the answer (ctlclient.WriteWait).
const cacheWait = jswrite.WriteTimeout

// awaitCache is the lattice cache, waiting up to cacheWait (or ctx) for it
// when the host has not opened it yet; nil if it is still not open.
func (h *Host) awaitCache(ctx context.Context) *latticeCache {
	if c := h.cache.Load(); c != nil {
		return c
	}
	t := time.NewTimer(cacheWait)
	defer t.Stop()
	select {
	case <-h.cacheOpen:
	case <-t.C:
	case <-ctx.Done():
	}
	return h.cache.Load()
}

// retryCache opens the lattice cache once JetStream can serve it (a cluster
// electing a stream leader, a server restarting) and returns when it has, or
// when ctx ends. Until then the host refuses link changes.
func (h *Host) retryCache(ctx context.Context) {
	t := time.NewTicker(cacheRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.startCache(ctx); err == nil {
				h.log.Info("lattice cache opened")
				h.writeRunningToCache(ctx)
				return
			}
		}
	}
}

// writeRunningToCache writes the claims and reference map of every actor
// that started while the cache was not open, so the lattice's cache lists
// them as if the cache had been there all along.
func (h *Host) writeRunningToCache(ctx context.Context) {
	c := h.cache.Load()
	for _, a := range h.actorList() {
		if err := c.putClaims(ctx, trust.FlattenActor(a.claims())); err != nil {
			h.log.Warn("actor claims not written to the lattice cache", "actor", a.key, "err", err)
		}
		if err := c.putRefMap(ctx, RefMap{OCIURL: a.ref(), PublicKey: a.key}); err != nil {
			h.log.Warn("reference map not written to the lattice cache", "ref", a.ref(), "err", err)
		}
	}
}

func (h *Host) labelsCopy() map[string]string {
	h.labelsMu.RLock()
	defer h.labelsMu.RUnlock()
	out := make(map[string]string, len(h.labels))
	for k, v := range h.labels {
		out[k] = v
	}
	return out
}

func (h *Host) uptime() (int64, string) {
	d := time.Since(h.started).Truncate(time.Second)
	return int64(d.Seconds()), d.String()
}

func (h *Host) heartbeat() {
	secs, human := h.uptime()
	actors := map[string]int{}
	h.actorsMu.Lock()
	for k, a := range h.actors {
		live, _ := a.pool.stats()
		actors[k] = live
	}
	h.actorsMu.Unlock()
	providers := []map[string]string{}
	if h.opts.Providers != nil {
		for _, p := range h.opts.Providers.Providers() {
			providers = append(providers, map[string]string{"public_key": p.ID, "link_name": p.LinkName, "contract_id": p.ContractID})
		}
	}
	h.events.publish(lattice.EventHostHeartbeat, map[string]any{
		"actors": actors, "providers": providers, "labels": h.labelsCopy(),
		"friendly_name": h.opts.FriendlyName, "version": buildinfo.Version,
		"uptime_seconds": secs, "uptime_human": human,
	})
}

// eventPublisher sends CloudEvents on the lattice event subject.
type eventPublisher struct {
	nc      *nats.Conn
	subject string
	source  string
	log     *slog.Logger
}

func (e *eventPublisher) publish(eventType string, data any) {
	b, err := lattice.NewEvent(e.source, eventType, data)
	if err == nil {
		err = e.nc.Publish(e.subject, b)
	}
	if err != nil {
		e.log.Warn("publish event failed", "type", eventType, "err", err)
	}
}

// friendlyName derives a stable, readable name from the host key.
func friendlyName(key string) string {
	adjectives := []string{"amber", "brisk", "calm", "dapper", "eager", "fuzzy", "gentle", "hardy", "icy", "jolly", "keen", "lucky", "mellow", "nimble", "odd", "proud"}
	nouns := []string{"otter", "falcon", "badger", "heron", "lynx", "marten", "newt", "osprey", "panda", "quail", "raven", "stoat", "tapir", "vole", "wren", "yak"}
	var n uint32
	for _, c := range key {
		n = n*31 + uint32(c)
	}
	return fmt.Sprintf("%s-%s-%04d", adjectives[n%16], nouns[(n/16)%16], (n/256)%10000)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for values we build ourselves
	}
	return b
}

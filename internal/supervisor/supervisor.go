package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/health"
	"github.com/latticed/latticed/internal/jswrite"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/natsalive"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/internal/policy"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Paths under the data dir that belong to a running supervisor.
const (
	hostStartLimit  = 2 * time.Minute  // a host not ready by then is killed and restarted
	providerStartup = 30 * time.Second // a provider not healthy by then failed its health check
	healthFailures  = 3                // consecutive failed health checks that restart a provider
	revokeObserve   = 10 * time.Second // how long a revocation waits to see the connection closed
	adminCredsNote  = "admin.creds: full access to the lattice account, for latticed ctl and nats --creds (with nats, add --inbox-prefix {inbox_prefix}: providers may read replies sent to _INBOX)"
	modeEmbedded    = "embedded"
	modeExternal    = "external"
)

// Options are what `latticed up` hands its supervisor besides configuration.
type Options struct {
	// Executable is the latticed binary run as `latticed host` and
	// `latticed provider …`; default os.Executable().
	Executable string
	// Environ is the host child's base environment (os.Environ() plus the
	// command line's settings as variables); default os.Environ(). Secrets
	// meant for the supervisor alone are removed before it reaches the child.
	Environ []string
	// StartActors are started on the host once it is first ready.
	StartActors []string
	// Apply, when set, runs once after StartActors (e.g. `up --apply`'s
	// manifest). What StartActors and Apply declare is part of readiness:
	// the node is ready only once they succeeded, and a failure ends Run
	// with an ErrDeclaredStart error unless the configuration tolerates it
	// (LATTICED_TOLERATE_START_FAILURES).
	Apply func(ctx context.Context) error
	// ClusterKey signs invocations (the host loads the same key itself);
	// HostKey is the host's identity, kept across host restarts.
	ClusterKey, HostKey *trust.KeyPair
	Logger              *slog.Logger
	LogLevel            *slog.LevelVar // changed by Reload; may be nil
	Metrics             *metrics.Metrics
}

// Supervisor runs a lattice node: NATS (embedded when none is configured),
// the credential authority, the host and every provider as child processes,
// the admin socket and the metrics endpoint.
//
// Lock order (never take an earlier lock while holding a later one):
// Supervisor.cfgMu → Supervisor.provMu → providerInstance.mu, and
// providerInstance.credMu → providerInstance.mu (never under provMu);
// hostChild.mu, actorTracker.mu, hostLabels.mu and each child.Child's lock
// are leaves.
type Supervisor struct {
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	hostID  string
	ctl     lattice.Ctl
	prefix  string
	started time.Time
	ready   chan struct{}

	cfgMu          sync.Mutex
	set            config.SupervisorSettings // the applied settings (see Reload)
	pendingRestart []string                  // settings the last reload refused

	// Set up by Run before anything else runs.
	runDir     string
	adminPath  string
	mode       string
	ns         *server.Server
	auth       *Authority // nil: no per-user credentials (external NATS without signing keys)
	observer   connObserver
	nc         *nats.Conn         // the supervisor's own connection (lattice account, unrestricted)
	control    *ctlclient.Client  // the control interface over nc: actor starts, labels
	sys        *nats.Conn         // external mode (b): the system account
	natsURL    string             // what children connect to
	alive      *natsalive.Watcher // whether s.nc and s.sys hear from their servers
	health     *health.Server
	adminSrv   *admin.Server
	hostProc   *hostChild
	actors     *actorTracker
	labels     *hostLabels      // the host child's labels, for policy requests
	shared     *Credentials     // external mode without signing keys: WASMCLOUD_PROV_RPC_* for every provider
	oci        *oci.Client      // pulls provider archives; keeps registries.put credentials
	policySvc  *policy.Service  // nil when no policy service is configured (WASMCLOUD_POLICY_TOPIC)
	sigRevs    revocationsIndex // the revocations bucket's entries, pruned when expired (revprune.go)
	consoleURL string           // the web console's, "" when it does not run (console.go)

	// providerStartup is how long a new provider may take to pass its first
	// health check; credsLifetime, when set, overrides the configured
	// lifetime of external provider credentials (tests shorten both).
	providerStartup time.Duration
	credsLifetime   time.Duration
	// delegationLifetime, when set, overrides defaultDelegationTTL (tests).
	delegationLifetime time.Duration

	// fatal carries the one error that ends Run early: a declared start
	// that failed.
	fatal    chan error
	stopping atomic.Bool
	spawnMu  sync.Mutex
	spawns   []spawnRecord // every child process started, for status and tests
	provMu   sync.Mutex
	provs    map[provKey]*providerInstance
	provWG   sync.WaitGroup

	// afterLinksRead, set by tests only, runs in sendLinks between its
	// first read of the lattice and its first sends: the moment a
	// concurrent change of the host's could be overtaken.
	afterLinksRead func()

	// eventsMissed holds a wake-up for followMissedEvents: lattice events
	// were lost to the supervisor (conn.go).
	eventsMissed chan struct{}
}

// New prepares a supervisor with settings resolved by
// config.Config.Supervisor; Run starts it.
func New(set config.SupervisorSettings, opts Options) (*Supervisor, error) {
	if opts.ClusterKey == nil || opts.HostKey == nil {
		return nil, errors.New("supervisor: ClusterKey and HostKey are required")
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the latticed executable: %w", err)
		}
		opts.Executable = exe
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	s := &Supervisor{
		opts: opts, set: set, log: opts.Logger, m: opts.Metrics,
		hostID: opts.HostKey.PublicKey(), prefix: set.Lattice.Prefix,
		ctl:   lattice.NewCtl(set.Lattice.CtlTopicPrefix, set.Lattice.Prefix),
		ready: make(chan struct{}), fatal: make(chan error, 1), eventsMissed: make(chan struct{}, 1), provs: map[provKey]*providerInstance{},
		runDir: datadir.Path(set.Paths.DataDir, datadir.RuntimeDir), adminPath: datadir.AdminSocket(set.Paths.DataDir, set.Paths.AdminSocket),
		providerStartup: providerStartup,
	}
	s.actors = newActorTracker(s.hostID)
	s.labels = newHostLabels(s.hostID, set.Host.Labels)
	for _, st := range providerStates {
		s.m.Providers.WithLabelValues(st)
	}
	reasons := make([]string, len(child.ExitReasons))
	for i, r := range child.ExitReasons {
		reasons[i] = string(r)
	}
	s.m.InitSupervisor(reasons) // alerts on increase() see the first event
	return s, nil
}

// Ready is closed once the host serves the lattice and what was declared at
// start (Options.StartActors, Options.Apply) has succeeded, or failed while
// tolerated.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// HostID is the host's public key, the same across host restarts.
func (s *Supervisor) HostID() string { return s.hostID }

// AdminSocket is the admin socket's path.
func (s *Supervisor) AdminSocket() string { return s.adminPath }

// NATSURL is the URL children connect to (the embedded server's, when embedded).
func (s *Supervisor) NATSURL() string { return s.natsURL }

// MetricsURL is where the node's merged /metrics answers.
func (s *Supervisor) MetricsURL() string { return "http://" + s.health.Addr() + "/metrics" }

// NATSServer is the embedded server, nil with an external NATS.
func (s *Supervisor) NATSServer() *server.Server { return s.ns }

// settings are the applied settings; a reload replaces them whole, so a
// caller holding a value keeps a consistent one.
func (s *Supervisor) settings() config.SupervisorSettings {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return s.set
}

// errHostStopped ends Run without error: a ctl stop command stopped the host.
var errHostStopped = errors.New("host stopped by control command")

// Run starts everything and supervises it until ctx ends (or a control
// command stops the host), then stops gracefully: the host drains its
// in-flight invocations, providers get their shutdown message, and whatever
// is still running after the grace period is killed. It returns nil after a
// clean stop.
func (s *Supervisor) Run(ctx context.Context) (err error) {
	s.started = time.Now()
	set := s.settings()
	unlock, err := s.prepareRuntimeDir()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.startNATS(set); err != nil {
		return err
	}
	s.control = ctlclient.New(s.nc, set.Lattice.CtlTopicPrefix, set.Lattice.Prefix)
	natsalive.AddReconnectHandler(s.nc, s.natsRestored) // conn.go
	natsalive.AddErrorHandler(s.nc, s.natsAsyncError)
	s.m.NATS.Track("supervisor", s.nc)
	if s.sys != nil {
		s.m.NATS.Track("system", s.sys)
	}
	defer func() {
		if s.nc != nil {
			s.nc.Close()
		}
		if s.sys != nil {
			s.sys.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
	}()

	// Readiness tells the truth about NATS from here on: /healthz answers
	// and /readyz says why the node is not ready while no server of the
	// list answers (docs/operations.md, "When NATS fails").
	s.alive = natsalive.New(set.NATS.Keepalive)
	s.alive.Add("supervisor", s.nc)
	if s.sys != nil {
		s.alive.Add("system", s.sys)
	}
	aliveCtx, stopAlive := context.WithCancel(context.WithoutCancel(ctx))
	aliveDone := make(chan struct{})
	go func() { defer close(aliveDone); s.alive.Run(aliveCtx) }()
	defer func() { stopAlive(); <-aliveDone }()
	s.health, err = health.New(set.Health.MetricsAddr, s.metricsHandler(), s.readiness)
	if err != nil {
		return err
	}
	healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); _ = s.health.Run(healthCtx, s.log) }()
	defer func() { stopHealth(); <-healthDone }()
	if err := natsalive.WaitConnected(ctx, s.log, map[string]*nats.Conn{"supervisor": s.nc}); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting: a clean stop
		}
		return err
	}

	if err := s.startArtifacts(set); err != nil { // before anything can launch a provider
		return err
	}
	moveCtx, cancelMove := context.WithTimeout(ctx, jswrite.WriteTimeout)
	if err := s.moveRevocations(moveCtx); err != nil {
		s.log.Warn("signing-key revocations not (all) moved out of the lattice cache; the next start tries again",
			"bucket", lattice.RevocationsBucket(s.prefix), "err", err)
	}
	cancelMove()
	s.hostProc = newHostChild(s) // before the admin socket: the host child reports to it
	if s.adminSrv, err = admin.Listen(s.adminPath, s.answerAdmin, s.log); err != nil {
		return err
	}
	go s.adminSrv.Serve()
	defer s.adminSrv.Close()

	evSub, err := s.nc.Subscribe(lattice.Events(s.prefix), func(m *nats.Msg) {
		s.actors.handle(m)
		s.labels.handle(m)
	})
	if err != nil {
		return fmt.Errorf("subscribe to lattice events: %w", err)
	}
	defer func() { _ = evSub.Unsubscribe() }()
	linkSub, err := s.followLinks() // key-value providers' grants follow their links
	if err != nil {
		return err
	}
	defer func() { _ = linkSub.Unsubscribe() }()
	if err := s.nc.Flush(); err != nil {
		return fmt.Errorf("NATS: %w", err)
	}
	missCtx, stopMissed := context.WithCancel(ctx)
	missedDone := make(chan struct{})
	go func() { defer close(missedDone); s.followMissedEvents(missCtx) }()
	defer func() { stopMissed(); <-missedDone }()
	stopConsole, err := s.startConsole(ctx, set)
	if err != nil {
		return err
	}
	defer stopConsole()

	hostCtx, stopHost := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHost()
	hostDone := make(chan error, 1)
	go func() { hostDone <- s.hostProc.run(hostCtx) }()

	var hostErr, fatal error
	select {
	case <-ctx.Done():
		s.log.Info("stopping the node", "grace", set.Children.StopGrace.String())
	case fatal = <-s.fatal:
		s.log.Error("stopping the node: what it was told to start failed (set "+config.EnvTolerateStartFailures+"=true to run on)",
			"err", fatal, "grace", set.Children.StopGrace.String())
	case hostErr = <-hostDone:
		hostDone <- hostErr // the stop sequence below waits for it again
		if errors.Is(hostErr, errHostStopped) {
			s.log.Info("the host was stopped by a control command; stopping the node", "grace", set.Children.StopGrace.String())
		}
	}
	s.stop(set.Children.StopGrace, stopHost, hostDone)
	if fatal != nil {
		return fatal
	}
	if hostErr != nil && !errors.Is(hostErr, errHostStopped) {
		return hostErr
	}
	return nil
}

// stop is the graceful stop: no new launches; the host drains its
// in-flight invocations and exits; then providers get their shutdown
// message; anything still running when grace is up is killed.
func (s *Supervisor) stop(grace time.Duration, stopHost context.CancelFunc, hostDone <-chan error) {
	s.stopping.Store(true)
	s.notify(notifyStopping)
	deadline := time.Now().Add(grace)
	stopHost()
	<-hostDone
	s.provMu.Lock()
	provs := make([]*providerInstance, 0, len(s.provs))
	for _, p := range s.provs {
		provs = append(provs, p)
	}
	s.provMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range provs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(time.Until(deadline))
		}()
	}
	wg.Wait()
	s.provWG.Wait()
	s.log.Info("node stopped")
}

// prepareRuntimeDir makes the 0700 runtime dir and takes its lock, so two
// supervisors never share a data dir.
func (s *Supervisor) prepareRuntimeDir() (unlock func(), err error) {
	if err := os.MkdirAll(s.runDir, 0o700); err != nil {
		return nil, fmt.Errorf("runtime dir: %w", err)
	}
	if err := os.Chmod(s.runDir, 0o700); err != nil {
		return nil, fmt.Errorf("runtime dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.runDir, datadir.SupervisorLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("runtime dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another latticed up is running with the data dir %s (lock %s held)", filepath.Dir(s.runDir), f.Name())
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}

// startNATS starts the embedded server in operator mode (or connects to the
// configured one) and opens the supervisor's own connection.
func (s *Supervisor) startNATS(set config.SupervisorSettings) error {
	scope := Scope{LatticePrefix: set.Lattice.Prefix, CtlTopicPrefix: set.Lattice.CtlTopicPrefix, JSDomain: set.Lattice.JSDomain,
		PolicyTopic: set.Policy.Topic, PolicyChangesTopic: set.Policy.ChangesTopic}
	if !set.NATS.Endpoints.Embedded {
		return s.startExternal(set, scope)
	}
	s.mode = modeEmbedded
	if err := checkListen(set.NATS.Listen, config.EnvNATSListen); err != nil { // before any operator key is created
		return fmt.Errorf("embedded NATS: %w", err)
	}
	keys, err := LoadOperatorKeys(set.Paths.DataDir)
	if err != nil {
		return err
	}
	store := datadir.Path(set.Paths.DataDir, datadir.JetStreamDir)
	// max_payload stays NATS's default: larger payloads are chunked
	// through the object store (rpc.ChunkThreshold), not sent whole.
	ns, auth, err := StartOperatorNATS(EmbeddedNATS{Listen: set.NATS.Listen, StoreDir: store,
		ProviderCredsLifetime: s.providerCredsLifetime(set)}, keys, scope)
	if err != nil {
		return err
	}
	s.ns, s.auth, s.observer = ns, auth, embeddedObserver{ns}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("embedded NATS has no TCP address")
	}
	s.natsURL = "nats://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
	adminUser, err := auth.Mint(RoleAdmin, "admin", Scope{})
	if err != nil {
		return err
	}
	adminPath := datadir.Path(set.Paths.DataDir, datadir.AdminCredsFile)
	b, err := adminUser.CredsFile()
	if err != nil {
		return err
	}
	if err := datadir.WriteRunSecret(adminPath, b); err != nil { // minted by this run
		return fmt.Errorf("write %s: %w", adminPath, err)
	}
	self, err := auth.Mint(RoleAdmin, "supervisor", Scope{})
	if err != nil {
		return err
	}
	// Its replies (link values, health) go where no provider may subscribe.
	s.nc, err = natsalive.Connect(s.natsURL, config.NATSConn{JWT: self.JWT, Seed: self.Seed}, "latticed-supervisor", s.log,
		append(natsalive.Options(set.NATS.Keepalive), nats.CustomInboxPrefix(self.InboxPrefix))...)
	if err != nil {
		return err
	}
	if err := s.ensureChunkBucket(); err != nil {
		return err
	}
	s.log.Info("embedded NATS server started (operator mode)", "url", s.natsURL, "admin_creds", adminPath,
		"account", auth.Account(), "jetstream", store, "inbox_prefix", self.InboxPrefix, "note", adminCredsNote)
	return nil
}

// readiness is /readyz: NATS connected and the host serving.
func (s *Supervisor) readiness() error {
	if err := s.alive.Check(); err != nil { // first: the host waits for NATS too
		return err
	}
	select {
	case <-s.ready:
	default:
		return errors.New("host starting")
	}
	if !s.nc.IsConnected() {
		return fmt.Errorf("NATS connection is %s", s.nc.Status())
	}
	if st := s.hostProc.status(); st.State != child.StateRunning {
		return fmt.Errorf("host is %s", st.State)
	}
	return nil
}

// onHostReady runs each time the host child reports ready.
func (s *Supervisor) onHostReady(first bool) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlStartTimeout)
	defer cancel()
	if first {
		if err := s.declaredStarts(ctx); err != nil {
			if !s.settings().Children.TolerateStartFailures {
				s.fatal <- err // buffered; sent once: first is true once
				return
			}
			s.log.Warn("running on although a declared start failed ("+config.EnvTolerateStartFailures+")", "err", err)
		}
		close(s.ready)
		s.notify(notifyReady)
		s.log.Info("node ready", "host_id", s.hostID, "cluster_issuer", s.opts.ClusterKey.PublicKey(), "lattice_prefix", s.prefix, "nats_url", s.natsURL,
			"metrics", s.MetricsURL(), "admin_socket", s.adminPath, "console", s.consoleURL)
		// At start: drop the revocations that expired while the node was down.
		if err := s.pruneSigningRevocations(ctx); err != nil {
			s.log.Warn("could not remove expired signing-key revocations", "bucket", lattice.RevocationsBucket(s.prefix), "err", err)
		}
		return
	}
	s.actors.replay(ctx, s.startActor, s.log)
}

// ErrDeclaredStart wraps the failures of what the node was told to start
// with it (Options.StartActors, Options.Apply).
var ErrDeclaredStart = errors.New("declared start failed")

// declaredStarts starts Options.StartActors, then runs Options.Apply, and
// reports every failure.
func (s *Supervisor) declaredStarts(ctx context.Context) error {
	var errs []error
	for _, ref := range s.opts.StartActors {
		if err := s.startActor(ctx, ref, 1); err != nil {
			s.log.Error("start actor failed", "ref", ref, "err", err)
			errs = append(errs, fmt.Errorf("start actor %s: %w", ref, err))
			continue
		}
		s.log.Info("actor started", "ref", ref)
	}
	if s.opts.Apply != nil {
		if err := s.opts.Apply(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrDeclaredStart, err)
	}
	return nil
}

// ctlStartTimeout bounds one actor start through the control interface.
const ctlStartTimeout = 2 * time.Minute

// startActor asks the host, through the control interface, to run count
// instances of ref.
func (s *Supervisor) startActor(ctx context.Context, ref string, count int) error {
	_, err := s.control.StartActor(ctx, s.hostID, lattice.StartActorCommand{ActorRef: ref, Count: count})
	return err
}

// publishEvent emits a lattice event on behalf of this node's host.
func (s *Supervisor) publishEvent(eventType string, data any) {
	b, err := lattice.NewEvent(s.hostID, eventType, data)
	if err == nil {
		err = s.nc.Publish(lattice.Events(s.prefix), b)
	}
	if err != nil {
		s.log.Warn("publish event failed", "type", eventType, "err", err)
	}
}

// Status reports the node as the admin socket's status shows it.
func (s *Supervisor) Status() admin.Status {
	ready := false
	select {
	case <-s.ready:
		ready = true
	default:
	}
	st := admin.Status{
		HostID: s.hostID, LatticePrefix: s.prefix, NATSURL: s.natsURL, Mode: s.mode,
		Revocation: s.revocationStatus(), Ready: ready,
		UptimeSeconds: int64(time.Since(s.started).Seconds()), Providers: s.Providers(),
	}
	if s.hostProc != nil {
		st.Host = s.hostProc.status()
	}
	return st
}

// revocationStatus is "available", or why per-provider revocation is not.
func (s *Supervisor) revocationStatus() string {
	if s.auth != nil && s.auth.CanRevoke() {
		return "available"
	}
	if s.auth != nil {
		return "by expiry: provider credentials are short-lived and not renewed after revocation"
	}
	return "unavailable: providers share the WASMCLOUD_PROV_RPC_* credentials (set " + config.EnvAccountSigningSeed + " to mint a user per provider); revoking only stops the provider and does not restart it"
}

// spawnRecord notes one child process start.
type spawnRecord struct {
	name string
	pid  int
	at   time.Time
}

func (s *Supervisor) recordSpawn(p *child.Process) {
	s.spawnMu.Lock()
	s.spawns = append(s.spawns, spawnRecord{name: p.Name(), pid: p.PID(), at: p.Started()})
	s.spawnMu.Unlock()
}

func (s *Supervisor) spawned() []spawnRecord {
	s.spawnMu.Lock()
	defer s.spawnMu.Unlock()
	return slices.Clone(s.spawns)
}

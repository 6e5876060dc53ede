// Package provider is the capability provider SDK: it turns a Capability (an
// implementation of one contract, such as wasmcloud:keyvalue) into a lattice
// provider process that behaves as wasmCloud's provider SDK does
// (HostData: docs/protocol.md §12).
//
// A host starts the provider and writes HostData on its stdin. The Provider
// connects to the lattice with the NATS user it was handed, receives link
// definitions (first from HostData, then live), answers health checks,
// accepts invocations only from linked actors whose invocations a trusted
// cluster issuer signed, and shuts down gracefully on a shutdown message for
// its host or on SIGTERM/SIGINT. It counts what it does through the Metrics
// its caller gives it, if any, and serves no endpoint of its own: the
// process chooses its metrics library (latticed's providers: Prometheus,
// in internal/providermain):
//
//	func main() {
//		ctx := context.Background()
//		if err := provider.Run(ctx, os.Stdin, mycapability.New(), provider.Config{}); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/trust"
)

// Capability is the implementation of one capability contract. The Provider
// calls its methods; link changes arrive one at a time and in order, while
// Handle runs concurrently with everything, one goroutine per invocation.
type Capability interface {
	// Contract is the contract id, e.g. "wasmcloud:keyvalue".
	Contract() string
	// Start is called once, when the lattice connection is up and before any
	// link or invocation. p stays valid until Close returns.
	Start(ctx context.Context, p *Provider) error
	// PutLink opens what an actor's link needs (a listener, a bucket). It is
	// called for a new link and, after DeleteLink of the old one, for a link
	// whose provider, contract or values changed. On error the link is not
	// recorded, so the actor's invocations are refused and a later put retries.
	PutLink(ctx context.Context, ld lattice.LinkDefinition) error
	// DeleteLink releases what PutLink opened.
	DeleteLink(ctx context.Context, ld lattice.LinkDefinition) error
	// Handle answers one invocation from a linked actor. An error becomes the
	// invocation's error reply; an operation the contract does not know should
	// return ErrUnknownOperation (wrapped, naming it).
	Handle(ctx context.Context, call Call) ([]byte, error)
	// Close releases everything. It is called once, after in-flight
	// invocations finished, while the lattice connection is still open (so
	// outbound calls in progress can complete).
	Close(ctx context.Context) error
}

// HealthChecker is implemented by capabilities that can report themselves
// unhealthy; the returned error is the health reply's message.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Call is one invocation from a linked actor.
type Call struct {
	Operation    string
	Payload      []byte
	Actor        string                 // the calling actor's public key
	Link         lattice.LinkDefinition // that actor's link to this provider
	InvocationID string
	// Conn is the lattice connection the invocation arrived on. It stays
	// open until Handle returns, even when a credential renewal moves the
	// provider to a new connection meanwhile, so lattice calls made for
	// this invocation should use it rather than Provider.Conn.
	Conn *nats.Conn
}

// ErrUnknownOperation is what a capability returns for an operation its
// contract does not have; wrap it with UnknownOperation.
var ErrUnknownOperation = errors.New("unknown operation")

// UnknownOperation is the error for an unsupported operation of contract.
func UnknownOperation(contract, operation string) error {
	return fmt.Errorf("%w %q: %s does not support it", ErrUnknownOperation, operation, contract)
}

// Health is the health-check reply (msgpack): the wire type itself, so a
// field the reply gains is defined once.
type Health = lattice.HealthCheckResponse

// Config configures a Provider. Only HostData is required.
type Config struct {
	// HostData is what the host wrote on stdin (see ReadHostData).
	HostData lattice.HostData
	// Logger receives the provider's logs; nil builds one from HostData
	// (structured_logging → JSON, log_level) writing to LogOutput.
	Logger *slog.Logger
	// LogOutput is where the default logger writes; nil means stderr.
	LogOutput io.Writer
	// MaxConcurrent bounds the invocations handled at once (default 256);
	// further invocations wait in the NATS subscription.
	MaxConcurrent int
	// DrainTimeout bounds each shutdown step: draining in-flight invocations
	// and closing the capability (default 10s).
	DrainTimeout time.Duration
	// ReplayWindow and ClockSkew tune the replay guard as on the host
	// (defaults rpc.DefaultReplayWindow and rpc.DefaultClockSkew).
	ReplayWindow time.Duration
	ClockSkew    time.Duration
	// MaxPayloadBytes refuses bigger invocations unread, chunked ones by
	// their content_length, as the host does; 0 means
	// rpc.DefaultMaxPayloadBytes.
	MaxPayloadBytes int
	// NATSOptions are appended to the connection options (tests, TLS material).
	NATSOptions []nats.Option
	// Metrics receives what the provider counts; nil counts nothing.
	Metrics Metrics
}

// QueueGroup is the queue group of the invocation subscription (the
// wasmCloud SDK's), so several instances of one provider share the load.
const QueueGroup = "rpc"

// Run reads HostData from stdin into cfg, then runs c as a provider until a
// shutdown message for this host, SIGTERM/SIGINT or the end of ctx. A
// graceful end returns nil, so a provider process exits 0. cfg is the one
// way to tune a provider (the zero Config takes every default); its
// HostData is the one read from stdin.
func Run(ctx context.Context, stdin io.Reader, c Capability, cfg Config) error {
	hd, err := ReadHostData(stdin)
	if err != nil {
		return err
	}
	cfg.HostData = *hd
	p, err := New(cfg, c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return p.Run(ctx)
}

// Provider is one running provider instance: a capability attached to the
// lattice under the identity HostData gives it.
type Provider struct {
	cfg      Config
	hd       lattice.HostData
	c        Capability
	log      *slog.Logger
	self     lattice.Entity
	signerMu sync.RWMutex
	signer   trust.Signer // Key is nil when HostData has no invocation_seed; Delegation is renewed
	issuers  *trust.Issuers
	timeout  time.Duration

	ready    chan struct{}
	stopOnce sync.Once
	stop     chan struct{} // closed by a shutdown message
	lost     chan struct{} // closed when the connection closed for good
	lostOnce sync.Once
	abandon  chan struct{}             // closed when draining gave up waiting
	nc       atomic.Pointer[nats.Conn] // the current session's connection
	sess     atomic.Pointer[session]
	creds    *userCreds    // nil: HostData has no user JWT (an open server)
	renewed  chan struct{} // a renewal was applied: hand over to a new connection
	// reconnects counts restorations of the current connection (health
	// replies carry it, lattice.HealthCheckResponse.Reconnects).
	reconnects atomic.Uint64
	sem        chan struct{}
	inflight   sync.WaitGroup
	running    atomic.Bool
	metrics    Metrics

	rejectLogs *rate.Limiter // refusals are logged, but not at an attacker's pace

	linksMu  sync.RWMutex
	links    map[string]lattice.LinkDefinition // by actor key
	outcomes map[string]lattice.LinkOutcome    // by actor key: the last put's outcome
}

// New checks cfg and prepares a provider; nothing connects until Run.
func New(cfg Config, c Capability) (*Provider, error) {
	if c == nil {
		return nil, errors.New("provider: nil capability")
	}
	hd := cfg.HostData
	var missing []string
	for name, v := range map[string]string{"host_id": hd.HostID, "lattice_rpc_prefix": hd.LatticeRPCPrefix,
		"provider_key": hd.ProviderKey, "link_name": hd.LinkName} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", lattice.ErrHostData, strings.Join(missing, ", "))
	}
	if len(hd.ClusterIssuers) == 0 {
		return nil, fmt.Errorf("%w: cluster_issuers is empty, so no invocation could be trusted", lattice.ErrHostData)
	}
	if (hd.LatticeRPCUserJWT == "") != (hd.LatticeRPCUserSeed == "") {
		return nil, fmt.Errorf("%w: lattice_rpc_user_jwt and lattice_rpc_user_seed must be given together", lattice.ErrHostData)
	}
	var creds *userCreds
	if hd.LatticeRPCUserJWT != "" {
		var err error
		if creds, err = newUserCreds(hd.LatticeRPCUserJWT, hd.LatticeRPCUserSeed); err != nil {
			return nil, err
		}
	}
	var signer *trust.KeyPair
	if hd.InvocationSeed != "" {
		// Any key kind: a cluster seed today, a delegated provider key later.
		kp, err := trust.ParseSeed(hd.InvocationSeed)
		if err != nil {
			return nil, fmt.Errorf("%w: invocation_seed: %v", lattice.ErrHostData, err)
		}
		signer = kp
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 256
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = rpc.DefaultReplayWindow
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = rpc.DefaultClockSkew
	}
	timeout := time.Duration(hd.DefaultRPCTimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = rpc.DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		out := cfg.LogOutput
		if out == nil {
			out = os.Stderr
		}
		log = NewLogger(out, hd.StructuredLogging, hd.LogLevel)
	}
	// Identity only: never the seed or the JWT.
	log = log.With("provider", hd.ProviderKey, "contract", c.Contract(), "link_name", hd.LinkName)
	p := &Provider{
		cfg: cfg, hd: hd, c: c, log: log, timeout: timeout, metrics: cfg.Metrics,
		// A delegated key signs with the token that vouches for it; a cluster
		// seed (wasmCloud's way, and compatibility mode) needs none.
		signer: trust.Signer{Key: signer, Delegation: hd.InvocationDelegation},
		self:   lattice.Entity{PublicKey: hd.ProviderKey, ContractID: c.Contract(), LinkName: hd.LinkName},
		ready:  make(chan struct{}), stop: make(chan struct{}), lost: make(chan struct{}), abandon: make(chan struct{}),
		sem: make(chan struct{}, cfg.MaxConcurrent), links: map[string]lattice.LinkDefinition{}, outcomes: map[string]lattice.LinkOutcome{},
		creds: creds, renewed: make(chan struct{}, 1),
		rejectLogs: rate.NewLimiter(rate.Limit(10), 20),
		issuers: trust.NewIssuers(hd.ClusterIssuers,
			trust.WithReplayGuard(trust.NewReplayGuard(cfg.ReplayWindow, trust.DefaultReplayCapacity)),
			trust.WithClockSkew(cfg.ClockSkew)),
	}
	return p, nil
}

// NewLogger builds the logger HostData asks for: JSON when structured,
// text otherwise, at level ("trace"/"debug", "info", "warn", "error"; info
// when unknown).
func NewLogger(w io.Writer, structured bool, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "trace", "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error", "critical":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if structured {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Ready is closed once the provider serves invocations.
func (p *Provider) Ready() <-chan struct{} { return p.ready }

// Logger is the provider's logger, tagged with its identity.
func (p *Provider) Logger() *slog.Logger { return p.log }

// Entity is this provider instance as an invocation origin.
func (p *Provider) Entity() lattice.Entity { return p.self }

// LatticePrefix is the lattice this provider serves.
func (p *Provider) LatticePrefix() string { return p.hd.LatticeRPCPrefix }

// LinkName is this instance's link name.
func (p *Provider) LinkName() string { return p.hd.LinkName }

// RPCTimeout is the host's default_rpc_timeout_ms (or rpc.DefaultTimeout).
func (p *Provider) RPCTimeout() time.Duration { return p.timeout }

// JSDomain is the JetStream domain from HostData ("" for none).
func (p *Provider) JSDomain() string {
	if p.hd.JSDomain == nil {
		return ""
	}
	return *p.hd.JSDomain
}

// Conn is the lattice connection; nil before Run connects.
func (p *Provider) Conn() *nats.Conn { return p.nc.Load() }

// Links returns the current links.
func (p *Provider) Links() []lattice.LinkDefinition {
	p.linksMu.RLock()
	defer p.linksMu.RUnlock()
	out := make([]lattice.LinkDefinition, 0, len(p.links))
	for _, ld := range p.links {
		out = append(out, ld)
	}
	return out
}

// Shutdown starts the graceful shutdown a shutdown message would.
func (p *Provider) Shutdown() { p.stopOnce.Do(func() { close(p.stop) }) }

// Run connects, serves until ctx ends or a shutdown message for this host
// arrives, then drains: no new invocations, in-flight ones finish, the
// capability closes, the connection closes. A graceful end returns nil.
func (p *Provider) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("provider: Run called twice")
	}
	nc, err := p.connect(ctx)
	if err != nil || nc == nil {
		return err // nil when ctx ended first
	}
	// Renewals replace the connection: close whichever is current.
	defer func() { p.Conn().Close() }()
	p.nc.Store(nc)
	p.metrics.Conn(nc)

	if err := p.c.Start(ctx, p); err != nil {
		return fmt.Errorf("start %s provider: %w", p.c.Contract(), err)
	}
	err = p.serve(ctx, nc)
	p.closeCapability(ctx)
	if nc := p.Conn(); nc != nil {
		if ferr := nc.FlushTimeout(time.Second); ferr != nil && err == nil && nc.IsConnected() {
			p.log.Warn("flush lattice connection at shutdown", "err", ferr)
		}
	}
	if err == nil {
		p.log.Info("provider stopped")
	}
	return err
}

// connect dials the lattice and retries forever (as reconnects do) until the
// first connection succeeds or ctx ends.
func (p *Provider) connect(ctx context.Context) (*nats.Conn, error) {
	url := p.url()
	connected := make(chan struct{})
	var once sync.Once
	opts := append(p.natsOptions(true), nats.ConnectHandler(func(*nats.Conn) { once.Do(func() { close(connected) }) }))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to lattice at %s: %w", url, err)
	}
	if nc.IsConnected() {
		once.Do(func() { close(connected) })
	}
	select {
	case <-connected:
		p.log.Info("connected to lattice", "url", nc.ConnectedUrlRedacted(), "host_id", p.hd.HostID, "instance_id", p.hd.InstanceID)
		return nc, nil
	case <-p.lost:
		return nil, fmt.Errorf("connect to lattice at %s: %v", url, nc.LastError())
	case <-ctx.Done():
		nc.Close()
		return nil, nil
	}
}

// url is the lattice's NATS addresses from HostData: latticed's list of
// every server when the host sent one, else wasmCloud's single address.
func (p *Provider) url() string {
	if len(p.hd.LatticeRPCURLs) > 0 {
		return strings.Join(p.hd.LatticeRPCURLs, ",")
	}
	if p.hd.LatticeRPCURL == "" {
		return "127.0.0.1:4222" // the OTP host's default
	}
	return p.hd.LatticeRPCURL
}

// natsOptions are the options of every lattice connection: the first one
// (retrying until it succeeds) and those a renewal hands over to (which
// fail at once, so the current connection is kept).
func (p *Provider) natsOptions(first bool) []nats.Option {
	opts := []nats.Option{
		nats.Name(fmt.Sprintf("provider %s %s %s", p.c.Contract(), p.hd.LinkName, p.hd.InstanceID)),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.RetryOnFailedConnect(first),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if err != nil && c == p.Conn() { // nil: we closed it
				p.log.Warn("lattice connection lost; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			if c == p.Conn() { // link definitions sent while it was lost are gone: health replies say so
				p.reconnects.Add(1)
			}
			p.log.Info("lattice connection restored", "url", c.ConnectedUrlRedacted())
		}),
		// Reconnects never stop, so a close we did not ask for is final:
		// typically the server refusing our credentials (a revoked user).
		// A connection a renewal replaced is closed on purpose: not that.
		nats.ClosedHandler(func(c *nats.Conn) {
			if cur := p.Conn(); cur == nil || cur == c {
				p.lostOnce.Do(func() { close(p.lost) })
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			p.log.Warn("lattice connection error", "subject", subj, "err", err)
		}),
	}
	// Keepalive as the host says (HostData), so a frozen server is given
	// up in seconds and another server of the list tried.
	interval, misses := time.Duration(p.hd.NATSPingIntervalMS)*time.Millisecond, p.hd.NATSPingMisses
	if interval <= 0 || misses < 1 {
		interval, misses = lattice.DefaultNATSPingInterval, lattice.DefaultNATSPingMisses
	}
	opts = append(opts, nats.PingInterval(interval), nats.MaxPingsOutstanding(misses))
	if p.creds != nil {
		// The JWT is asked for at each (re)connect, so it is always the
		// latest renewal, never the one HostData carried.
		opts = append(opts, nats.UserJWT(p.creds.current, p.creds.sign))
	}
	if p.hd.LatticeRPCTLS {
		opts = append(opts, nats.Secure())
	}
	if p.hd.InboxPrefix != "" { // our user may subscribe to replies there only
		opts = append(opts, nats.CustomInboxPrefix(p.hd.InboxPrefix))
	}
	return append(opts, p.cfg.NATSOptions...)
}

// subscribe makes the provider's subscriptions on nc: link definitions
// (puts and dels into the session's one channel, so they stay in order),
// health, shutdown, delegation and credentials, and with rpc its
// invocations.
func (p *Provider) subscribe(nc *nats.Conn, perms *jwt.Permissions, rpc bool) (*session, error) {
	prefix, key, link := p.hd.LatticeRPCPrefix, p.hd.ProviderKey, p.hd.LinkName
	s := newSession(nc, perms)
	fail := func(subj string, err error) (*session, error) {
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		return nil, fmt.Errorf("subscribe %s: %w", subj, err)
	}
	for _, subj := range []string{lattice.RPCLinkdefPut(prefix, key, link), lattice.RPCLinkdefDel(prefix, key, link)} {
		sub, err := nc.ChanSubscribe(subj, s.links)
		if err != nil {
			return fail(subj, err)
		}
		s.subs = append(s.subs, sub)
	}
	handlers := map[string]nats.MsgHandler{
		lattice.RPCHealth(prefix, key, link):     p.handleHealth,
		lattice.RPCShutdown(prefix, key, link):   p.handleShutdown,
		lattice.RPCDelegation(prefix, key, link): p.handleDelegation,
	}
	if p.creds != nil {
		handlers[lattice.RPCCredentials(prefix, key, link)] = p.handleCredentials
	}
	for subj, h := range handlers {
		sub, err := nc.Subscribe(subj, h)
		if err != nil {
			return fail(subj, err)
		}
		s.subs = append(s.subs, sub)
	}
	if rpc {
		if err := p.subscribeRPC(s); err != nil {
			return fail(lattice.RPCProvider(prefix, key, link), err)
		}
	}
	if err := nc.Flush(); err != nil {
		if s.rpcSub != nil {
			_ = s.rpcSub.Unsubscribe()
		}
		return fail("(flush)", err)
	}
	return s, nil
}

// serve subscribes, replays HostData's links, serves until the end, and
// drains invocations. The capability is closed by the caller.
func (p *Provider) serve(ctx context.Context, nc *nats.Conn) error {
	sess, err := p.subscribe(nc, p.creds.permissions(), false)
	if err != nil {
		return err
	}
	p.sess.Store(sess)
	// Link changes wait for nothing but may take a while (a key-value link
	// waits for its bucket's grant); a shutdown cuts that short.
	linkCtx, cancelLinks := context.WithCancel(ctx)
	defer cancelLinks()
	go func() {
		select {
		case <-p.stop:
		case <-p.lost:
		case <-linkCtx.Done():
		}
		cancelLinks()
	}()
	for _, ld := range p.hd.LinkDefinitions {
		p.putLink(linkCtx, ld, "host data")
	}
	if err := p.subscribeRPC(sess); err != nil {
		return fmt.Errorf("subscribe %s: %w", lattice.RPCProvider(p.hd.LatticeRPCPrefix, p.hd.ProviderKey, p.hd.LinkName), err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("flush subscriptions: %w", err)
	}
	close(p.ready)
	p.log.Info("provider ready", "subject", sess.rpcSub.Subject, "links", len(p.hd.LinkDefinitions))

	quitHandovers := make(chan struct{})
	handoversDone := make(chan struct{})
	// A handover in progress at shutdown still lets the old connection's
	// invocations finish (bounded by DrainTimeout).
	go func() {
		defer close(handoversDone)
		p.runHandovers(context.WithoutCancel(ctx), quitHandovers)
	}()

	feed := &linkFeed{p: p, cur: sess}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			p.log.Info("shutting down: signal or context ended")
			done = true
		case <-p.stop:
			p.log.Info("shutting down: shutdown message from the host")
			done = true
		case <-p.lost:
			err = fmt.Errorf("lattice connection closed: %v", p.Conn().LastError())
			p.log.Error("stopping: the lattice connection is gone for good", "err", p.Conn().LastError())
			done = true
		case m := <-feed.cur.links:
			feed.apply(linkCtx, m)
		case <-feed.cur.linksDone:
			feed.switchSession(linkCtx)
		}
	}
	close(quitHandovers)
	<-handoversDone
	cur := p.sess.Load()
	p.drain(cur.rpcSub)
	for _, s := range cur.subs {
		_ = s.Unsubscribe()
	}
	return err
}

// drain stops new invocations and waits, bounded, for the ones in flight.
func (p *Provider) drain(sub *nats.Subscription) {
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	timeout := time.NewTimer(p.cfg.DrainTimeout)
	defer timeout.Stop()
	if err := sub.Drain(); err == nil {
		select {
		case <-closed:
		case <-timeout.C:
			p.log.Warn("invocation subscription did not drain in time", "timeout", p.cfg.DrainTimeout)
			close(p.abandon)
			_ = sub.Unsubscribe()
			return
		}
	}
	done := make(chan struct{})
	go func() { p.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-timeout.C:
		close(p.abandon)
		p.log.Warn("in-flight invocations did not finish in time", "timeout", p.cfg.DrainTimeout)
	}
}

func (p *Provider) closeCapability(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DrainTimeout)
	defer cancel()
	if err := p.c.Close(cctx); err != nil {
		p.log.Warn("close capability", "err", err)
	}
}

func (p *Provider) handleHealth(m *nats.Msg) {
	h := Health{Healthy: true}
	if hc, ok := p.c.(HealthChecker); ok {
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		err := hc.Health(ctx)
		cancel()
		if err != nil {
			h = Health{Healthy: false, Message: err.Error()}
		}
	}
	// A refused link leaves the provider healthy (it serves its other
	// links, and a restart would not free a taken port): it is reported
	// beside the verdict, for the supervisor and `up --apply`.
	h.ReportsLinks, h.Links, h.Reconnects = true, p.LinkOutcomes(), p.reconnects.Load()
	b, err := lattice.Marshal(&h)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		p.log.Warn("health reply", "err", err)
	}
}

// shutdownRequest is the shutdown subject's JSON body.
type shutdownRequest struct {
	HostID string `json:"host_id"`
}

func (p *Provider) handleShutdown(m *nats.Msg) {
	var req shutdownRequest
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, &req); err != nil {
			p.log.Warn("ignoring malformed shutdown request", "err", err)
			return
		}
	}
	if req.HostID != "" && req.HostID != p.hd.HostID {
		p.log.Debug("ignoring shutdown request for another host", "for_host", req.HostID)
		return
	}
	if m.Reply != "" {
		if err := m.Respond([]byte("shutting down")); err != nil {
			p.log.Warn("shutdown reply", "err", err)
		}
	}
	p.Shutdown()
}

// handleDelegation takes a renewed delegation token for this instance's
// signing key. Anything else (another key's token, garbage) is ignored: the
// hosts verify every token anyway, this only keeps a wrong one from
// replacing a good one. The supervisor sends its current token again with
// each health check (a renewal sent while this provider was between
// connections is lost), so a repeat of the token held is ignored quietly,
// and so is one that expires no later than it.
func (p *Provider) handleDelegation(m *nats.Msg) {
	token := string(m.Data)
	p.signerMu.Lock()
	defer p.signerMu.Unlock()
	if token == p.signer.Delegation {
		return
	}
	c, err := trust.ParseJWT[trust.Delegation](token)
	if err != nil || p.signer.Key == nil || c.Subject != p.signer.Key.PublicKey() {
		p.log.Warn("ignoring a delegation token not meant for this instance", "err", err)
		return
	}
	if held, err := trust.ParseJWT[trust.Delegation](p.signer.Delegation); err == nil && c.Expires <= held.Expires {
		p.log.Debug("ignoring a delegation token that expires no later than the one held",
			"expires", time.Unix(c.Expires, 0).UTC(), "held_expires", time.Unix(held.Expires, 0).UTC())
		return
	}
	p.signer.Delegation = token
	p.log.Debug("delegation renewed", "expires", time.Unix(c.Expires, 0).UTC())
}

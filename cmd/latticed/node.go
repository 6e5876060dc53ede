package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/admin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/cpuprofile"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/health"
	"github.com/latticed/latticed/internal/host"
	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/internal/memreturn"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/natsalive"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/internal/supervisor"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func newUpCmd() *cobra.Command {
	var actors []string
	var apply string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a lattice node: NATS when none is configured, the wasm host and providers as supervised processes, metrics",
		Long: `up runs a whole lattice node as a supervisor: it starts the wasm host
(latticed host) and every provider as child processes, each with its own NATS
user, restarts them when they crash, and stops them all on SIGTERM/SIGINT.
SIGHUP reloads the log level and host labels.

With no NATS server configured it is a lattice of one: an embedded NATS server
with JetStream on loopback (LATTICED_NATS_LISTEN) in operator mode, data under
LATTICED_DATA_DIR, an ad hoc cluster key saved in the data dir (its public
key and file are logged, never the seed: latticed keys show cluster prints
it), prefix "default", metrics on LATTICED_METRICS_ADDR, and
{data dir}/creds/admin.creds for latticed ctl and the nats CLI.

What --start-actor and --apply declare is part of readiness: /readyz answers
200 (and systemd hears READY=1) only once every actor runs and every manifest
item is in place, each provider running. If any of it fails, up stops and
exits with status 1, naming what failed; with
LATTICED_TOLERATE_START_FAILURES=true (--tolerate-start-failures) it logs the
failure and runs on.

On a restart with the same data dir, the host loads the compiled code of the
--start-actor files from {data dir}/compile-cache while it connects, so they
serve soon after the host is ready.

With LATTICED_CPUPROFILE_DIR set, the supervisor (with its embedded NATS
server), the host and every built-in provider each write a CPU profile of
their run to that directory when they stop ({role}-{pid}.pprof, read with
go tool pprof); off by default.

Long steps (an actor's first compile, an OCI pull) log a start and an end
line with sizes and seconds. At a terminal with text logs, the steps in
progress also show on a status line under the logs, and start-up ends with a
banner of where the HTTP actors of --apply, the metrics and the console are
(in logs: the "node serves" line).

The web console (LATTICED_CONSOLE_ADDR, default 127.0.0.1:4000; empty turns
it off) shows the lattice's hosts, actors, providers and links, follows its
events live, and starts, scales and stops actors, puts and deletes links and
revokes providers through the control interface. It is an admin surface: off
loopback, up refuses to start unless LATTICED_CONSOLE_TOKEN=true, which makes
the console ask for the token it writes to {data dir}/console.token (0600);
the log names that file, never the token.

To add a node to this lattice, start it with the same WASMCLOUD_LATTICE_PREFIX
and WASMCLOUD_CLUSTER_ISSUERS, its own WASMCLOUD_CLUSTER_SEED, and
WASMCLOUD_RPC_HOST/WASMCLOUD_CTL_HOST pointing at this node's NATS server.

Environment:
` + config.EnvHelp(),
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error { return runUp(cmd, actors, apply) },
	}
	config.RegisterFlags(cmd.Flags())
	cmd.Flags().StringArrayVar(&actors, "start-actor", nil, "start this actor (file:// reference; needs WASMCLOUD_ALLOW_FILE_LOAD) once the host serves; repeatable. The node is ready once it runs; a failure exits 1 unless LATTICED_TOLERATE_START_FAILURES")
	cmd.Flags().StringVar(&apply, "apply", "", "apply this manifest (see latticed apply --help) once the host serves. The node is ready once every item is in place; a failure exits 1 unless LATTICED_TOLERATE_START_FAILURES")
	return cmd
}

func newHostCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Run only the wasm host, against a NATS server that is already running",
		Long: `host runs the wasm host: actors, the control interface and the issuer check.
It connects to WASMCLOUD_RPC_* and WASMCLOUD_CTL_* (default: the address in
LATTICED_NATS_LISTEN, 127.0.0.1:4222) and never starts a NATS server itself.
latticed up runs it as a child; with LATTICED_ADMIN_SOCKET it asks that
supervisor to launch and stop providers. SIGHUP reloads the log level.

Environment:
` + config.EnvHelp(),
		Args: exactArgs(),
		RunE: runHost,
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

// runUp runs the supervisor until the context ends or the host is stopped
// by a control command.
func runUp(cmd *cobra.Command, startActors []string, applyPath string) error {
	cfg, warnings, err := config.Load(cmd.Flags(), os.LookupEnv)
	if err != nil {
		return usageError{err}
	}
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	stderr := cmd.ErrOrStderr()
	terminal := !jsonLogs(cfg, stderr) && progress.IsTerminal(stderr)
	var log *slog.Logger
	if terminal {
		// A person reads: the long steps (a first compile, a pull), the
		// host child's included, show on a status line kept under the logs.
		line := progress.New(stderr)
		stderr = line
		log = slog.New(progress.Follow(slog.NewTextHandler(line, &slog.HandlerOptions{Level: level}), line))
		lineCtx, stopLine := context.WithCancel(cmd.Context())
		lineDone := make(chan struct{})
		go func() { defer close(lineDone); line.Run(lineCtx, statusInterval) }()
		defer func() { stopLine(); <-lineDone }()
	} else {
		log = newLogger(cfg, stderr, level)
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	softMemoryLimit(log)
	if err := telemetry.CheckEnv(os.LookupEnv); err != nil {
		return usageError{err}
	}
	stopProfile, err := cpuprofile.Start(os.LookupEnv, "supervisor")
	if err != nil {
		return usageError{err}
	}
	defer stopProfile()
	var m *manifest.Manifest
	if applyPath != "" {
		if m, err = manifest.Load(applyPath); err != nil {
			return usageError{err}
		}
	}
	// The supervisor's settings, resolved once; it never sees cfg.
	set := cfg.Supervisor()
	// A taken port fails now, before any key or file is created.
	if err := supervisor.CheckAddrs(set); err != nil {
		return err
	}
	clusterKey, hostKey, err := nodeKeys(cfg, log)
	if err != nil {
		return err
	}
	var sup *supervisor.Supervisor
	var apply func(context.Context) error
	if m != nil { // part of readiness: the node is ready once it is applied
		apply = func(ctx context.Context) error { return applyManifest(ctx, sup, cfg, m, log) }
	}
	sup, err = supervisor.New(set, supervisor.Options{
		Environ: childEnviron(cmd.Flags()), StartActors: startActors, Apply: apply,
		ClusterKey: clusterKey, HostKey: hostKey, Logger: log, LogLevel: level, Metrics: metrics.New(),
	})
	if err != nil {
		return err
	}
	stopReload := onSIGHUP(func() {
		next, _, err := config.Load(cmd.Flags(), os.LookupEnv)
		if err != nil {
			log.Error("configuration not reloaded", "err", err)
			return
		}
		if err := sup.Reload(next.Supervisor()); err != nil {
			if errors.Is(err, supervisor.ErrReloadRefused) {
				log.Error("configuration not reloaded: nothing was applied", "err", err)
			} else {
				log.Warn("configuration reloaded with errors", "err", err)
			}
			return
		}
		log.Info("configuration reloaded")
	})
	defer stopReload()
	ctx, stopBanner := context.WithCancel(cmd.Context())
	bannerDone := make(chan struct{})
	go func() { defer close(bannerDone); readyBanner(ctx, sup, m, stderr, terminal, log) }()
	defer func() { stopBanner(); <-bannerDone }()
	return sup.Run(ctx)
}

// statusInterval is how often the terminal's status line counts up.
const statusInterval = 200 * time.Millisecond

// applyManifest applies the manifest once the supervisor's host serves, as
// the operator (admin credentials) of a lattice of one, else with the
// control interface's credentials, and logs each item's outcome.
func applyManifest(ctx context.Context, sup *supervisor.Supervisor, cfg *config.Config, m *manifest.Manifest, log *slog.Logger) error {
	auth := cfg.CTL
	if creds := datadir.Path(cfg.DataDir, datadir.AdminCredsFile); fileExists(creds) {
		auth = config.NATSConn{CredsFile: creds}
	}
	nc, err := natsalive.Connect(sup.NATSURL(), auth, "latticed-apply", log, natsalive.OperatorInbox(auth, cfg.LatticePrefix)...)
	if err != nil {
		return fmt.Errorf("apply manifest: %w", err)
	}
	defer nc.Close()
	steps, err := manifest.Apply(ctx, ctlclient.New(nc, cfg.CtlTopicPrefix, cfg.LatticePrefix), m, 2*time.Second, manifestClaims(cfg))
	for _, st := range steps {
		level := slog.LevelInfo
		if st.Action == "failed" {
			level = slog.LevelError
		}
		log.Log(ctx, level, "manifest applied", "kind", st.Kind, "ref", st.Ref, "key", st.Key, "host_id", st.HostID,
			"action", st.Action, "reason", st.Reason)
	}
	if err != nil {
		log.Error("manifest not fully applied", "err", err)
		return fmt.Errorf("apply manifest: %w", err)
	}
	return nil
}

// childEnviron is the environment a host child starts from: ours, plus the
// settings given as flags, as the variables they stand for (flags on a
// child's command line would be visible to every local user).
func childEnviron(fs *pflag.FlagSet) []string {
	env := os.Environ()
	fs.Visit(func(f *pflag.Flag) {
		if f.Name == "label" {
			kvs, _ := fs.GetStringArray("label")
			for _, kv := range kvs {
				if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
					env = append(env, config.EnvLabelPrefix+strings.ToUpper(k)+"="+v)
				}
			}
			return
		}
		name, ok := config.FlagEnv(f.Name)
		if !ok {
			return
		}
		val := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			val = strings.Join(sv.GetSlice(), ",")
		}
		env = append(env, name+"="+val)
	})
	return env
}

// onSIGHUP calls fn for every SIGHUP until the returned stop is called.
func onSIGHUP(fn func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// runHost wires configuration, NATS, keys, metrics and the wasm host, and
// runs it until the context ends or a control command stops it.
func runHost(cmd *cobra.Command, _ []string) error {
	cfg, warnings, err := config.Load(cmd.Flags(), os.LookupEnv)
	if err != nil {
		return usageError{err}
	}
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	log := newLogger(cfg, cmd.ErrOrStderr(), level)
	if cfg.AdminSocket != "" && jsonLogs(cfg, cmd.ErrOrStderr()) {
		// A supervisor's child: how far a pull got reaches the supervisor,
		// which shows it at its terminal (package progress).
		log = slog.New(progress.Relay(log.Handler()))
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	softMemoryLimit(log)
	ctx := cmd.Context()
	stopTracing, err := startTracing(ctx, telemetry.ServiceHost, log)
	if err != nil {
		return usageError{err}
	}
	defer stopTracing()
	stopProfile, err := cpuprofile.Start(os.LookupEnv, "host")
	if err != nil {
		return usageError{err}
	}
	defer stopProfile()
	stopReload := onSIGHUP(func() {
		next, _, err := config.Load(cmd.Flags(), os.LookupEnv)
		if err != nil {
			log.Error("configuration not reloaded", "err", err)
			return
		}
		if next.LogLevel != cfg.LogLevel {
			log.Info("log level changed", "from", cfg.LogLevel, "to", next.LogLevel)
		}
		level.Set(next.SlogLevel())
	})
	defer stopReload()

	// Credentials a registries.put sent before a restart still log in.
	ociClient := oci.New(oci.NodeSettings(cfg, log))
	if _, err := ociClient.LoadCredentials(); err != nil {
		return err
	}

	// Under a supervisor: providers are its business, and the users it
	// minted for us read replies on private inboxes.
	var launcher host.ProviderLauncher
	var sup *admin.Client
	var rpcOpts, ctlOpts []nats.Option
	// The wasm runtime comes first, so that it can load the code of the
	// actors it will be asked to start while the connections below are
	// made (host.Runtime.Preload); the host closes it, or this function
	// when it fails before there is a host.
	hostSet := cfg.Host().WithDefaults()
	wasmRT, err := host.NewRuntime(ctx, hostSet.CompileCacheDir, hostSet.MemoryLimitPages)
	if err != nil {
		return err
	}
	var hostOwnsRuntime bool
	defer func() {
		if !hostOwnsRuntime {
			_ = wasmRT.Close(context.WithoutCancel(ctx))
		}
	}()
	if cfg.AdminSocket != "" {
		sup = admin.NewClient(cfg.AdminSocket, log)
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		hs, err := sup.HostHello(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("supervisor (%s): %w", config.EnvAdminSocket, err)
		}
		if hs.RPCInboxPrefix != "" {
			rpcOpts = append(rpcOpts, nats.CustomInboxPrefix(hs.RPCInboxPrefix))
		}
		if hs.CtlInboxPrefix != "" {
			ctlOpts = append(ctlOpts, nats.CustomInboxPrefix(hs.CtlInboxPrefix))
		}
		wasmRT.Preload(log, hs.Preload, hostSet.AllowFileLoad)
		launcher = sup
	}

	ep := cfg.Endpoints()
	rpcConn, ctlConn := ep.RPC, ep.Ctl
	// Users not minted by a supervisor (an external NATS): the private
	// inboxes too, where their permissions allow them.
	if len(rpcOpts) == 0 {
		rpcOpts = natsalive.PrivateInbox(rpcConn, lattice.PrivateInbox(cfg.LatticePrefix, lattice.InboxHostRPC))
	}
	if len(ctlOpts) == 0 {
		ctlOpts = natsalive.PrivateInbox(ctlConn, lattice.PrivateInbox(cfg.LatticePrefix, lattice.InboxHostCtl))
	}
	rpcURL, ctlURL := rpcConn.URL(), ctlConn.URL()
	// Keep trying while no server of the list answers: the health server
	// below says why the host is not ready meanwhile.
	keep := append(natsalive.Options(cfg.NATSKeepalive), nats.RetryOnFailedConnect(true))
	keep = keep[:len(keep):len(keep)] // each append below gets its own copy
	// Both at once: each is a handshake with the server (CONNECT with a
	// signed nonce, PING/PONG), on the way to the host's readiness.
	var rpc, ctl *nats.Conn
	var cg errgroup.Group
	cg.Go(func() (err error) {
		rpc, err = natsalive.Connect(rpcURL, rpcConn, cfg.LatticePrefix+"-rpc", log, append(keep, rpcOpts...)...)
		return err
	})
	cg.Go(func() (err error) {
		ctl, err = natsalive.Connect(ctlURL, ctlConn, cfg.LatticePrefix+"-ctl", log, append(keep, ctlOpts...)...)
		return err
	})
	err = cg.Wait()
	for _, nc := range []*nats.Conn{rpc, ctl} {
		if nc != nil {
			defer nc.Close()
		}
	}
	if err != nil {
		return err
	}
	alive := natsalive.New(cfg.NATSKeepalive)
	alive.Add("rpc", rpc)
	alive.Add("ctl", ctl)
	aliveCtx, stopAlive := context.WithCancel(ctx)
	aliveDone := make(chan struct{})
	go func() { defer close(aliveDone); alive.Run(aliveCtx) }()
	defer func() { stopAlive(); <-aliveDone }()

	clusterKey, hostKey, err := nodeKeys(cfg, log)
	if err != nil {
		return err
	}
	m := metrics.New()
	m.NATS.Track("rpc", rpc)
	m.NATS.Track("ctl", ctl)
	var h *host.Host
	created := make(chan struct{}) // h is set
	healthSrv, err := health.New(cfg.MetricsAddr, m.Handler(), func() error {
		if err := alive.Check(); err != nil {
			return err
		}
		select {
		case <-created:
		default:
			return errors.New("host starting")
		}
		select {
		case <-h.Ready():
		default:
			return errors.New("host starting")
		}
		return nil
	})
	if err != nil {
		return err
	}
	healthCtx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan error, 1)
	go func() { healthDone <- healthSrv.Run(healthCtx, log) }()
	defer func() { stopHealth(); <-healthDone }()
	if err := natsalive.WaitConnected(ctx, log, map[string]*nats.Conn{"rpc": rpc, "ctl": ctl}); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	h, err = host.New(ctx, host.Options{
		HostSettings: cfg.Host(), HostKey: hostKey, ClusterKey: clusterKey, RPC: rpc, Ctl: ctl,
		CtlHost: ctlURL, RPCHost: rpcURL, ProvRPCHost: ep.ProvRPC.URL(), Providers: launcher, Metrics: m, Logger: log,
		OCI: ociClient, Runtime: wasmRT,
	})
	if err != nil {
		return err
	}
	hostOwnsRuntime = true
	close(created)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.Run(gctx) })
	g.Go(func() error {
		select {
		case <-h.Ready():
		case <-gctx.Done():
			return nil
		}
		log.Info("host serving", "host_id", h.ID(), "lattice_prefix", cfg.LatticePrefix, "nats_url", ctlURL,
			"metrics", "http://"+healthSrv.Addr()+"/metrics")
		if sup != nil {
			rctx, cancel := context.WithTimeout(gctx, 10*time.Second)
			err := sup.HostReady(rctx, admin.HostReport{HostID: h.ID(), MetricsAddr: healthSrv.Addr(), PID: os.Getpid()})
			cancel()
			if err != nil {
				return fmt.Errorf("report to the supervisor: %w", err)
			}
		}
		// A stop command ends the host like a signal does.
		select {
		case <-h.Stopped():
			return errStopped
		case <-gctx.Done():
			return nil
		}
	})
	if err := g.Wait(); err != nil && !errors.Is(err, errStopped) {
		return err
	}
	return nil
}

var errStopped = errors.New("host stopped by control command")

// nodeKeys resolves the cluster and host keys: configured seeds, else a
// cluster key kept in the data dir (announced once when created) and a fresh
// host key per start, as wasmCloud hosts do.
func nodeKeys(cfg *config.Config, log *slog.Logger) (cluster, host *trust.KeyPair, err error) {
	if cfg.ClusterSeed != "" {
		if cluster, err = trust.ParseSeedOfKind(cfg.ClusterSeed, lattice.KindCluster); err != nil {
			return nil, nil, usageErrorf("%s: %v", config.EnvClusterSeed, err)
		}
	} else {
		path := datadir.Path(cfg.DataDir, datadir.ClusterSeedFile)
		var created bool
		if cluster, created, err = datadir.LoadOrCreateKey(path, lattice.KindCluster); err != nil {
			return nil, nil, err
		}
		if created {
			// Never the seed itself: logs are kept and shipped where secrets
			// must not go (docs/security.md). The operator prints it on demand.
			log.Warn("generated an ad hoc cluster key for this lattice; to add hosts, give them this issuer in WASMCLOUD_CLUSTER_ISSUERS and, to sign as this lattice, its seed in WASMCLOUD_CLUSTER_SEED (print it with `latticed keys show cluster`)",
				"cluster_issuer", cluster.PublicKey(), "seed_file", path)
		} else {
			log.Debug("using cluster key from the data dir", "cluster_issuer", cluster.PublicKey(), "file", path)
		}
	}
	if cfg.HostSeed != "" {
		if host, err = trust.ParseSeedOfKind(cfg.HostSeed, lattice.KindServer); err != nil {
			return nil, nil, usageErrorf("%s: %v", config.EnvHostSeed, err)
		}
	} else if host, err = trust.CreateKeyPair(lattice.KindServer); err != nil {
		return nil, nil, err
	}
	return cluster, host, nil
}

// newLogger logs JSON when asked to or when stderr is not a terminal, at
// level (which SIGHUP may change).
// softMemoryLimit sets the Go runtime's soft memory limit from the memory
// limit of the process's cgroup (a container's or a systemd unit's) unless
// GOMEMLIMIT is set, so that the collector works harder before the kernel
// kills the node (docs/operations.md, "Memory").
func softMemoryLimit(log *slog.Logger) {
	limit, reason, err := memreturn.SetLimitFromCgroup(os.DirFS("/"), os.LookupEnv)
	switch {
	case err != nil:
		log.Warn("soft memory limit not taken from the cgroup; set GOMEMLIMIT to bound the Go heap", "err", err)
	case limit > 0:
		log.Info("soft memory limit taken from the cgroup", "gomemlimit_bytes", limit, "share_of_cgroup_limit", memreturn.LimitShare)
	default:
		log.Debug("no soft memory limit from the cgroup", "reason", reason)
	}
}

// jsonLogs says whether the node logs JSON: as
// WASMCLOUD_STRUCTURED_LOGGING_ENABLED says when it is given, else JSON
// unless w is a terminal (a person reads text; a collector parses JSON).
func jsonLogs(cfg *config.Config, w io.Writer) bool {
	if cfg.StructuredLoggingSet {
		return cfg.StructuredLogging
	}
	return !progress.IsTerminal(w)
}

func newLogger(cfg *config.Config, w io.Writer, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if !jsonLogs(cfg, w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

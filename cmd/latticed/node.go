package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/latticed/latticed/agent"
	"github.com/latticed/latticed/config"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/metrics"
	"github.com/latticed/latticed/supervisor"
)

func newUpCmd() *cobra.Command {
	var actors []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a lattice node: embedded NATS when none is configured, the wasm host, metrics",
		Long: `up runs a whole lattice node. With no NATS server configured it is a lattice of
one: an embedded NATS server with JetStream on loopback (LATTICED_NATS_LISTEN),
data under LATTICED_DATA_DIR, an ad hoc cluster key saved in the data dir and
printed once, prefix "default", metrics on LATTICED_METRICS_ADDR.

To add a node to this lattice, start it with the same WASMCLOUD_LATTICE_PREFIX
and WASMCLOUD_CLUSTER_ISSUERS, its own WASMCLOUD_CLUSTER_SEED, and
WASMCLOUD_RPC_HOST/WASMCLOUD_CTL_HOST pointing at this node's NATS server.

Environment:
` + config.EnvHelp(),
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNode(cmd, true, actors)
		},
	}
	config.RegisterFlags(cmd.Flags())
	cmd.Flags().StringArrayVar(&actors, "start-actor", nil, "start this actor (file:// reference; needs WASMCLOUD_ALLOW_FILE_LOAD) once the node is ready; repeatable")
	return cmd
}

func newHostCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Run only the wasm host, against a NATS server that is already running",
		Long: `host runs the wasm host: actors, the control interface and the issuer policy.
It connects to WASMCLOUD_RPC_* and WASMCLOUD_CTL_* (default: the address in
LATTICED_NATS_LISTEN, 127.0.0.1:4222) and never starts a NATS server itself.

Environment:
` + config.EnvHelp(),
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error { return runNode(cmd, false, nil) },
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

// runNode wires configuration, NATS, keys, metrics and the host, and runs them
// until the context ends or a control command stops the host.
func runNode(cmd *cobra.Command, embedded bool, startActors []string) error {
	cfg, warnings, err := config.Load(cmd.Flags(), os.LookupEnv)
	if err != nil {
		return usageError{err}
	}
	log := newLogger(cfg, cmd.ErrOrStderr())
	for _, w := range warnings {
		log.Warn(w)
	}
	ctx := cmd.Context()

	var ns *server.Server
	if embedded && cfg.EmbeddedNATS() {
		ns, err = supervisor.StartNATS(supervisor.EmbeddedNATS{
			Listen: cfg.NATSListen, StoreDir: supervisor.DataPath(cfg.DataDir, supervisor.JetStreamDir),
			MaxPayload: int32(cfg.MaxPayloadBytes),
		})
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		log.Info("embedded NATS server started", "url", ns.ClientURL(), "jetstream", supervisor.DataPath(cfg.DataDir, supervisor.JetStreamDir))
	}
	rpcConn, ctlConn := cfg.RPC, cfg.CTL
	// One configured server serves both roles unless both are given.
	if !ctlConn.Configured() {
		ctlConn = rpcConn
	} else if !rpcConn.Configured() {
		rpcConn = ctlConn
	}
	if !rpcConn.Configured() && ns == nil {
		host, port, _ := strings.Cut(cfg.NATSListen, ":")
		rpcConn.Host, ctlConn.Host = host, host
		fmt.Sscan(port, &rpcConn.Port)
		ctlConn.Port = rpcConn.Port
	}
	rpcURL, err := supervisor.ConnURL(rpcConn, ns)
	if err != nil {
		return err
	}
	ctlURL, _ := supervisor.ConnURL(ctlConn, ns)
	rpc, err := supervisor.Connect(rpcURL, rpcConn, cfg.LatticePrefix+"-rpc", log)
	if err != nil {
		return err
	}
	defer rpc.Close()
	ctl, err := supervisor.Connect(ctlURL, ctlConn, cfg.LatticePrefix+"-ctl", log)
	if err != nil {
		return err
	}
	defer ctl.Close()

	clusterKey, hostKey, err := nodeKeys(cfg, log)
	if err != nil {
		return err
	}
	m := metrics.New()
	h, err := agent.New(ctx, agent.Options{
		HostKey: hostKey, ClusterKey: clusterKey, Issuers: cfg.ClusterIssuers,
		LatticePrefix: cfg.LatticePrefix, CtlTopicPrefix: cfg.CtlTopicPrefix, RPC: rpc, Ctl: ctl,
		RPCTimeout: cfg.RPCTimeout, AllowFileLoad: cfg.AllowFileLoad, AllowedActorIssuers: cfg.AllowedActorIssuers,
		MaxPayloadBytes: cfg.MaxPayloadBytes, QueueLength: cfg.ActorQueueLength,
		MemoryLimitPages: cfg.ActorMemoryLimitPages, CompileCacheDir: supervisor.DataPath(cfg.DataDir, supervisor.CompileCacheDir),
		ReplayWindow: cfg.ReplayWindow, ClockSkew: cfg.ClockSkew, Labels: cfg.Labels, JSDomain: cfg.JSDomain,
		CtlHost: ctlURL, RPCHost: rpcURL, ProvRPCHost: rpcURL, Metrics: m, Logger: log,
	})
	if err != nil {
		return err
	}
	health, err := supervisor.NewHealthServer(cfg.MetricsAddr, m.Handler(), func() error {
		select {
		case <-h.Ready():
		default:
			return errors.New("host starting")
		}
		for name, nc := range map[string]*nats.Conn{"rpc": rpc, "ctl": ctl} {
			if !nc.IsConnected() {
				return fmt.Errorf("NATS %s connection is %s", name, nc.Status())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.Run(gctx) })
	g.Go(func() error { return health.Run(gctx, log) })
	g.Go(func() error {
		select {
		case <-h.Ready():
		case <-gctx.Done():
			return nil
		}
		log.Info("node ready", "host_id", h.ID(), "lattice_prefix", cfg.LatticePrefix, "nats_url", ctlURL,
			"metrics", "http://"+health.Addr()+"/metrics")
		for _, ref := range startActors {
			claims, err := h.StartActor(gctx, ref, 1, nil)
			if err != nil {
				log.Error("start actor failed", "ref", ref, "err", err)
				continue
			}
			alias := ""
			if claims.Wascap != nil {
				alias = claims.Wascap.CallAlias
			}
			log.Info("actor started", "actor", claims.Subject, "call_alias", alias, "ref", ref)
		}
		// A stop command ends the node like a signal does.
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
func nodeKeys(cfg *config.Config, log *slog.Logger) (cluster, host *lattice.KeyPair, err error) {
	if cfg.ClusterSeed != "" {
		if cluster, err = lattice.ParseSeedOfKind(cfg.ClusterSeed, lattice.KindCluster); err != nil {
			return nil, nil, usageErrorf("%s: %v", config.EnvClusterSeed, err)
		}
	} else {
		path := supervisor.DataPath(cfg.DataDir, supervisor.ClusterSeedFile)
		var created bool
		if cluster, created, err = supervisor.LoadOrCreateKey(path, lattice.KindCluster); err != nil {
			return nil, nil, err
		}
		if created {
			// The one time a seed is logged (DESIGN.md): the operator needs it
			// to add hosts to this lattice.
			log.Warn("generated an ad hoc cluster key for this lattice; to add hosts, give them this issuer in WASMCLOUD_CLUSTER_ISSUERS and, to sign as this lattice, this seed in WASMCLOUD_CLUSTER_SEED",
				"cluster_issuer", cluster.PublicKey(), "cluster_seed", cluster.Seed(), "saved_to", path)
		} else {
			log.Info("using cluster key from the data dir", "cluster_issuer", cluster.PublicKey(), "file", path)
		}
	}
	if cfg.HostSeed != "" {
		if host, err = lattice.ParseSeedOfKind(cfg.HostSeed, lattice.KindServer); err != nil {
			return nil, nil, usageErrorf("%s: %v", config.EnvHostSeed, err)
		}
	} else if host, err = lattice.CreateKeyPair(lattice.KindServer); err != nil {
		return nil, nil, err
	}
	return cluster, host, nil
}

// newLogger logs JSON when asked to or when stderr is not a terminal.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if f, ok := w.(*os.File); ok && !cfg.StructuredLogging {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

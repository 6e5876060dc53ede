package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/cacheread"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/natsalive"
	"github.com/latticed/latticed/lattice"
)

// ctlConfigFlags are the settings of package config that `ctl` reads; their
// flags (names, help, [ENV] hints) come from config.RegisterFlags, so the
// environment names are defined once.
var ctlConfigFlags = []string{
	"lattice-prefix", "ctl-host", "ctl-port", "ctl-credsfile", "ctl-jwt", "ctl-seed", "ctl-tls", "ctl-topic-prefix",
}

// flagClusterSeed is the one config flag only `ctl call` takes.
const flagClusterSeed = "cluster-seed"

func newCtlCmd() *cobra.Command {
	cmd := newGroupCmd("ctl", "Control a lattice: hosts, actors, providers, links, labels, calls",
		`Talk to a lattice's control interface (wasmbus.ctl.{prefix}.…) over NATS: list
hosts and inventories, start, scale and stop actors and providers, manage link
definitions and host labels, and call actors with signed invocations.

Connection: the server and credentials come from --ctl-host/--ctl-port and
--ctl-credsfile or --ctl-jwt/--ctl-seed (WASMCLOUD_CTL_*); with no control host
configured, from WASMCLOUD_RPC_*, as the host's. With neither, ctl connects to
the embedded server of a lattice of one at LATTICED_NATS_LISTEN (default
`+config.DefaultNATSListen+`) with {data dir}/`+datadir.AdminCredsFile+` when
that file exists (data dir:
LATTICED_DATA_DIR, default $XDG_DATA_HOME/latticed or ~/.local/share/latticed).

Queries that every host answers collect replies: get hosts (and get
inventory without a host ID) until no new host has answered for --quiet after
the first, at most --timeout; auctions until the first offer. Single requests
wait at most --timeout.`,
		newCtlGetCmd(), newCtlStartCmd(), newCtlStopCmd(), newCtlScaleCmd(), newCtlUpdateCmd(), newCtlRevokeCmd(),
		newCtlLinkCmd(), newCtlLabelCmd(), newCtlCallCmd(), newCtlWatchCmd())
	addCtlFlags(cmd)
	return cmd
}

// addCtlFlags gives a command group the control connection's flags.
func addCtlFlags(cmd *cobra.Command) {
	addOutputFlag(cmd)
	pf := cmd.PersistentFlags()
	for _, f := range configFlags(ctlConfigFlags...) {
		pf.AddFlag(f)
	}
	pf.Duration("timeout", ctlclient.DefaultTimeout, "how long to wait for a reply, or to collect replies from all hosts")
	pf.Int64("timeout-ms", 0, "--timeout in milliseconds, as wash spells it")
	pf.Duration("quiet", ctlclient.DefaultQuiet, "get hosts: stop collecting once no new host has answered for this long (longer on a slow lattice); 0 waits out --timeout")
}

// configFlags returns the named flags as config.RegisterFlags defines them.
func configFlags(names ...string) []*pflag.Flag {
	all := pflag.NewFlagSet("config", pflag.ContinueOnError)
	config.RegisterFlags(all)
	out := make([]*pflag.Flag, len(names))
	for i, n := range names {
		if out[i] = all.Lookup(n); out[i] == nil {
			panic("config has no flag --" + n) // caught by any test that builds the command tree
		}
	}
	return out
}

// ctlSession is an open connection to a lattice's control interface.
type ctlSession struct {
	cfg     *config.Config
	nc      *nats.Conn
	client  *ctlclient.Client
	timeout time.Duration
}

// loadCtlConfig reads the configuration from ctl's flags, the environment
// and LATTICED_CONFIG. Only the config flags go to config.Load: a command's
// own flags (start provider --config) must not be taken for settings.
func loadCtlConfig(cmd *cobra.Command) (*config.Config, error) {
	fs := pflag.NewFlagSet("ctl", pflag.ContinueOnError)
	for _, name := range append(ctlConfigFlags, flagClusterSeed) {
		if f := cmd.Flags().Lookup(name); f != nil {
			fs.AddFlag(f)
		}
	}
	cfg, warnings, err := config.Load(fs, os.LookupEnv)
	for _, w := range warnings {
		// Load adds the cluster seed's key to the trusted issuers, which
		// matters to a host, not to a client.
		if !strings.HasPrefix(w, config.EnvClusterIssuers+":") {
			fmt.Fprintf(cmd.ErrOrStderr(), "latticed: warning: %s\n", w)
		}
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("configuration: %w", err)}
	}
	return cfg, nil
}

// ctlTimeout is --timeout (or wash's --timeout-ms), checked.
func ctlTimeout(cmd *cobra.Command) (time.Duration, error) {
	d, err := cmd.Flags().GetDuration("timeout")
	if err != nil {
		return 0, usageError{err}
	}
	if fl := cmd.Flags().Lookup("timeout-ms"); fl != nil && fl.Changed {
		if cmd.Flags().Changed("timeout") {
			return 0, usageErrorf("--timeout and --timeout-ms say the same thing: give one")
		}
		ms, err := cmd.Flags().GetInt64("timeout-ms")
		if err != nil {
			return 0, usageError{err}
		}
		if ms <= 0 {
			return 0, usageErrorf("--timeout-ms must be positive, got %d", ms)
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d <= 0 {
		return 0, usageErrorf("--timeout must be positive, got %s", d)
	}
	return d, nil
}

// openCtl loads the configuration and connects. Callers check their
// arguments first, so a usage error never waits for a server.
func openCtl(cmd *cobra.Command) (*ctlSession, error) {
	timeout, err := ctlTimeout(cmd)
	if err != nil {
		return nil, err
	}
	quiet, err := cmd.Flags().GetDuration("quiet")
	if err != nil {
		return nil, err
	}
	if quiet < 0 {
		return nil, usageErrorf("--quiet must not be negative, got %s", quiet)
	}
	cfg, err := loadCtlConfig(cmd)
	if err != nil {
		return nil, err
	}
	nc, err := ctlConnect(cmd, cfg)
	if err != nil {
		return nil, err
	}
	client := ctlclient.New(nc, cfg.CtlTopicPrefix, cfg.LatticePrefix)
	client.Timeout = timeout
	client.Quiet = quiet
	// get links / get claims read the lattice cache (LATTICECACHE_{prefix})
	// in this JetStream domain; an entry that does not decode is skipped,
	// and said so.
	client.JSDomain = cfg.JSDomain
	client.OnSkipped = func(sk cacheread.Skipped) {
		fmt.Fprintf(cmd.ErrOrStderr(), "latticed: warning: skipped lattice cache entry %s: %v\n", sk.Subject, sk.Err)
	}
	return &ctlSession{cfg: cfg, nc: nc, client: client, timeout: timeout}, nil
}

// withCtl runs fn with an open session and closes it afterwards.
func withCtl(cmd *cobra.Command, fn func(ctx context.Context, s *ctlSession) error) error {
	s, err := openCtl(cmd)
	if err != nil {
		return err
	}
	defer s.nc.Close()
	return fn(cmd.Context(), s)
}

// ctlConnect connects as docs/operations.md ("What runs, and where") says:
// to the control interface's server as every process finds it
// (config.Endpoints), and with no server configured to the embedded
// server's listen address, with the admin credentials when they exist.
func ctlConnect(cmd *cobra.Command, cfg *config.Config) (*nats.Conn, error) {
	ep := cfg.Endpoints()
	auth := ep.Ctl
	hint := fmt.Sprintf("check %s/%s (--ctl-host/--ctl-port; else %s) and that the server is up", config.EnvCtlHost, config.EnvCtlPort, config.EnvRPCHost)
	if ep.Embedded {
		// The operator's own control credentials, if given, else those
		// the lattice of one wrote for its operator.
		auth.JWT, auth.Seed, auth.CredsFile, auth.TLS = cfg.CTL.JWT, cfg.CTL.Seed, cfg.CTL.CredsFile, cfg.CTL.TLS
		hint = fmt.Sprintf("no control server is configured (%s), so this is the address of a lattice of one's embedded server (%s); is `latticed up` running? To reach another server set %s and %s (or --ctl-host/--ctl-port)",
			config.EnvCtlHost, config.EnvNATSListen, config.EnvCtlHost, config.EnvCtlPort)
		if auth.CredsFile == "" && auth.JWT == "" && auth.Seed == "" {
			if p := datadir.Path(cfg.DataDir, datadir.AdminCredsFile); fileExists(p) {
				auth.CredsFile = p
			}
		}
	}
	url := auth.URL()
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Replies (link values, claims) to an inbox no provider may read.
	nc, err := natsalive.Connect(url, auth, "latticed-ctl", log,
		append(natsalive.Options(cfg.NATSKeepalive), natsalive.OperatorInbox(auth, cfg.LatticePrefix)...)...)
	if err != nil {
		creds := ""
		if auth.CredsFile != "" {
			creds = " with credentials " + auth.CredsFile
		}
		cause := errors.Unwrap(err) // natsalive.Connect's wrapping names the URL too
		if cause == nil {
			cause = err
		}
		return nil, fmt.Errorf("cannot connect to NATS at %s%s: %v\n  %s", url, creds, cause, hint)
	}
	// Closing the connection at exit is no disconnect worth a warning.
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err != nil {
			log.Warn("NATS disconnected", "err", err)
		}
	})
	return nc, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// parseKVs parses repeated key=value flag values or arguments.
func parseKVs(what string, items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range items {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("%s %q: expected key=value", what, kv)
		}
		if _, dup := out[k]; dup {
			return nil, usageErrorf("%s %q: key %s is given twice", what, kv, k)
		}
		out[k] = v
	}
	return out, nil
}

// checkHostID rejects a --host-id or host argument that is no host key, before connecting.
func checkHostID(id, what string) error {
	if id == "" {
		return nil
	}
	if err := lattice.CheckPublicKey(id, lattice.KindServer); err != nil {
		return usageErrorf("%s %q is not a host ID: %w", what, lattice.Abbreviate(id), err)
	}
	return nil
}

// hostResult is what stop host prints under --output json: wash's
// "result" and the host.
type hostResult struct {
	Result string `json:"result"`
	HostID string `json:"host_id"`
}

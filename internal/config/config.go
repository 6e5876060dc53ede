// Package config is the one place latticed reads its settings from: flags,
// then environment (wasmCloud's WASMCLOUD_* names plus our LATTICED_*), then a
// YAML or TOML file, then defaults. No other package reads the environment.
//
// Load returns a validated *Config. Treat it as read-only: it is shared by
// every component of a process, and the slices and maps in it are not copied.
// The wasm host and the supervisor never see it: Config.Host and
// Config.Supervisor resolve their settings once into a HostSettings and a
// SupervisorSettings of their own, and the settings table says of each
// setting who reads it.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nkeys"
)

// NATSConn is how to reach and authenticate to the NATS servers of one role.
type NATSConn struct {
	// Host is the server's host name or IP, or a comma-separated list of
	// servers (see ParseServers); empty means not configured.
	Host string
	// Port is the server's client port.
	Port int
	// JWT is a NATS user JWT; it needs Seed to answer the server's nonce.
	JWT string
	// Seed is the user's nkey seed (SU...).
	Seed string
	// CredsFile is a NATS .creds file (JWT and seed in one), used instead of JWT/Seed.
	CredsFile string
	// TLS selects a TLS connection.
	TLS bool
}

// Configured reports whether a server was given for this connection.
func (n NATSConn) Configured() bool { return n.Host != "" }

// URLs are the connection's servers, one URL each (see ParseServers): Host
// may list several, comma-separated. nil when Host is no valid list, which
// a validated Config never has.
func (n NATSConn) URLs() []string {
	urls, err := ParseServers(n.Host, n.Port, n.TLS)
	if err != nil {
		return nil
	}
	return urls
}

// URL is the connection's server list for nats.Connect, which takes a
// comma-separated list: nats://host:port, or tls://host:port when TLS is
// set (nats.go then insists on TLS), for each server of Host.
func (n NATSConn) URL() string {
	if urls := n.URLs(); urls != nil {
		return strings.Join(urls, ",")
	}
	scheme := "nats"
	if n.TLS {
		scheme = "tls"
	}
	// Unvalidated: keep the old single-server form so the dial error
	// names what was given.
	host := strings.TrimSuffix(strings.TrimPrefix(n.Host, "["), "]")
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(n.Port))
}

// LogValue hides the JWT and seed so a connection can be logged safely.
func (n NATSConn) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", n.Host),
		slog.Int("port", n.Port),
		slog.String("jwt", redact(n.JWT)),
		slog.String("seed", redact(n.Seed)),
		slog.String("credsfile", n.CredsFile),
		slog.Bool("tls", n.TLS),
	)
}

// Config is latticed's whole configuration. Each field's doc names the
// environment variable it comes from; see EnvHelp for defaults.
type Config struct {
	// ConfigFile is the file the settings were read from, if any (LATTICED_CONFIG).
	ConfigFile string

	// LatticePrefix is the lattice ID used in every subject (WASMCLOUD_LATTICE_PREFIX).
	LatticePrefix string
	// ClusterSeed signs outgoing invocations (WASMCLOUD_CLUSTER_SEED). Empty means
	// the caller generates an ad hoc one; its public key is then not yet in
	// ClusterIssuers, and the caller must add it.
	ClusterSeed string
	// ClusterIssuers are the cluster public keys whose invocations are accepted
	// (WASMCLOUD_CLUSTER_ISSUERS). Load puts ClusterSeed's key first when missing.
	ClusterIssuers []string
	// HostSeed is the host's server seed, SN... (WASMCLOUD_HOST_SEED); empty = generate.
	HostSeed string

	// RPC is the NATS connection for actor and provider RPC (WASMCLOUD_RPC_*).
	RPC NATSConn
	// CTL is the NATS connection for the control interface and events (WASMCLOUD_CTL_*).
	CTL NATSConn
	// ProvRPC is the NATS connection handed to providers (WASMCLOUD_PROV_RPC_*).
	ProvRPC NATSConn

	// RPCTimeout bounds outbound RPC and health checks; providers get it too
	// (WASMCLOUD_RPC_TIMEOUT_MS).
	RPCTimeout time.Duration
	// CtlTopicPrefix is the control interface's subject prefix (WASMCLOUD_CTL_TOPIC_PREFIX).
	CtlTopicPrefix string
	// JSDomain is the JetStream domain for the lattice cache and KV (WASMCLOUD_JS_DOMAIN).
	JSDomain string
	// AllowFileLoad permits file:// actor and provider references (WASMCLOUD_ALLOW_FILE_LOAD).
	AllowFileLoad bool
	// TolerateStartFailures keeps `latticed up` running when what it was
	// told to start (--start-actor, --apply) fails; otherwise such a
	// failure ends it with exit status 1 (LATTICED_TOLERATE_START_FAILURES).
	TolerateStartFailures bool
	// OCIAllowLatest permits OCI references tagged :latest (WASMCLOUD_OCI_ALLOW_LATEST).
	OCIAllowLatest bool
	// OCIAllowedInsecure are registries that may be reached over plain HTTP
	// (WASMCLOUD_OCI_ALLOWED_INSECURE).
	OCIAllowedInsecure []string
	// OCIRegistry, OCIRegistryUser and OCIRegistryPassword log in to one
	// registry (host[:port]) and no other, as wasmCloud hosts do
	// (WASMCLOUD_OCI_REGISTRY, WASMCLOUD_OCI_REGISTRY_USER,
	// WASMCLOUD_OCI_REGISTRY_PASSWORD): all three or none.
	OCIRegistry, OCIRegistryUser, OCIRegistryPassword string
	// PolicyTopic is the policy service's subject; empty disables the policy
	// service (WASMCLOUD_POLICY_TOPIC).
	PolicyTopic string
	// PolicyChangesTopic is where the policy service announces changed
	// decisions (WASMCLOUD_POLICY_CHANGES_TOPIC).
	PolicyChangesTopic string
	// PolicyTimeout bounds a policy request; no answer in time means deny
	// (WASMCLOUD_POLICY_TIMEOUT, milliseconds).
	PolicyTimeout time.Duration
	// StructuredLogging selects JSON logs (WASMCLOUD_STRUCTURED_LOGGING_ENABLED)
	// when StructuredLoggingSet says it was given (flag, environment or
	// file); unset, logs are JSON unless stderr is a terminal.
	StructuredLogging    bool
	StructuredLoggingSet bool
	// LogLevel is one of debug, info, warn, error (WASMCLOUD_LOG_LEVEL).
	LogLevel string
	// Labels are the host's labels (WASMCLOUD_LABEL_{name}, --label, file "labels").
	Labels map[string]string

	// DataDir holds the JetStream store, compile cache, keys and creds (LATTICED_DATA_DIR).
	DataDir string
	// NATSListen is the embedded NATS server's host:port (LATTICED_NATS_LISTEN).
	NATSListen string
	// MetricsAddr is the host:port of /metrics, /healthz, /readyz (LATTICED_METRICS_ADDR).
	MetricsAddr string
	// AllowedActorIssuers restricts which accounts (A...) may sign actors; empty
	// allows any (LATTICED_ALLOWED_ACTOR_ISSUERS).
	AllowedActorIssuers []string
	// MaxPayloadBytes is the largest NATS payload (LATTICED_MAX_PAYLOAD_BYTES).
	MaxPayloadBytes int
	// ReplayWindow is how long invocation IDs are remembered; invocations
	// issued longer ago are refused (LATTICED_REPLAY_WINDOW).
	ReplayWindow time.Duration
	// ClockSkew is the clock difference tolerated on invocation timestamps
	// (LATTICED_CLOCK_SKEW).
	ClockSkew time.Duration
	// ActorMemoryLimitPages caps an actor instance's memory in 64 KiB pages
	// (LATTICED_ACTOR_MEMORY_PAGES).
	ActorMemoryLimitPages uint32
	// ActorQueueLength is how many invocations may wait for a free actor
	// instance; later ones get an error reply (LATTICED_ACTOR_QUEUE).
	ActorQueueLength int
	// ActorStartTimeout bounds the start of one actor instance, its
	// initialisation code included (LATTICED_ACTOR_START_TIMEOUT).
	ActorStartTimeout time.Duration
	// Cache is the lattice cache's form (LATTICED_CACHE): CacheAuto,
	// CacheStream or CacheKV (docs/protocol.md §11).
	Cache string
	// CacheStorage is the LATTICECACHE stream's storage, "file" or "memory"
	// (LATTICED_CACHE_STORAGE).
	CacheStorage string
	// CacheReplicas is the LATTICECACHE stream's replica count (LATTICED_CACHE_REPLICAS).
	CacheReplicas int
	// NATSKeepalive is every NATS connection's keepalive
	// (LATTICED_NATS_PING_INTERVAL, LATTICED_NATS_PING_MISSES).
	NATSKeepalive Keepalive

	// AdminSocket is the supervisor's admin socket; "" = {data dir}/run/admin.sock
	// for `up`, and no supervisor for `host` (LATTICED_ADMIN_SOCKET).
	AdminSocket string
	// RestartBackoff is the first delay before a crashed child restarts
	// (LATTICED_RESTART_BACKOFF); it doubles per crash up to RestartBackoffMax
	// (LATTICED_RESTART_BACKOFF_MAX) and resets once a child stayed up for
	// RestartStable (LATTICED_RESTART_STABLE).
	RestartBackoff, RestartBackoffMax, RestartStable time.Duration
	// CrashLoopCount crashes within CrashLoopWindow mark a child failed
	// (LATTICED_CRASH_LOOP_COUNT, LATTICED_CRASH_LOOP_WINDOW).
	CrashLoopCount  int
	CrashLoopWindow time.Duration
	// StopGrace bounds a graceful stop before children are killed (LATTICED_STOP_GRACE).
	StopGrace time.Duration
	// HealthInterval is the period of provider health checks (LATTICED_HEALTH_INTERVAL).
	HealthInterval time.Duration
	// ConsoleAddr is the web console's host:port, "" = no console
	// (LATTICED_CONSOLE_ADDR); ConsoleToken makes it ask for the login token
	// in {data dir}/console.token, which it needs off loopback
	// (LATTICED_CONSOLE_TOKEN).
	ConsoleAddr  string
	ConsoleToken bool
	// ConsoleTLSCert and ConsoleTLSKey make the console serve HTTPS
	// (LATTICED_CONSOLE_TLS_CERT, LATTICED_CONSOLE_TLS_KEY); with
	// ConsoleTLSClientCA it requires a client certificate those CAs issued
	// (LATTICED_CONSOLE_TLS_CLIENT_CA), a login that allows it off loopback.
	ConsoleTLSCert, ConsoleTLSKey, ConsoleTLSClientCA string
	// AccountSigningSeed lets the supervisor mint provider users on an
	// external NATS (LATTICED_ACCOUNT_SIGNING_SEED, SA...).
	AccountSigningSeed string
	// OperatorSigningSeed and SystemCredsFile let it push account revocations
	// to an external NATS (LATTICED_OPERATOR_SIGNING_SEED, LATTICED_SYSTEM_CREDSFILE).
	OperatorSigningSeed string
	SystemCredsFile     string
	// ProviderCredsLifetime is how long minted provider credentials on an
	// external NATS are valid; they are renewed while the provider is healthy
	// (LATTICED_PROVIDER_CREDS_LIFETIME).
	ProviderCredsLifetime time.Duration

	// sources says, per env name, where a non-env value came from ("--rpc-port",
	// "rpc_port in /etc/latticed.yaml") so errors point at the right place.
	sources map[string]string
}

// EmbeddedNATS reports whether latticed must run its own NATS server: true
// when neither an RPC nor a control-interface server is configured.
func (c *Config) EmbeddedNATS() bool {
	return !c.RPC.Configured() && !c.CTL.Configured()
}

// SlogLevel is LogLevel as a slog.Level (info when LogLevel is not valid).
func (c *Config) SlogLevel() slog.Level { return slogLevel(c.LogLevel) }

func slogLevel(level string) slog.Level {
	switch level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogValue lets the effective configuration be logged without its seeds and
// JWTs, which must never reach a log.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("config_file", c.ConfigFile),
		slog.String("lattice_prefix", c.LatticePrefix),
		slog.String("cluster_seed", redact(c.ClusterSeed)),
		slog.Any("cluster_issuers", c.ClusterIssuers),
		slog.String("host_seed", redact(c.HostSeed)),
		slog.Any("rpc", c.RPC),
		slog.Any("ctl", c.CTL),
		slog.Any("prov_rpc", c.ProvRPC),
		slog.Duration("rpc_timeout", c.RPCTimeout),
		slog.String("ctl_topic_prefix", c.CtlTopicPrefix),
		slog.String("js_domain", c.JSDomain),
		slog.Bool("allow_file_load", c.AllowFileLoad),
		slog.Bool("oci_allow_latest", c.OCIAllowLatest),
		slog.Any("oci_allowed_insecure", c.OCIAllowedInsecure),
		slog.String("oci_registry", c.OCIRegistry),
		slog.String("oci_registry_user", c.OCIRegistryUser),
		slog.String("oci_registry_password", redact(c.OCIRegistryPassword)),
		slog.String("policy_topic", c.PolicyTopic),
		slog.String("policy_changes_topic", c.PolicyChangesTopic),
		slog.Duration("policy_timeout", c.PolicyTimeout),
		slog.Bool("structured_logging", c.StructuredLogging),
		slog.String("log_level", c.LogLevel),
		slog.Any("labels", c.Labels),
		slog.String("data_dir", c.DataDir),
		slog.String("nats_listen", c.NATSListen),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Bool("tolerate_start_failures", c.TolerateStartFailures),
		slog.Any("allowed_actor_issuers", c.AllowedActorIssuers),
		slog.Int("max_payload_bytes", c.MaxPayloadBytes),
		slog.Duration("replay_window", c.ReplayWindow),
		slog.Duration("clock_skew", c.ClockSkew),
		slog.Uint64("actor_memory_pages", uint64(c.ActorMemoryLimitPages)),
		slog.Int("actor_queue", c.ActorQueueLength),
		slog.Duration("actor_start_timeout", c.ActorStartTimeout),
		slog.String("admin_socket", c.AdminSocket),
		slog.Duration("restart_backoff", c.RestartBackoff),
		slog.Duration("restart_backoff_max", c.RestartBackoffMax),
		slog.Duration("restart_stable", c.RestartStable),
		slog.Int("crash_loop_count", c.CrashLoopCount),
		slog.Duration("crash_loop_window", c.CrashLoopWindow),
		slog.Duration("stop_grace", c.StopGrace),
		slog.Duration("health_interval", c.HealthInterval),
		slog.String("console_addr", c.ConsoleAddr),
		slog.Bool("console_token", c.ConsoleToken),
		slog.String("console_tls_cert", c.ConsoleTLSCert),
		slog.String("console_tls_key", c.ConsoleTLSKey),
		slog.String("console_tls_client_ca", c.ConsoleTLSClientCA),
		slog.String("account_signing_seed", redact(c.AccountSigningSeed)),
		slog.String("operator_signing_seed", redact(c.OperatorSigningSeed)),
		slog.String("system_credsfile", c.SystemCredsFile),
		slog.Duration("provider_creds_lifetime", c.ProviderCredsLifetime),
	)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// SettingError is a problem with one setting. Env names the setting even
// when the value came from a flag or file, since that name is what the docs
// and EnvHelp list; Source then says where the value came from.
type SettingError struct {
	Env    string // e.g. WASMCLOUD_RPC_PORT
	Source string // "" for the environment or a default, else e.g. "--rpc-port"
	Msg    string // what is wrong and what is expected
}

// Error formats as "ENV: msg", or "ENV (source): msg" for flag and file values.
func (e *SettingError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("%s (%s): %s", e.Env, e.Source, e.Msg)
	}
	return e.Env + ": " + e.Msg
}

// errs collects SettingErrors so the user sees every problem at once.
type errs struct {
	list    []error
	sources map[string]string
}

func (e *errs) add(env, format string, args ...any) {
	e.list = append(e.list, &SettingError{Env: env, Source: e.sources[env], Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error { return errors.Join(e.list...) }

// Limits enforced by Validate.
const (
	maxWasmPages = 65536   // 4 GiB, the wasm32 address space
	maxPayload   = 1 << 30 // a whole (chunked) payload, held in memory by both ends
)

// Validate checks every setting and returns all problems joined, each naming
// the setting and saying what is expected. Load calls it; call it again after
// building a Config by hand.
func (c *Config) Validate() error { return c.problems().err() }

// problems runs every check; Load filters the result before joining it.
func (c *Config) problems() *errs {
	e := &errs{sources: c.sources}

	switch {
	case c.LatticePrefix == "":
		e.add(EnvLatticePrefix, "must not be empty")
	case strings.ContainsAny(c.LatticePrefix, ".*>") || hasSpace(c.LatticePrefix):
		e.add(EnvLatticePrefix, "%q: must not contain '.', '*', '>' or whitespace, since it is one token of NATS subjects", c.LatticePrefix)
	}

	clusterPub := ""
	if c.ClusterSeed != "" {
		if pub, msg := seedPublicKey(c.ClusterSeed, nkeys.PrefixByteCluster); msg != "" {
			e.add(EnvClusterSeed, "%s", msg)
		} else {
			clusterPub = pub
		}
	}
	for i, k := range c.ClusterIssuers {
		if !nkeys.IsValidPublicClusterKey(k) {
			e.add(EnvClusterIssuers, "entry %d %s: expected a cluster public key (56 characters starting with C)", i+1, showKey(k))
		}
	}
	if clusterPub != "" && !slices.Contains(c.ClusterIssuers, clusterPub) {
		e.add(EnvClusterIssuers, "must contain the public key of %s (%s), or this host would refuse its own invocations", EnvClusterSeed, clusterPub)
	}
	if c.HostSeed != "" {
		if _, msg := seedPublicKey(c.HostSeed, nkeys.PrefixByteServer); msg != "" {
			e.add(EnvHostSeed, "%s", msg)
		}
	}

	c.RPC.validate(e, "RPC")
	c.CTL.validate(e, "CTL")
	c.ProvRPC.validate(e, "PROV_RPC")

	if c.RPCTimeout <= 0 {
		e.add(EnvRPCTimeoutMS, "%d: must be a positive number of milliseconds", c.RPCTimeout.Milliseconds())
	}
	if msg := checkSubject(c.CtlTopicPrefix, false); msg != "" {
		e.add(EnvCtlTopicPrefix, "%q: %s", c.CtlTopicPrefix, msg)
	}
	if c.JSDomain != "" && (strings.ContainsAny(c.JSDomain, ".*>") || hasSpace(c.JSDomain)) {
		e.add(EnvJSDomain, "%q: must not contain '.', '*', '>' or whitespace (NATS refuses such domains)", c.JSDomain)
	}
	for i, r := range c.OCIAllowedInsecure {
		if r == "" || hasSpace(r) || strings.Contains(r, "://") {
			e.add(EnvOCIAllowedInsecure, "entry %d %q: expected a registry host[:port] without scheme or spaces", i+1, r)
		}
	}
	c.validateOCILogin(e)
	if c.PolicyTopic != "" {
		if msg := checkSubject(c.PolicyTopic, false); msg != "" {
			e.add(EnvPolicyTopic, "%q: %s", c.PolicyTopic, msg)
		}
	}
	if c.PolicyChangesTopic != "" {
		if msg := checkSubject(c.PolicyChangesTopic, true); msg != "" {
			e.add(EnvPolicyChangesTopic, "%q: %s", c.PolicyChangesTopic, msg)
		}
	}
	if c.PolicyTimeout <= 0 {
		e.add(EnvPolicyTimeout, "%d: must be a positive number of milliseconds", c.PolicyTimeout.Milliseconds())
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		e.add(EnvLogLevel, "%q: expected one of debug, info, warn, error (or trace, warning)", c.LogLevel)
	}
	for k := range c.Labels {
		if k == "" || hasSpace(k) {
			e.add(EnvLabelPrefix+"{name}", "label name %q: must be non-empty without whitespace", k)
		}
	}

	if c.DataDir == "" {
		e.add(EnvDataDir, "must not be empty (with neither %s nor %s set there is no default)", envXDGDataHome, envHome)
	}
	if msg := checkListen(c.NATSListen, DefaultNATSListen); msg != "" {
		e.add(EnvNATSListen, "%q: %s", c.NATSListen, msg)
	}
	if msg := checkListen(c.MetricsAddr, DefaultMetricsAddr); msg != "" {
		e.add(EnvMetricsAddr, "%q: %s", c.MetricsAddr, msg)
	}
	for i, k := range c.AllowedActorIssuers {
		if !nkeys.IsValidPublicAccountKey(k) {
			e.add(EnvAllowedActorIssuers, "entry %d %s: expected an account public key (56 characters starting with A)", i+1, showKey(k))
		}
	}
	if c.MaxPayloadBytes <= 0 || c.MaxPayloadBytes > maxPayload {
		e.add(EnvMaxPayloadBytes, "%d: out of range 1-%d", c.MaxPayloadBytes, maxPayload)
	}
	if c.ReplayWindow <= 0 {
		e.add(EnvReplayWindow, "%s: must be a positive duration such as 5m", c.ReplayWindow)
	}
	if c.ClockSkew < 0 {
		e.add(EnvClockSkew, "%s: must not be negative", c.ClockSkew)
	}
	if c.ActorMemoryLimitPages < 1 || c.ActorMemoryLimitPages > maxWasmPages {
		e.add(EnvActorMemoryPages, "%d: out of range 1-%d (64 KiB pages)", c.ActorMemoryLimitPages, maxWasmPages)
	}
	if c.ActorQueueLength < 0 {
		e.add(EnvActorQueue, "%d: must not be negative", c.ActorQueueLength)
	}
	if c.ActorStartTimeout <= 0 {
		e.add(EnvActorStartTimeout, "%s: must be a positive duration such as 5s", c.ActorStartTimeout)
	}
	if c.Cache != CacheAuto && c.Cache != CacheStream && c.Cache != CacheKV {
		e.add(EnvCache, "%q: must be auto, stream or kv", c.Cache)
	}
	if c.CacheStorage != "file" && c.CacheStorage != "memory" {
		e.add(EnvCacheStorage, "%q: must be file or memory", c.CacheStorage)
	}
	if c.CacheReplicas < 1 || c.CacheReplicas > 5 {
		e.add(EnvCacheReplicas, "%d: must be 1 to 5", c.CacheReplicas)
	}
	if c.NATSKeepalive.Interval < 100*time.Millisecond {
		e.add(EnvNATSPingInterval, "%s: must be at least 100ms, such as 1s", c.NATSKeepalive.Interval)
	}
	if c.NATSKeepalive.Misses < 1 {
		e.add(EnvNATSPingMisses, "%d: must be at least 1", c.NATSKeepalive.Misses)
	}
	c.supervisorProblems(e)
	return e
}

// validate checks one NATS connection; prefix is RPC, CTL or PROV_RPC.
func (n NATSConn) validate(e *errs, prefix string) {
	env := func(s string) string { return "WASMCLOUD_" + prefix + "_" + s }
	if n.Host != "" {
		if _, err := ParseServers(n.Host, n.Port, n.TLS); err != nil {
			e.add(env("HOST"), "%v", err)
		}
	}
	if n.Port < 1 || n.Port > 65535 {
		e.add(env("PORT"), "port %d out of range 1-65535", n.Port)
	}
	if n.Seed != "" {
		if _, msg := seedPublicKey(n.Seed, nkeys.PrefixByteUser); msg != "" {
			e.add(env("SEED"), "%s", msg)
		}
	}
	if n.JWT != "" {
		if strings.Count(n.JWT, ".") != 2 {
			e.add(env("JWT"), "not a JWT (expected three dot-separated parts)")
		}
		if n.Seed == "" {
			e.add(env("JWT"), "set without %s; a user JWT needs its seed to sign the server's nonce", env("SEED"))
		}
	}
	if n.CredsFile != "" {
		if n.JWT != "" || n.Seed != "" {
			e.add(env("CREDSFILE"), "set together with %s/%s; give one or the other", env("JWT"), env("SEED"))
		}
		if fi, err := os.Stat(n.CredsFile); err != nil {
			e.add(env("CREDSFILE"), "%s", statMsg(err))
		} else if fi.IsDir() {
			e.add(env("CREDSFILE"), "%s is a directory, expected a NATS .creds file", n.CredsFile)
		}
	}
}

// statMsg words a stat error for a user (the PathError already names the file).
// consoleTLSProblems checks the console's TLS files: certificate and key
// go together, client certificates need HTTPS, and each file exists.
func (c *Config) consoleTLSProblems(e *errs) {
	if (c.ConsoleTLSCert == "") != (c.ConsoleTLSKey == "") {
		e.add(EnvConsoleTLSCert, "%s and %s go together: set both for HTTPS, or neither", EnvConsoleTLSCert, EnvConsoleTLSKey)
	}
	if c.ConsoleTLSClientCA != "" && c.ConsoleTLSCert == "" {
		e.add(EnvConsoleTLSClientCA, "client certificates need HTTPS: set %s and %s to the console's certificate and key", EnvConsoleTLSCert, EnvConsoleTLSKey)
	}
	for _, f := range []struct{ env, path string }{
		{EnvConsoleTLSCert, c.ConsoleTLSCert}, {EnvConsoleTLSKey, c.ConsoleTLSKey}, {EnvConsoleTLSClientCA, c.ConsoleTLSClientCA},
	} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err != nil {
			e.add(f.env, "%s", statMsg(err))
		} else if fi.IsDir() {
			e.add(f.env, "%s is a directory, expected a PEM file", f.path)
		}
	}
}

func statMsg(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Path + ": no such file"
		}
	}
	return err.Error()
}

// seedPublicKey decodes an nkeys seed of the given role and returns its public
// key, or a message saying what is wrong. The message never contains the
// seed: errors end up in logs.
func seedPublicKey(seed string, want nkeys.PrefixByte) (string, string) {
	expect := "expected " + roleSeed(want)
	prefix, _, err := nkeys.DecodeSeed([]byte(seed))
	if err != nil {
		return "", "not a valid nkeys seed; " + expect
	}
	if prefix != want {
		return "", "is " + roleSeed(prefix) + "; " + expect
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", "not a valid nkeys seed; " + expect
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", "not a valid nkeys seed; " + expect
	}
	return pub, ""
}

// roleSeed names the seed of an nkeys role for messages, e.g. "a cluster seed (SC...)".
func roleSeed(p nkeys.PrefixByte) string {
	article, name, letter := "a", p.String(), ""
	switch p {
	case nkeys.PrefixByteCluster:
		letter = "C"
	case nkeys.PrefixByteServer:
		letter = "N"
	case nkeys.PrefixByteUser:
		letter = "U"
	case nkeys.PrefixByteAccount:
		article, letter = "an", "A"
	case nkeys.PrefixByteOperator:
		article, letter = "an", "O"
	case nkeys.PrefixByteCurve:
		name, letter = "curve", "X"
	default:
		return "an unknown kind of seed"
	}
	return article + " " + name + " seed (S" + letter + "...)"
}

// showKey quotes a would-be public key for an error message, unless it looks
// like a seed: a seed pasted into a list of public keys must not be logged.
func showKey(k string) string {
	if strings.HasPrefix(k, "S") {
		return "(a seed, not shown; give its public key)"
	}
	return strconv.Quote(k)
}

// checkSubject checks a NATS subject (or subject prefix) and returns a
// message when it is unusable; wildcards only when they make sense.
func checkSubject(s string, wildcards bool) string {
	if s == "" {
		return "must not be empty"
	}
	if hasSpace(s) {
		return "must not contain whitespace"
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return "empty subject token (leading, trailing or double '.')"
		}
		if !wildcards && (strings.ContainsAny(tok, "*>")) {
			return "must not contain the wildcards '*' or '>'"
		}
	}
	return ""
}

// checkListen checks a host:port listen address; port 0 (any free port) is
// allowed because tests and ad hoc runs use it. example is the setting's own
// default, so the hint never suggests another listener's port.
func checkListen(addr, example string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "expected host:port, e.g. " + example
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "port must be a number 0-65535"
	}
	return ""
}

// IsLoopbackAddr tells whether a host:port listens on loopback only: a
// loopback IP or "localhost". An empty host or 0.0.0.0 listens everywhere.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

// supervisorProblems checks the settings of `latticed up`'s supervisor.
func (c *Config) supervisorProblems(e *errs) {
	if c.ConsoleAddr != "" {
		if msg := checkListen(c.ConsoleAddr, DefaultConsoleAddr); msg != "" {
			e.add(EnvConsoleAddr, "%q: %s (or empty to turn the console off)", c.ConsoleAddr, msg)
		} else if !IsLoopbackAddr(c.ConsoleAddr) && !c.ConsoleToken && c.ConsoleTLSClientCA == "" {
			e.add(EnvConsoleAddr, "%q is not a loopback address: the console runs the lattice, so off loopback it needs a login (set %s=true, or %s with %s and %s for client certificates)",
				c.ConsoleAddr, EnvConsoleToken, EnvConsoleTLSClientCA, EnvConsoleTLSCert, EnvConsoleTLSKey)
		}
		c.consoleTLSProblems(e)
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{
		{EnvRestartBackoff, c.RestartBackoff}, {EnvRestartBackoffMax, c.RestartBackoffMax},
		{EnvRestartStable, c.RestartStable}, {EnvCrashLoopWindow, c.CrashLoopWindow},
		{EnvStopGrace, c.StopGrace}, {EnvHealthInterval, c.HealthInterval},
		{EnvProviderCredsLifetime, c.ProviderCredsLifetime},
	} {
		if d.v <= 0 {
			e.add(d.env, "%s: must be a positive duration", d.v)
		}
	}
	if c.RestartBackoffMax > 0 && c.RestartBackoffMax < c.RestartBackoff {
		e.add(EnvRestartBackoffMax, "%s: must not be less than %s (%s)", c.RestartBackoffMax, EnvRestartBackoff, c.RestartBackoff)
	}
	if c.CrashLoopCount < 1 {
		e.add(EnvCrashLoopCount, "%d: must be at least 1", c.CrashLoopCount)
	}
	if c.ProviderCredsLifetime > 0 && c.ProviderCredsLifetime < 10*time.Second {
		e.add(EnvProviderCredsLifetime, "%s: must be at least 10s (credentials are renewed at half their lifetime)", c.ProviderCredsLifetime)
	}
	if c.AccountSigningSeed != "" {
		if _, msg := seedPublicKey(c.AccountSigningSeed, nkeys.PrefixByteAccount); msg != "" {
			e.add(EnvAccountSigningSeed, "%s", msg)
		}
	}
	if c.OperatorSigningSeed != "" {
		if _, msg := seedPublicKey(c.OperatorSigningSeed, nkeys.PrefixByteOperator); msg != "" {
			e.add(EnvOperatorSigningSeed, "%s", msg)
		}
		if c.AccountSigningSeed == "" {
			e.add(EnvOperatorSigningSeed, "set without %s; revocations apply to users minted with the account signing key", EnvAccountSigningSeed)
		}
		if c.SystemCredsFile == "" {
			e.add(EnvOperatorSigningSeed, "set without %s; account updates are pushed over the system account", EnvSystemCredsFile)
		}
	}
	if c.SystemCredsFile != "" {
		if fi, err := os.Stat(c.SystemCredsFile); err != nil {
			e.add(EnvSystemCredsFile, "%s", statMsg(err))
		} else if fi.IsDir() {
			e.add(EnvSystemCredsFile, "%s is a directory, expected a NATS .creds file", c.SystemCredsFile)
		}
	}
}

package config

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latticed/latticed/internal/restart"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/rpc"
)

// Environment variable names. This block is the one source of truth: flags,
// config-file keys, defaults, help text and error messages are all derived
// from the settings table below, which refers to these constants.
//
// WASMCLOUD_* names and meanings are the ones wasmCloud hosts use, so an
// existing lattice's environment works unchanged; LATTICED_* are our own.
const (
	EnvLatticePrefix      = "WASMCLOUD_LATTICE_PREFIX"
	EnvClusterSeed        = "WASMCLOUD_CLUSTER_SEED"
	EnvClusterIssuers     = "WASMCLOUD_CLUSTER_ISSUERS"
	EnvHostSeed           = "WASMCLOUD_HOST_SEED"
	EnvRPCHost            = "WASMCLOUD_RPC_HOST"
	EnvRPCPort            = "WASMCLOUD_RPC_PORT"
	EnvRPCJWT             = "WASMCLOUD_RPC_JWT"
	EnvRPCSeed            = "WASMCLOUD_RPC_SEED"
	EnvRPCCredsFile       = "WASMCLOUD_RPC_CREDSFILE"
	EnvRPCTLS             = "WASMCLOUD_RPC_TLS"
	EnvCtlHost            = "WASMCLOUD_CTL_HOST"
	EnvCtlPort            = "WASMCLOUD_CTL_PORT"
	EnvCtlJWT             = "WASMCLOUD_CTL_JWT"
	EnvCtlSeed            = "WASMCLOUD_CTL_SEED"
	EnvCtlCredsFile       = "WASMCLOUD_CTL_CREDSFILE"
	EnvCtlTLS             = "WASMCLOUD_CTL_TLS"
	EnvProvRPCHost        = "WASMCLOUD_PROV_RPC_HOST"
	EnvProvRPCPort        = "WASMCLOUD_PROV_RPC_PORT"
	EnvProvRPCJWT         = "WASMCLOUD_PROV_RPC_JWT"
	EnvProvRPCSeed        = "WASMCLOUD_PROV_RPC_SEED"
	EnvProvRPCCredsFile   = "WASMCLOUD_PROV_RPC_CREDSFILE"
	EnvProvRPCTLS         = "WASMCLOUD_PROV_RPC_TLS"
	EnvRPCTimeoutMS       = "WASMCLOUD_RPC_TIMEOUT_MS"
	EnvCtlTopicPrefix     = "WASMCLOUD_CTL_TOPIC_PREFIX"
	EnvJSDomain           = "WASMCLOUD_JS_DOMAIN"
	EnvAllowFileLoad      = "WASMCLOUD_ALLOW_FILE_LOAD"
	EnvOCIAllowLatest     = "WASMCLOUD_OCI_ALLOW_LATEST"
	EnvOCIAllowedInsecure = "WASMCLOUD_OCI_ALLOWED_INSECURE"
	EnvPolicyTopic        = "WASMCLOUD_POLICY_TOPIC"
	EnvPolicyChangesTopic = "WASMCLOUD_POLICY_CHANGES_TOPIC"
	EnvPolicyTimeout      = "WASMCLOUD_POLICY_TIMEOUT"
	EnvStructuredLogging  = "WASMCLOUD_STRUCTURED_LOGGING_ENABLED"
	EnvLogLevel           = "WASMCLOUD_LOG_LEVEL"
	// EnvLabelPrefix is a prefix, not a variable: every WASMCLOUD_LABEL_{name}
	// variable becomes host label {name}, lower-cased.
	EnvLabelPrefix = "WASMCLOUD_LABEL_"

	EnvConfig      = "LATTICED_CONFIG"
	EnvDataDir     = "LATTICED_DATA_DIR"
	EnvNATSListen  = "LATTICED_NATS_LISTEN"
	EnvMetricsAddr = "LATTICED_METRICS_ADDR"
	// EnvTolerateStartFailures lets `latticed up` run on when an actor given
	// with --start-actor or an item of --apply fails (default: exit 1).
	EnvTolerateStartFailures = "LATTICED_TOLERATE_START_FAILURES"
	EnvAllowedActorIssuers   = "LATTICED_ALLOWED_ACTOR_ISSUERS"
	EnvMaxPayloadBytes       = "LATTICED_MAX_PAYLOAD_BYTES"
	EnvReplayWindow          = "LATTICED_REPLAY_WINDOW"
	EnvClockSkew             = "LATTICED_CLOCK_SKEW"
	EnvActorMemoryPages      = "LATTICED_ACTOR_MEMORY_PAGES"
	EnvActorQueue            = "LATTICED_ACTOR_QUEUE"
	EnvActorStartTimeout     = "LATTICED_ACTOR_START_TIMEOUT"
	EnvCacheStorage          = "LATTICED_CACHE_STORAGE"
	EnvCache                 = "LATTICED_CACHE"
	EnvCacheReplicas         = "LATTICED_CACHE_REPLICAS"
	EnvNATSPingInterval      = "LATTICED_NATS_PING_INTERVAL"
	EnvNATSPingMisses        = "LATTICED_NATS_PING_MISSES"

	// Supervisor (latticed up) settings.
	EnvAdminSocket           = "LATTICED_ADMIN_SOCKET"
	EnvRestartBackoff        = "LATTICED_RESTART_BACKOFF"
	EnvRestartBackoffMax     = "LATTICED_RESTART_BACKOFF_MAX"
	EnvRestartStable         = "LATTICED_RESTART_STABLE"
	EnvCrashLoopCount        = "LATTICED_CRASH_LOOP_COUNT"
	EnvCrashLoopWindow       = "LATTICED_CRASH_LOOP_WINDOW"
	EnvStopGrace             = "LATTICED_STOP_GRACE"
	EnvHealthInterval        = "LATTICED_HEALTH_INTERVAL"
	EnvAccountSigningSeed    = "LATTICED_ACCOUNT_SIGNING_SEED"
	EnvOperatorSigningSeed   = "LATTICED_OPERATOR_SIGNING_SEED"
	EnvSystemCredsFile       = "LATTICED_SYSTEM_CREDSFILE"
	EnvProviderCredsLifetime = "LATTICED_PROVIDER_CREDS_LIFETIME"
	EnvConsoleAddr           = "LATTICED_CONSOLE_ADDR"
	EnvConsoleToken          = "LATTICED_CONSOLE_TOKEN"

	// The web console's TLS: its certificate and key (HTTPS), and the CAs
	// whose client certificates it requires (a login by certificate).
	EnvConsoleTLSCert     = "LATTICED_CONSOLE_TLS_CERT"
	EnvConsoleTLSKey      = "LATTICED_CONSOLE_TLS_KEY"
	EnvConsoleTLSClientCA = "LATTICED_CONSOLE_TLS_CLIENT_CA"
)

// Variables read only to compute the default data directory. They are not
// settings of ours, so they are not exported and not listed in EnvHelp.
const (
	envXDGDataHome = "XDG_DATA_HOME"
	envHome        = "HOME"
)

// Defaults that other packages may want to show or compare against. The
// invocation defaults (timeout, payload limit, replay window, clock skew)
// are rpc's, beside the Server that uses them; the restart defaults are
// restart's, beside its Policy; the lattice and control-interface
// prefixes are lattice's, beside the subjects they begin.
const (
	DefaultNATSPort              = 4222
	DefaultPolicyTimeout         = 1000 * time.Millisecond
	DefaultLogLevel              = "info"
	DefaultNATSListen            = "127.0.0.1:4222"
	DefaultMetricsAddr           = "127.0.0.1:9464"
	DefaultActorMemoryLimitPages = 4096 // 64 KiB pages: 256 MiB
	DefaultActorQueueLength      = 256
	DefaultActorStartTimeout     = 5 * time.Second
	DefaultCacheStorage          = "file"
	DefaultCache                 = CacheAuto
	DefaultCacheReplicas         = 1
	DefaultStopGrace             = 10 * time.Second
	DefaultHealthInterval        = 30 * time.Second
	DefaultProviderCredsLifetime = 15 * time.Minute
	DefaultConsoleAddr           = "127.0.0.1:4000" // wasmCloud's washboard port
)

// kind says how a setting's raw value (env string, file value, flag) is decoded.
type kind int

const (
	kindString   kind = iota
	kindBool          // wasmCloud's boolean words, see parseBool
	kindInt           // base-10 integer
	kindUint32        // base-10 unsigned 32-bit integer
	kindMillis        // integer milliseconds, decoded to time.Duration
	kindDuration      // Go duration string ("5m"), decoded to time.Duration
	kindList          // comma-separated string, or a list in a file
	kindLabels        // special: WASMCLOUD_LABEL_* / --label / labels map
	kindConfig        // special: the config file path itself
)

// setting describes one configuration value. The file key is the env name
// lower-cased without its WASMCLOUD_/LATTICED_ prefix and the flag is that key
// with dashes, so none of them can drift apart.
type setting struct {
	env     string
	kind    kind
	def     any    // default in raw form (as a file would hold it); nil = zero value
	defHelp string // default as shown by EnvHelp when def is not self-explanatory
	usage   string // one line, shown by EnvHelp and --help
	secret  bool   // never echo the value (seeds, JWTs)
	reads   part   // who reads the value; every setting names at least one
	set     func(c *Config, v any)
}

// part is a reader of settings. A setting marked partHost is resolved into
// HostSettings by Config.Host; TestHostSettingsCarryEveryHostSetting checks
// both directions, so a new setting must say where it goes.
type part uint8

const (
	partHost       part = 1 << iota // the wasm host (HostSettings)
	partNode                        // the process around it: NATS connections, keys, logs, data dir, health server
	partSupervisor                  // latticed up's supervisor and the providers it starts
)

// key is the config-file and viper key of s.
func (s *setting) key() string {
	if s.kind == kindLabels {
		return "labels"
	}
	k := strings.TrimPrefix(s.env, "WASMCLOUD_")
	k = strings.TrimPrefix(k, "LATTICED_")
	return strings.ToLower(k)
}

// flag is the command-line flag name of s.
func (s *setting) flag() string {
	if s.kind == kindLabels {
		return "label" // repeatable, one key=value per use
	}
	return strings.ReplaceAll(s.key(), "_", "-")
}

// envDisplay is the name shown to users for s.
func (s *setting) envDisplay() string {
	if s.kind == kindLabels {
		return EnvLabelPrefix + "{name}"
	}
	return s.env
}

// natsSettings returns the six settings of one NATS connection; prefix is
// "RPC", "CTL" or "PROV_RPC" and field selects the NATSConn in Config.
func natsSettings(prefix, what string, field func(c *Config) *NATSConn) []setting {
	env := func(s string) string { return "WASMCLOUD_" + prefix + "_" + s }
	return []setting{
		{env: env("HOST"), reads: partNode | partSupervisor, kind: kindString,
			usage: "NATS server(s) for " + what + ": comma list of host, host:port or nats://host:port; empty = not configured",
			set:   func(c *Config, v any) { field(c).Host = v.(string) }},
		{env: env("PORT"), reads: partNode | partSupervisor, kind: kindInt, def: DefaultNATSPort,
			usage: "NATS port for " + what + " (entries of the host list without one)",
			set:   func(c *Config, v any) { field(c).Port = v.(int) }},
		{env: env("JWT"), reads: partNode | partSupervisor, kind: kindString, secret: true,
			usage: "NATS user JWT for " + what + " (needs the matching seed)",
			set:   func(c *Config, v any) { field(c).JWT = v.(string) }},
		{env: env("SEED"), reads: partNode | partSupervisor, kind: kindString, secret: true,
			usage: "NATS user seed (SU...) for " + what,
			set:   func(c *Config, v any) { field(c).Seed = v.(string) }},
		{env: env("CREDSFILE"), reads: partNode | partSupervisor, kind: kindString,
			usage: "NATS .creds file for " + what + " (instead of JWT+seed)",
			set:   func(c *Config, v any) { field(c).CredsFile = v.(string) }},
		{env: env("TLS"), reads: partNode | partSupervisor, kind: kindBool, def: false,
			usage: "use TLS for " + what,
			set:   func(c *Config, v any) { field(c).TLS = v.(bool) }},
	}
}

// settings is the table every other part of this package is derived from.
var settings = func() []setting {
	s := []setting{
		{env: EnvConfig, reads: partNode, kind: kindConfig,
			usage: "YAML (.yaml/.yml) or TOML (.toml) config file"},
		{env: EnvLatticePrefix, reads: partHost | partNode | partSupervisor, kind: kindString, def: lattice.DefaultLatticePrefix,
			usage: "lattice ID used in every subject; no '.', '*', '>' or spaces",
			set:   func(c *Config, v any) { c.LatticePrefix = v.(string) }},
		{env: EnvClusterSeed, reads: partNode, kind: kindString, secret: true, defHelp: "ad hoc",
			usage: "cluster seed (SC...) that signs invocations",
			set:   func(c *Config, v any) { c.ClusterSeed = v.(string) }},
		{env: EnvClusterIssuers, reads: partHost | partSupervisor, kind: kindList,
			usage: "comma list of trusted cluster public keys (C...)",
			set:   func(c *Config, v any) { c.ClusterIssuers = v.([]string) }},
		{env: EnvHostSeed, reads: partNode, kind: kindString, secret: true, defHelp: "generated",
			usage: "host server seed (SN...); host ID = its public key",
			set:   func(c *Config, v any) { c.HostSeed = v.(string) }},
	}
	s = append(s, natsSettings("RPC", "RPC", func(c *Config) *NATSConn { return &c.RPC })...)
	s = append(s, natsSettings("CTL", "the control interface", func(c *Config) *NATSConn { return &c.CTL })...)
	s = append(s, natsSettings("PROV_RPC", "providers", func(c *Config) *NATSConn { return &c.ProvRPC })...)
	s = append(s, []setting{
		{env: EnvRPCTimeoutMS, reads: partHost | partSupervisor, kind: kindMillis, def: int(rpc.DefaultTimeout / time.Millisecond),
			usage: "RPC timeout in milliseconds; also sent to providers",
			set:   func(c *Config, v any) { c.RPCTimeout = v.(time.Duration) }},
		{env: EnvCtlTopicPrefix, reads: partHost | partNode | partSupervisor, kind: kindString, def: lattice.DefaultCtlTopicPrefix,
			usage: "control interface subject prefix",
			set:   func(c *Config, v any) { c.CtlTopicPrefix = v.(string) }},
		{env: EnvJSDomain, reads: partHost | partSupervisor, kind: kindString,
			usage: "JetStream domain for the lattice cache and KV",
			set:   func(c *Config, v any) { c.JSDomain = v.(string) }},
		{env: EnvAllowFileLoad, reads: partHost | partSupervisor, kind: kindBool, def: false,
			usage: "allow file:// actor and provider references",
			set:   func(c *Config, v any) { c.AllowFileLoad = v.(bool) }},
		{env: EnvOCIAllowLatest, reads: partNode | partSupervisor, kind: kindBool, def: false,
			usage: "allow OCI references tagged :latest",
			set:   func(c *Config, v any) { c.OCIAllowLatest = v.(bool) }},
		{env: EnvOCIAllowedInsecure, reads: partNode | partSupervisor, kind: kindList,
			usage: "comma list of OCI registries that may be used over plain HTTP",
			set:   func(c *Config, v any) { c.OCIAllowedInsecure = v.([]string) }},
		{env: EnvOCIRegistry, reads: partNode | partSupervisor, kind: kindString,
			usage: "OCI registry (host[:port]) that the user and password below log in to; no other registry gets them",
			set:   func(c *Config, v any) { c.OCIRegistry = v.(string) }},
		{env: EnvOCIRegistryUser, reads: partNode | partSupervisor, kind: kindString,
			usage: "username for the OCI registry named by " + EnvOCIRegistry,
			set:   func(c *Config, v any) { c.OCIRegistryUser = v.(string) }},
		{env: EnvOCIRegistryPassword, reads: partNode | partSupervisor, kind: kindString, secret: true,
			usage: "password or token for the OCI registry named by " + EnvOCIRegistry,
			set:   func(c *Config, v any) { c.OCIRegistryPassword = v.(string) }},
		{env: EnvPolicyTopic, reads: partHost | partSupervisor, kind: kindString, defHelp: "(policy off)",
			usage: "policy service subject; empty = no policy checks",
			set:   func(c *Config, v any) { c.PolicyTopic = v.(string) }},
		{env: EnvPolicyChangesTopic, reads: partHost, kind: kindString,
			usage: "subject on which the policy service announces changed decisions",
			set:   func(c *Config, v any) { c.PolicyChangesTopic = v.(string) }},
		{env: EnvPolicyTimeout, reads: partHost, kind: kindMillis, def: int(DefaultPolicyTimeout / time.Millisecond),
			usage: "policy request timeout in milliseconds; no answer = deny",
			set:   func(c *Config, v any) { c.PolicyTimeout = v.(time.Duration) }},
		{env: EnvStructuredLogging, reads: partNode | partSupervisor, kind: kindBool, def: false,
			usage: "JSON logs on stderr (true) or text (false); unset: JSON unless stderr is a terminal",
			set:   func(c *Config, v any) { c.StructuredLogging = v.(bool) }},
		{env: EnvLogLevel, reads: partNode | partSupervisor, kind: kindString, def: DefaultLogLevel,
			usage: "debug|info|warn|error (trace=debug, warning=warn)",
			set:   func(c *Config, v any) { c.LogLevel = v.(string) }},
		{env: EnvLabelPrefix, reads: partHost | partSupervisor, kind: kindLabels,
			usage: "host label {name, lower-cased}=value (flag: --label k=v)"},
		{env: EnvDataDir, reads: partHost | partNode | partSupervisor, kind: kindString, defHelp: "$XDG_DATA_HOME/latticed or ~/.local/share/latticed",
			usage: "JetStream store, compile cache, keys, creds",
			set:   func(c *Config, v any) { c.DataDir = v.(string) }},
		{env: EnvNATSListen, reads: partNode | partSupervisor, kind: kindString, def: DefaultNATSListen,
			usage: "embedded NATS listen host:port (only without RPC/CTL hosts)",
			set:   func(c *Config, v any) { c.NATSListen = v.(string) }},
		{env: EnvMetricsAddr, reads: partNode | partSupervisor, kind: kindString, def: DefaultMetricsAddr,
			usage: "host:port for /metrics, /healthz, /readyz",
			set:   func(c *Config, v any) { c.MetricsAddr = v.(string) }},
		{env: EnvTolerateStartFailures, reads: partSupervisor, kind: kindBool, def: false,
			usage: "up: keep running when a --start-actor or --apply item fails (default: exit 1)",
			set:   func(c *Config, v any) { c.TolerateStartFailures = v.(bool) }},
		{env: EnvAllowedActorIssuers, reads: partHost | partSupervisor, kind: kindList, defHelp: "(any)",
			usage: "comma list of account keys (A...) allowed to sign actors; empty = any",
			set:   func(c *Config, v any) { c.AllowedActorIssuers = v.([]string) }},
		{env: EnvMaxPayloadBytes, reads: partHost | partSupervisor, kind: kindInt, def: rpc.DefaultMaxPayloadBytes,
			usage: "largest invocation or response payload in bytes; payloads over 900 KiB travel through the lattice object store",
			set:   func(c *Config, v any) { c.MaxPayloadBytes = v.(int) }},
		{env: EnvReplayWindow, reads: partHost | partSupervisor, kind: kindDuration, def: rpc.DefaultReplayWindow.String(),
			usage: "invocations issued longer ago (plus the clock skew) are refused; IDs are remembered for the window plus twice the skew",
			set:   func(c *Config, v any) { c.ReplayWindow = v.(time.Duration) }},
		{env: EnvClockSkew, reads: partHost | partSupervisor, kind: kindDuration, def: rpc.DefaultClockSkew.String(),
			usage: "tolerated clock difference for invocation timestamps",
			set:   func(c *Config, v any) { c.ClockSkew = v.(time.Duration) }},
		{env: EnvActorMemoryPages, reads: partHost, kind: kindUint32, def: DefaultActorMemoryLimitPages,
			usage: "actor memory limit in 64 KiB wasm pages (4096 = 256 MiB)",
			set:   func(c *Config, v any) { c.ActorMemoryLimitPages = v.(uint32) }},
		{env: EnvActorQueue, reads: partHost, kind: kindInt, def: DefaultActorQueueLength,
			usage: "invocations that may wait for a free actor instance",
			set:   func(c *Config, v any) { c.ActorQueueLength = v.(int) }},
		{env: EnvActorStartTimeout, reads: partHost, kind: kindDuration, def: DefaultActorStartTimeout.String(),
			usage: "deadline for starting one actor instance (its initialisation code), e.g. 5s",
			set:   func(c *Config, v any) { c.ActorStartTimeout = v.(time.Duration) }},
		{env: EnvCache, reads: partHost, kind: kindString, def: DefaultCache,
			usage: "lattice cache form: stream (LATTICECACHE_{prefix}, wasmCloud <= 0.59), kv (bucket LATTICEDATA_{prefix}, wasmCloud >= 0.60) or auto (kv once the bucket exists, else stream)",
			set:   func(c *Config, v any) { c.Cache = v.(string) }},
		{env: EnvCacheStorage, reads: partHost | partSupervisor, kind: kindString, def: DefaultCacheStorage,
			usage: "storage of the LATTICECACHE_{prefix} stream: file or memory (wasmCloud uses memory)",
			set:   func(c *Config, v any) { c.CacheStorage = v.(string) }},
		{env: EnvCacheReplicas, reads: partHost | partSupervisor, kind: kindInt, def: DefaultCacheReplicas,
			usage: "replicas of the LATTICECACHE_{prefix} stream in a clustered NATS (1-5)",
			set:   func(c *Config, v any) { c.CacheReplicas = v.(int) }},
		{env: EnvNATSPingInterval, reads: partNode | partSupervisor, kind: kindDuration, def: lattice.DefaultNATSPingInterval.String(),
			usage: "keepalive: every NATS connection PINGs its server this often",
			set:   func(c *Config, v any) { c.NATSKeepalive.Interval = v.(time.Duration) }},
		{env: EnvNATSPingMisses, reads: partNode | partSupervisor, kind: kindInt, def: lattice.DefaultNATSPingMisses,
			usage: "keepalive: unanswered PINGs after which a connection fails over and /readyz is unready",
			set:   func(c *Config, v any) { c.NATSKeepalive.Misses = v.(int) }},
		{env: EnvAdminSocket, reads: partNode | partSupervisor, kind: kindString, defHelp: "{data dir}/run/admin.sock",
			usage: "supervisor admin socket: up listens on it; host and ctl reach their supervisor through it",
			set:   func(c *Config, v any) { c.AdminSocket = v.(string) }},
		{env: EnvRestartBackoff, reads: partSupervisor, kind: kindDuration, def: restart.DefaultBackoff.String(),
			usage: "first delay before restarting a crashed child; doubles per crash, with jitter",
			set:   func(c *Config, v any) { c.RestartBackoff = v.(time.Duration) }},
		{env: EnvRestartBackoffMax, reads: partSupervisor, kind: kindDuration, def: restart.DefaultBackoffMax.String(),
			usage: "longest delay before restarting a crashed child",
			set:   func(c *Config, v any) { c.RestartBackoffMax = v.(time.Duration) }},
		{env: EnvRestartStable, reads: partSupervisor, kind: kindDuration, def: restart.DefaultStable.String(),
			usage: "a child up this long has its restart delay reset",
			set:   func(c *Config, v any) { c.RestartStable = v.(time.Duration) }},
		{env: EnvCrashLoopCount, reads: partSupervisor, kind: kindInt, def: restart.DefaultCrashLoopCount,
			usage: "this many crashes within the crash-loop window mark a child failed",
			set:   func(c *Config, v any) { c.CrashLoopCount = v.(int) }},
		{env: EnvCrashLoopWindow, reads: partSupervisor, kind: kindDuration, def: restart.DefaultCrashLoopWindow.String(),
			usage: "window in which crashes count toward a crash loop",
			set:   func(c *Config, v any) { c.CrashLoopWindow = v.(time.Duration) }},
		{env: EnvStopGrace, reads: partSupervisor, kind: kindDuration, def: DefaultStopGrace.String(),
			usage: "how long a stopping node waits for children to drain before killing them",
			set:   func(c *Config, v any) { c.StopGrace = v.(time.Duration) }},
		{env: EnvHealthInterval, reads: partSupervisor, kind: kindDuration, def: DefaultHealthInterval.String(),
			usage: "interval between provider health checks",
			set:   func(c *Config, v any) { c.HealthInterval = v.(time.Duration) }},
		{env: EnvAccountSigningSeed, reads: partSupervisor, kind: kindString, secret: true,
			usage: "external NATS: account signing seed (SA...) to mint a user per provider",
			set:   func(c *Config, v any) { c.AccountSigningSeed = v.(string) }},
		{env: EnvOperatorSigningSeed, reads: partSupervisor, kind: kindString, secret: true,
			usage: "external NATS: operator signing seed (SO...) to push account revocations",
			set:   func(c *Config, v any) { c.OperatorSigningSeed = v.(string) }},
		{env: EnvSystemCredsFile, reads: partSupervisor, kind: kindString,
			usage: "external NATS: system-account .creds file, to push account revocations",
			set:   func(c *Config, v any) { c.SystemCredsFile = v.(string) }},
		{env: EnvProviderCredsLifetime, reads: partSupervisor, kind: kindDuration, def: DefaultProviderCredsLifetime.String(),
			usage: "lifetime of a provider's minted NATS user (renewed while healthy); its revocation is pruned once it has passed",
			set:   func(c *Config, v any) { c.ProviderCredsLifetime = v.(time.Duration) }},
		{env: EnvConsoleAddr, reads: partSupervisor, kind: kindString, def: DefaultConsoleAddr,
			usage: "up: host:port of the web console (an admin surface; empty = off); off loopback it needs " + EnvConsoleToken + " or " + EnvConsoleTLSClientCA,
			set:   func(c *Config, v any) { c.ConsoleAddr = v.(string) }},
		{env: EnvConsoleToken, reads: partSupervisor, kind: kindBool, def: false,
			usage: "up: the console asks for a login token, generated into {data dir}/console.token (0600)",
			set:   func(c *Config, v any) { c.ConsoleToken = v.(bool) }},
		{env: EnvConsoleTLSCert, reads: partSupervisor, kind: kindString,
			usage: "up: PEM certificate (chain) the console serves HTTPS with; needs " + EnvConsoleTLSKey,
			set:   func(c *Config, v any) { c.ConsoleTLSCert = v.(string) }},
		{env: EnvConsoleTLSKey, reads: partSupervisor, kind: kindString,
			usage: "up: PEM private key of " + EnvConsoleTLSCert,
			set:   func(c *Config, v any) { c.ConsoleTLSKey = v.(string) }},
		{env: EnvConsoleTLSClientCA, reads: partSupervisor, kind: kindString,
			usage: "up: PEM CA certificates; set, the console (HTTPS) requires a client certificate they issued: a login that works off loopback",
			set:   func(c *Config, v any) { c.ConsoleTLSClientCA = v.(string) }},
	}...)
	return s
}()

// EnvHelp returns a table of every environment variable latticed reads, with
// its default and meaning, for commands' --help text. Each variable also has a
// flag (the name in lower case without WASMCLOUD_/LATTICED_, dashes for
// underscores) and a config-file key (same, with underscores).
func EnvHelp() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VARIABLE\tDEFAULT\tMEANING")
	for i := range settings {
		s := &settings[i]
		fmt.Fprintf(w, "%s\t%s\t%s\n", s.envDisplay(), s.defaultText(), s.usage)
	}
	_ = w.Flush() // writes to a strings.Builder cannot fail
	return b.String()
}

// defaultText renders the default of s for help output.
func (s *setting) defaultText() string {
	if s.defHelp != "" {
		return s.defHelp
	}
	switch v := s.def.(type) {
	case nil:
		return "(none)"
	case bool:
		return fmt.Sprint(v)
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// FlagEnv names the environment variable of a command-line flag, e.g.
// "rpc-port" → WASMCLOUD_RPC_PORT and "config" → LATTICED_CONFIG. ok is
// false for flags that are no setting, and for "label", whose values map to
// WASMCLOUD_LABEL_{name} variables one by one.
func FlagEnv(flag string) (env string, ok bool) {
	for i := range settings {
		s := &settings[i]
		if s.kind != kindLabels && s.flag() == flag {
			return s.env, true
		}
	}
	return "", false
}

// The lattice cache's forms (LATTICED_CACHE, docs/protocol.md §11).
const (
	// CacheAuto uses the bucket LATTICEDATA_{prefix} once it exists (a
	// wasmCloud 0.60+ host, or a latticed in kv mode, made it), else the
	// stream, and switches when the bucket appears.
	CacheAuto = "auto"
	// CacheStream uses the stream LATTICECACHE_{prefix} (wasmCloud <= 0.59).
	CacheStream = "stream"
	// CacheKV uses the bucket LATTICEDATA_{prefix} (wasmCloud >= 0.60).
	CacheKV = "kv"
)

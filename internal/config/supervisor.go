package config

import (
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/latticed/latticed/internal/restart"
)

// SupervisorSettings are the settings of `latticed up`'s supervisor,
// resolved from a Config once by Config.Supervisor: the NATS endpoints of
// each role, the restart policy, the data dir. The supervisor never sees the
// Config; it keeps one SupervisorSettings value (replaced whole by a
// reload) and reads every setting from it.
//
// Fields are grouped by what consumes them, so a reader sees what each
// part needs. Every setting of the table is here, also those only the host
// child reads (Host): the supervisor must know when a reload changes one,
// since the host child took it at its start. Treat a value as immutable:
// Config.Supervisor copies slices and maps, and nothing changes them after.
type SupervisorSettings struct {
	// ConfigFile is the file the settings were read from, if any; reported only.
	ConfigFile string
	// Lattice is what every process of the node agrees on.
	Lattice LatticeSettings
	// Keys are the seeds the node's keys come from; the command loads the
	// keys (supervisor.Options) and the host child loads its own.
	Keys KeySettings
	// NATS is where each role connects, or the embedded server to run.
	NATS NATSSettings
	// Authority is how the supervisor mints provider users on an external
	// NATS, and revokes them.
	Authority AuthoritySettings
	// Paths are where the node keeps its state.
	Paths PathSettings
	// Children is how the host child and the providers are supervised.
	Children ChildSettings
	// Artifacts is what may be loaded: file references and OCI registries.
	Artifacts ArtifactSettings
	// Health is the node's /metrics, /healthz and /readyz endpoint.
	Health HealthSettings
	// Console is the web console's.
	Console ConsoleSettings
	// Policy is the external policy service, asked before a provider starts.
	Policy PolicySettings
	// Log is the node's logging, handed on to every child.
	Log LogSettings
	// Host are the settings only the host child reads (it loads them
	// itself at start), and its labels, which the supervisor also reads.
	Host HostChildSettings
}

// LatticeSettings are what every process of the node agrees on.
type LatticeSettings struct {
	// Prefix is the lattice ID in every subject.
	Prefix string
	// CtlTopicPrefix is the control interface's subject prefix.
	CtlTopicPrefix string
	// JSDomain is the JetStream domain of the lattice cache and KV buckets.
	JSDomain string
	// ClusterIssuers are the cluster public keys whose invocations are
	// accepted; providers get them in their HostData.
	ClusterIssuers []string
	// RPCTimeout bounds outbound RPC and provider health checks; providers
	// get it as their default timeout.
	RPCTimeout time.Duration
	// MaxPayloadBytes is the largest NATS payload (the embedded server's
	// limit, and the host's).
	MaxPayloadBytes int
	// ClockSkew is the clock difference tolerated on invocation timestamps
	// (and on a server's view of a credential's expiry).
	ClockSkew time.Duration
}

// KeySettings are the seeds of the node's keys; empty means generated.
type KeySettings struct {
	ClusterSeed, HostSeed string
}

// NATSSettings are where each role connects.
type NATSSettings struct {
	// Endpoints is which server serves which role, resolved once
	// (Config.Endpoints); with Embedded set the supervisor runs the server.
	Endpoints Endpoints
	// Listen is the embedded server's host:port.
	Listen string
	// Keepalive is every connection's keepalive, providers' included.
	Keepalive Keepalive
}

// AuthoritySettings let the supervisor mint and revoke provider users on an
// external NATS (docs/security.md).
type AuthoritySettings struct {
	// AccountSigningSeed mints a user per provider; empty: providers share
	// the WASMCLOUD_PROV_RPC_* credentials.
	AccountSigningSeed string
	// OperatorSigningSeed and SystemCredsFile push revocations to the server.
	OperatorSigningSeed string
	SystemCredsFile     string
	// ProviderCredsLifetime is how long a minted provider user is valid.
	ProviderCredsLifetime time.Duration
}

// PathSettings are where the node keeps its state.
type PathSettings struct {
	// DataDir holds the JetStream store, caches, keys and credentials.
	DataDir string
	// AdminSocket is the admin socket; "" = {data dir}/run/admin.sock.
	AdminSocket string
}

// ChildSettings are how children are supervised.
type ChildSettings struct {
	// Restart is when a crashed child is started again.
	Restart restart.Policy
	// StopGrace bounds a graceful stop before children are killed.
	StopGrace time.Duration
	// HealthInterval is the period of provider health checks.
	HealthInterval time.Duration
	// TolerateStartFailures keeps the node running when what it was told
	// to start fails.
	TolerateStartFailures bool
}

// ArtifactSettings are what may be loaded.
type ArtifactSettings struct {
	// AllowFileLoad permits file:// actor and provider references.
	AllowFileLoad bool
	// OCIAllowLatest permits references tagged :latest.
	OCIAllowLatest bool
	// OCIAllowedInsecure are registries reachable over plain HTTP.
	OCIAllowedInsecure []string
	// OCIRegistry is the one registry OCIRegistryUser and
	// OCIRegistryPassword (a secret) log in to.
	OCIRegistry, OCIRegistryUser, OCIRegistryPassword string
}

// HealthSettings are the node's health endpoint.
type HealthSettings struct {
	// MetricsAddr is the host:port of /metrics, /healthz and /readyz.
	MetricsAddr string
}

// ConsoleSettings are the web console's (internal/console).
type ConsoleSettings struct {
	// Addr is its host:port, "" for no console.
	Addr string
	// Token makes it ask for the login token it keeps in the data dir.
	Token bool
	// CertFile and KeyFile make it serve HTTPS; ClientCAFile makes it
	// require a client certificate those CAs issued.
	CertFile, KeyFile, ClientCAFile string
}

// PolicySettings are the external policy service's.
type PolicySettings struct {
	// Topic is its subject; empty disables it.
	Topic string
	// ChangesTopic is where it announces changed decisions.
	ChangesTopic string
	// Timeout bounds one request; no answer in time means deny.
	Timeout time.Duration
}

// LogSettings are the node's logging.
type LogSettings struct {
	// Level is one of debug, info, warn, error.
	Level string
	// Structured selects JSON logs.
	Structured bool
}

// SlogLevel is Level as a slog.Level (info when Level is not valid).
func (l LogSettings) SlogLevel() slog.Level { return slogLevel(l.Level) }

// HostChildSettings are the host child's own settings.
type HostChildSettings struct {
	// Labels are the host's labels; the supervisor sends changes to the
	// host and uses them in policy requests.
	Labels map[string]string
	// AllowedActorIssuers restricts which accounts may sign actors.
	AllowedActorIssuers []string
	// ReplayWindow is how long invocation IDs are remembered.
	ReplayWindow time.Duration
	// ActorMemoryLimitPages, ActorQueueLength and ActorStartTimeout bound
	// actor instances.
	ActorMemoryLimitPages uint32
	ActorQueueLength      int
	ActorStartTimeout     time.Duration
	// CacheStorage ("file" or "memory") and CacheReplicas shape the
	// LATTICECACHE stream.
	CacheStorage  string
	CacheReplicas int
	// Cache is the lattice cache's form: auto, stream or kv (LATTICED_CACHE).
	Cache string
}

// Supervisor resolves the supervisor's settings. Slices and maps are
// copies, so the value is the supervisor's alone.
func (c *Config) Supervisor() SupervisorSettings {
	return SupervisorSettings{
		ConfigFile: c.ConfigFile,
		Lattice: LatticeSettings{
			Prefix: c.LatticePrefix, CtlTopicPrefix: c.CtlTopicPrefix, JSDomain: c.JSDomain,
			ClusterIssuers: slices.Clone(c.ClusterIssuers), RPCTimeout: c.RPCTimeout,
			MaxPayloadBytes: c.MaxPayloadBytes, ClockSkew: c.ClockSkew,
		},
		Keys:  KeySettings{ClusterSeed: c.ClusterSeed, HostSeed: c.HostSeed},
		NATS:  NATSSettings{Endpoints: c.Endpoints(), Listen: c.NATSListen, Keepalive: c.NATSKeepalive},
		Paths: PathSettings{DataDir: c.DataDir, AdminSocket: c.AdminSocket},
		Authority: AuthoritySettings{
			AccountSigningSeed: c.AccountSigningSeed, OperatorSigningSeed: c.OperatorSigningSeed,
			SystemCredsFile: c.SystemCredsFile, ProviderCredsLifetime: c.ProviderCredsLifetime,
		},
		Children: ChildSettings{
			Restart: c.RestartPolicy(), StopGrace: c.StopGrace, HealthInterval: c.HealthInterval,
			TolerateStartFailures: c.TolerateStartFailures,
		},
		Artifacts: ArtifactSettings{
			AllowFileLoad: c.AllowFileLoad, OCIAllowLatest: c.OCIAllowLatest,
			OCIAllowedInsecure: slices.Clone(c.OCIAllowedInsecure),
			OCIRegistry:        c.OCIRegistry, OCIRegistryUser: c.OCIRegistryUser, OCIRegistryPassword: c.OCIRegistryPassword,
		},
		Health:  HealthSettings{MetricsAddr: c.MetricsAddr},
		Console: ConsoleSettings{Addr: c.ConsoleAddr, Token: c.ConsoleToken, CertFile: c.ConsoleTLSCert, KeyFile: c.ConsoleTLSKey, ClientCAFile: c.ConsoleTLSClientCA},
		Policy:  PolicySettings{Topic: c.PolicyTopic, ChangesTopic: c.PolicyChangesTopic, Timeout: c.PolicyTimeout},
		Log:     LogSettings{Level: c.LogLevel, Structured: c.StructuredLogging},
		Host: HostChildSettings{
			Labels: maps.Clone(c.Labels), AllowedActorIssuers: slices.Clone(c.AllowedActorIssuers),
			ReplayWindow: c.ReplayWindow, ActorMemoryLimitPages: c.ActorMemoryLimitPages,
			ActorQueueLength: c.ActorQueueLength, ActorStartTimeout: c.ActorStartTimeout,
			CacheStorage: c.CacheStorage, CacheReplicas: c.CacheReplicas, Cache: c.Cache,
		},
	}
}

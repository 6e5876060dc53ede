package config

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/restart"
)

// HostSettings are the wasm host's settings, resolved from a Config once by
// Config.Host. The host embeds them in its Options and never sees the
// Config: what the host reads is exactly what this type holds, and the
// settings table marks each setting that lands here (see part).
//
// Field names are the host's own, which is why some differ from Config's.
type HostSettings struct {
	// LatticePrefix is the lattice ID in every subject.
	LatticePrefix string
	// CtlTopicPrefix is the control interface's subject prefix.
	CtlTopicPrefix string
	// Issuers are the trusted cluster issuers; the host puts its own
	// cluster key's first when it is missing.
	Issuers []string

	// RPCTimeout bounds outbound RPC.
	RPCTimeout time.Duration
	// AllowFileLoad permits file:// actor references.
	AllowFileLoad bool
	// AllowedActorIssuers restricts which accounts may sign actors; empty allows any.
	AllowedActorIssuers []string
	// MaxPayloadBytes is the largest invocation payload.
	MaxPayloadBytes int
	// ReplayWindow and ClockSkew bound the freshness of incoming invocations.
	ReplayWindow, ClockSkew time.Duration

	// QueueLength is how many invocations may wait for a free actor instance.
	QueueLength int
	// MemoryLimitPages caps an actor instance's memory in 64 KiB pages.
	MemoryLimitPages uint32
	// StartTimeout bounds the start of one actor instance: instantiation
	// and its initialiser (Go's runtime init, _initialize, _start), which
	// guest code controls.
	StartTimeout time.Duration
	// CompileCacheDir keeps compiled actors across restarts; "" = memory only.
	CompileCacheDir string

	// Labels are the host's labels.
	Labels map[string]string
	// JSDomain is the JetStream domain of the lattice cache.
	JSDomain string
	// Cache is the lattice cache's form: CacheAuto, CacheStream or CacheKV.
	Cache string
	// CacheMemoryStorage keeps the LATTICECACHE stream in memory (as
	// wasmCloud does) instead of in files; CacheReplicas is its replica count.
	CacheMemoryStorage bool
	CacheReplicas      int

	// PolicyTopic enables the external policy service; PolicyChangesTopic
	// carries its changed decisions; PolicyTimeout bounds one request.
	PolicyTopic, PolicyChangesTopic string
	PolicyTimeout                   time.Duration
}

// Host resolves the host's settings. Slices and maps are copies, so the
// value is the host's alone.
func (c *Config) Host() HostSettings {
	s := HostSettings{
		LatticePrefix:       c.LatticePrefix,
		CtlTopicPrefix:      c.CtlTopicPrefix,
		Issuers:             slices.Clone(c.ClusterIssuers),
		RPCTimeout:          c.RPCTimeout,
		AllowFileLoad:       c.AllowFileLoad,
		AllowedActorIssuers: slices.Clone(c.AllowedActorIssuers),
		MaxPayloadBytes:     c.MaxPayloadBytes,
		ReplayWindow:        c.ReplayWindow,
		ClockSkew:           c.ClockSkew,
		QueueLength:         c.ActorQueueLength,
		MemoryLimitPages:    c.ActorMemoryLimitPages,
		StartTimeout:        c.ActorStartTimeout,
		Labels:              maps.Clone(c.Labels),
		JSDomain:            c.JSDomain,
		Cache:               c.Cache,
		CacheMemoryStorage:  c.CacheStorage == "memory",
		CacheReplicas:       c.CacheReplicas,
		PolicyTopic:         c.PolicyTopic,
		PolicyChangesTopic:  c.PolicyChangesTopic,
		PolicyTimeout:       c.PolicyTimeout,
	}
	if c.DataDir != "" {
		s.CompileCacheDir = datadir.Path(c.DataDir, datadir.CompileCacheDir)
	}
	return s
}

// WithDefaults returns s with the table's default for each setting a host
// cannot run without (lattice prefix, RPC timeout, payload limit, replay
// window, queue length, memory limit, start timeout) where s leaves it zero
// or negative. Settings resolved by Config.Host come complete; this is for
// settings built by hand, as tests and benchmarks do. A queue length of 0
// also takes the default, as the host always did.
func (s HostSettings) WithDefaults() HostSettings {
	def := defaultConfig()
	if s.LatticePrefix == "" {
		s.LatticePrefix = def.LatticePrefix
	}
	if s.RPCTimeout <= 0 {
		s.RPCTimeout = def.RPCTimeout
	}
	if s.MaxPayloadBytes <= 0 {
		s.MaxPayloadBytes = def.MaxPayloadBytes
	}
	if s.ReplayWindow <= 0 {
		s.ReplayWindow = def.ReplayWindow
	}
	if s.QueueLength <= 0 {
		s.QueueLength = def.ActorQueueLength
	}
	if s.MemoryLimitPages == 0 {
		s.MemoryLimitPages = def.ActorMemoryLimitPages
	}
	if s.StartTimeout <= 0 {
		s.StartTimeout = def.ActorStartTimeout
	}
	return s
}

// defaultConfig is a Config holding every default of the settings table and
// nothing else (no data dir: its default depends on the environment).
func defaultConfig() *Config {
	c := &Config{}
	for i := range settings {
		s := &settings[i]
		if s.set == nil || s.def == nil {
			continue
		}
		v, msg := decode(s.kind, s.def)
		if msg != "" {
			// The table is ours; a default that does not decode is a bug
			// that every test of this package catches.
			panic(fmt.Sprintf("config: default of %s: %s", s.env, msg))
		}
		s.set(c, v)
	}
	return c
}

// RestartPolicy resolves when latticed up restarts a crashed child: its
// host child and each provider instance.
func (c *Config) RestartPolicy() restart.Policy {
	return restart.Policy{
		Backoff: c.RestartBackoff, BackoffMax: c.RestartBackoffMax, Stable: c.RestartStable,
		CrashLoopCount: c.CrashLoopCount, CrashLoopWindow: c.CrashLoopWindow,
	}
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/latticed/latticed/internal/config"
)

// Change is one setting that differs between two SupervisorSettings.
type Change struct {
	// Setting is how the setting is reported, e.g. "rpc_timeout" (the key
	// config.Config.LogValue logs it under).
	Setting string
	// Live says a reload applies it; any other change refuses the reload.
	Live bool
}

// Changes are what Diff found, in the order of the settings' fields.
type Changes []Change

// Refused names the changed settings that need a restart.
func (cs Changes) Refused() []string {
	var out []string
	for _, c := range cs {
		if !c.Live {
			out = append(out, c.Setting)
		}
	}
	return out
}

// Has reports whether setting changed.
func (cs Changes) Has(setting string) bool {
	return slices.ContainsFunc(cs, func(c Change) bool { return c.Setting == setting })
}

// The settings a reload applies while the node runs.
const (
	settingLogLevel = "log_level"
	settingLabels   = "labels"
)

// Diff lists the settings that differ between prev and next, field by
// field, each with its reload decision. Only what the supervisor and its
// host child can change while they run is live: the log level (the host
// child re-reads its own on SIGHUP) and the host's labels (sent to the host
// as label commands). Everything else was handed to NATS, the host or
// running providers at start, so changing it needs a restart of latticed
// up. Values are compared as values, secrets included (a changed seed is a
// change even though both log as "[redacted]"); they are never formatted.
// Empty and nil slices and maps count as equal.
//
// A field added to config.SupervisorSettings needs a line here:
// TestDiffDecidesEverySetting fails until it has one.
func Diff(prev, next config.SupervisorSettings) Changes {
	var d differ
	d.restart("config_file", prev.ConfigFile != next.ConfigFile)

	pl, nl := prev.Lattice, next.Lattice
	d.restart("lattice_prefix", pl.Prefix != nl.Prefix)
	d.restart("ctl_topic_prefix", pl.CtlTopicPrefix != nl.CtlTopicPrefix)
	d.restart("js_domain", pl.JSDomain != nl.JSDomain)
	d.restart("cluster_issuers", !slices.Equal(pl.ClusterIssuers, nl.ClusterIssuers))
	d.restart("rpc_timeout", pl.RPCTimeout != nl.RPCTimeout)
	d.restart("max_payload_bytes", pl.MaxPayloadBytes != nl.MaxPayloadBytes)
	d.restart("clock_skew", pl.ClockSkew != nl.ClockSkew)

	d.restart("cluster_seed", prev.Keys.ClusterSeed != next.Keys.ClusterSeed)
	d.restart("host_seed", prev.Keys.HostSeed != next.Keys.HostSeed)

	pn, nn := prev.NATS, next.NATS
	d.restart("rpc", pn.Endpoints.RPC != nn.Endpoints.RPC)
	d.restart("ctl", pn.Endpoints.Ctl != nn.Endpoints.Ctl)
	d.restart("prov_rpc", pn.Endpoints.ProvRPC != nn.Endpoints.ProvRPC)
	d.restart("embedded_nats", pn.Endpoints.Embedded != nn.Endpoints.Embedded)
	d.restart("nats_listen", pn.Listen != nn.Listen)
	d.restart("nats_ping_interval/nats_ping_misses", pn.Keepalive != nn.Keepalive)

	pa, na := prev.Authority, next.Authority
	d.restart("account_signing_seed", pa.AccountSigningSeed != na.AccountSigningSeed)
	d.restart("operator_signing_seed", pa.OperatorSigningSeed != na.OperatorSigningSeed)
	d.restart("system_credsfile", pa.SystemCredsFile != na.SystemCredsFile)
	d.restart("provider_creds_lifetime", pa.ProviderCredsLifetime != na.ProviderCredsLifetime)

	d.restart("data_dir", prev.Paths.DataDir != next.Paths.DataDir)
	d.restart("admin_socket", prev.Paths.AdminSocket != next.Paths.AdminSocket)

	pc, nc := prev.Children, next.Children
	d.restart("restart_backoff", pc.Restart.Backoff != nc.Restart.Backoff)
	d.restart("restart_backoff_max", pc.Restart.BackoffMax != nc.Restart.BackoffMax)
	d.restart("restart_stable", pc.Restart.Stable != nc.Restart.Stable)
	d.restart("crash_loop_count", pc.Restart.CrashLoopCount != nc.Restart.CrashLoopCount)
	d.restart("crash_loop_window", pc.Restart.CrashLoopWindow != nc.Restart.CrashLoopWindow)
	d.restart("stop_grace", pc.StopGrace != nc.StopGrace)
	d.restart("health_interval", pc.HealthInterval != nc.HealthInterval)
	d.restart("tolerate_start_failures", pc.TolerateStartFailures != nc.TolerateStartFailures)

	d.restart("allow_file_load", prev.Artifacts.AllowFileLoad != next.Artifacts.AllowFileLoad)
	d.restart("oci_allow_latest", prev.Artifacts.OCIAllowLatest != next.Artifacts.OCIAllowLatest)
	d.restart("oci_allowed_insecure", !slices.Equal(prev.Artifacts.OCIAllowedInsecure, next.Artifacts.OCIAllowedInsecure))
	d.restart("oci_registry", prev.Artifacts.OCIRegistry != next.Artifacts.OCIRegistry)
	d.restart("oci_registry_user", prev.Artifacts.OCIRegistryUser != next.Artifacts.OCIRegistryUser)
	d.restart("oci_registry_password", prev.Artifacts.OCIRegistryPassword != next.Artifacts.OCIRegistryPassword)

	d.restart("metrics_addr", prev.Health.MetricsAddr != next.Health.MetricsAddr)
	d.restart("console_addr", prev.Console.Addr != next.Console.Addr)
	d.restart("console_token", prev.Console.Token != next.Console.Token)
	// The console loads its TLS files at start: a changed path, or new
	// files under the same path, take a restart.
	d.restart("console_tls_cert", prev.Console.CertFile != next.Console.CertFile)
	d.restart("console_tls_key", prev.Console.KeyFile != next.Console.KeyFile)
	d.restart("console_tls_client_ca", prev.Console.ClientCAFile != next.Console.ClientCAFile)

	d.restart("policy_topic", prev.Policy.Topic != next.Policy.Topic)
	d.restart("policy_changes_topic", prev.Policy.ChangesTopic != next.Policy.ChangesTopic)
	d.restart("policy_timeout", prev.Policy.Timeout != next.Policy.Timeout)

	d.restart("structured_logging", prev.Log.Structured != next.Log.Structured)
	d.live(settingLogLevel, prev.Log.Level != next.Log.Level)

	ph, nh := prev.Host, next.Host
	d.live(settingLabels, !maps.Equal(ph.Labels, nh.Labels))
	d.restart("allowed_actor_issuers", !slices.Equal(ph.AllowedActorIssuers, nh.AllowedActorIssuers))
	d.restart("replay_window", ph.ReplayWindow != nh.ReplayWindow)
	d.restart("actor_memory_pages", ph.ActorMemoryLimitPages != nh.ActorMemoryLimitPages)
	d.restart("actor_queue", ph.ActorQueueLength != nh.ActorQueueLength)
	d.restart("actor_start_timeout", ph.ActorStartTimeout != nh.ActorStartTimeout)
	d.restart("cache_storage", ph.CacheStorage != nh.CacheStorage)
	d.restart("cache_replicas", ph.CacheReplicas != nh.CacheReplicas)
	d.restart("cache", ph.Cache != nh.Cache)
	return d.out
}

// differ collects the changes Diff finds.
type differ struct{ out Changes }

func (d *differ) restart(setting string, changed bool) {
	if changed {
		d.out = append(d.out, Change{Setting: setting})
	}
}

func (d *differ) live(setting string, changed bool) {
	if changed {
		d.out = append(d.out, Change{Setting: setting, Live: true})
	}
}

// ErrReloadRefused is returned (wrapped, naming the settings) when a
// reload changes settings that need a restart; nothing was applied.
var ErrReloadRefused = errors.New("configuration not reloaded: these settings need a restart of latticed up")

// Reload applies new settings as one typed diff (Diff) against the
// applied ones, the way nats-server reloads: if any changed setting cannot
// change while the node runs, the whole reload is refused before anything
// is applied, and the error (ErrReloadRefused) names each such setting.
// Otherwise the live settings — log level, host labels — take effect in the
// supervisor, the host child and every provider started from then on.
//
// The applied settings stay apart from the desired ones: after a refused
// reload the supervisor and every child it starts keep using the applied
// ones, and PendingRestart names what differs.
func (s *Supervisor) Reload(next config.SupervisorSettings) error {
	s.notify(notifyReloading())
	defer s.notify(notifyReady)

	s.cfgMu.Lock()
	prev := s.set
	changes := Diff(prev, next)
	if refused := changes.Refused(); len(refused) > 0 {
		s.pendingRestart = refused
		s.cfgMu.Unlock()
		return fmt.Errorf("%w: %s", ErrReloadRefused, strings.Join(refused, ", "))
	}
	// Every change is live: the applied settings become next.
	s.set, s.pendingRestart = next, nil
	s.cfgMu.Unlock()

	var errs []error
	if changes.Has(settingLogLevel) {
		if s.opts.LogLevel != nil {
			s.opts.LogLevel.Set(next.Log.SlogLevel())
		}
		s.log.Info("log level changed", "from", prev.Log.Level, "to", next.Log.Level)
	}
	if changes.Has(settingLabels) {
		errs = append(errs, s.reloadLabels(prev.Host.Labels, next.Host.Labels))
	}
	if len(changes) > 0 && s.hostProc != nil {
		s.hostProc.signal(syscall.SIGHUP) // the host reloads its own log level
	}
	return errors.Join(errs...)
}

// reloadLabels sends the host the label changes from prev to next.
func (s *Supervisor) reloadLabels(prev, next map[string]string) error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, k := range sortedKeys(next) {
		if old, ok := prev[k]; !ok || old != next[k] {
			errs = append(errs, s.control.PutLabel(ctx, s.hostID, k, next[k]))
		}
	}
	for _, k := range sortedKeys(prev) {
		if _, ok := next[k]; !ok {
			errs = append(errs, s.control.DelLabel(ctx, s.hostID, k))
		}
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// PendingRestart names the settings the last reload refused (the desired
// configuration differs there from the applied one), nil when none.
func (s *Supervisor) PendingRestart() []string {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return slices.Clone(s.pendingRestart)
}

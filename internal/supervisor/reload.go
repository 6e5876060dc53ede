package supervisor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/latticed/latticed/internal/config"
)

// reloadRule is the reload decision for one field of config.Config.
type reloadRule struct {
	name string // how the setting is reported, e.g. "rpc_timeout" (config.Config.LogValue's key)
	live bool   // a reload applies it; otherwise a change refuses the reload
}

// reloadRules has a decision for every field of config.Config, keyed by the
// Go field name; a field without one is refused (and a test fails until it
// gets one). Only what the supervisor and its host child can change while
// they run is live: the log level (the host child re-reads its own on
// SIGHUP) and the host's labels (sent to the host as label commands).
// Everything else was handed to NATS, the host or running providers at
// start, so changing it needs a restart of latticed up.
var reloadRules = map[string]reloadRule{
	"ConfigFile":            {name: "config_file"},
	"LatticePrefix":         {name: "lattice_prefix"},
	"ClusterSeed":           {name: "cluster_seed"},
	"ClusterIssuers":        {name: "cluster_issuers"},
	"HostSeed":              {name: "host_seed"},
	"RPC":                   {name: "rpc"},
	"CTL":                   {name: "ctl"},
	"ProvRPC":               {name: "prov_rpc"},
	"RPCTimeout":            {name: "rpc_timeout"},
	"CtlTopicPrefix":        {name: "ctl_topic_prefix"},
	"JSDomain":              {name: "js_domain"},
	"AllowFileLoad":         {name: "allow_file_load"},
	"OCIAllowLatest":        {name: "oci_allow_latest"},
	"OCIAllowedInsecure":    {name: "oci_allowed_insecure"},
	"PolicyTopic":           {name: "policy_topic"},
	"PolicyChangesTopic":    {name: "policy_changes_topic"},
	"PolicyTimeout":         {name: "policy_timeout"},
	"StructuredLogging":     {name: "structured_logging"},
	"LogLevel":              {name: "log_level", live: true},
	"Labels":                {name: "labels", live: true},
	"DataDir":               {name: "data_dir"},
	"NATSListen":            {name: "nats_listen"},
	"MetricsAddr":           {name: "metrics_addr"},
	"AllowedActorIssuers":   {name: "allowed_actor_issuers"},
	"MaxPayloadBytes":       {name: "max_payload_bytes"},
	"ReplayWindow":          {name: "replay_window"},
	"ClockSkew":             {name: "clock_skew"},
	"ActorMemoryLimitPages": {name: "actor_memory_pages"},
	"ActorQueueLength":      {name: "actor_queue"},
	"ActorStartTimeout":     {name: "actor_start_timeout"},
	"TolerateStartFailures": {name: "tolerate_start_failures"},
	"Cache":                 {name: "cache"},
	"CacheStorage":          {name: "cache_storage"},
	"CacheReplicas":         {name: "cache_replicas"},
	"NATSKeepalive":         {name: "nats_ping_interval/nats_ping_misses"},
	"AdminSocket":           {name: "admin_socket"},
	"RestartBackoff":        {name: "restart_backoff"},
	"RestartBackoffMax":     {name: "restart_backoff_max"},
	"RestartStable":         {name: "restart_stable"},
	"CrashLoopCount":        {name: "crash_loop_count"},
	"CrashLoopWindow":       {name: "crash_loop_window"},
	"StopGrace":             {name: "stop_grace"},
	"HealthInterval":        {name: "health_interval"},
	"AccountSigningSeed":    {name: "account_signing_seed"},
	"OperatorSigningSeed":   {name: "operator_signing_seed"},
	"SystemCredsFile":       {name: "system_credsfile"},
	"ProviderCredsLifetime": {name: "provider_creds_lifetime"},
}

// configChange is one setting that differs between two configurations.
type configChange struct {
	field string // config.Config's Go field name
	rule  reloadRule
}

// diffConfig lists the settings that differ between prev and next, in
// field order. Values are compared as values, secrets included (a changed
// seed is a change even though both log as "[redacted]"); they are never
// formatted. Empty and nil slices and maps count as equal.
func diffConfig(prev, next *config.Config) []configChange {
	a, b := reflect.ValueOf(prev).Elem(), reflect.ValueOf(next).Elem()
	var out []configChange
	for i := range a.NumField() {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue // bookkeeping (where a value came from), not a setting
		}
		if sameValue(a.Field(i), b.Field(i)) {
			continue
		}
		rule, ok := reloadRules[f.Name]
		if !ok {
			rule = reloadRule{name: f.Name} // no decision: refused
		}
		out = append(out, configChange{field: f.Name, rule: rule})
	}
	return out
}

func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice, reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return true
		}
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// ErrReloadRefused is returned (wrapped, naming the settings) when a
// reload changes settings that need a restart; nothing was applied.
var ErrReloadRefused = errors.New("configuration not reloaded: these settings need a restart of latticed up")

// Reload applies a new configuration as one typed diff against the applied
// one, the way nats-server reloads: if any changed setting cannot change
// while the node runs, the whole reload is refused before anything is
// applied, and the error (ErrReloadRefused) names each such setting.
// Otherwise the live settings — log level, host labels — take effect in the
// supervisor, the host child and every provider started from then on.
//
// The applied configuration stays apart from the desired one: after a
// refused reload the supervisor and every child it starts keep using the
// applied one, and PendingRestart names what differs.
func (s *Supervisor) Reload(next *config.Config) error {
	if next == nil {
		return errors.New("reload: no configuration")
	}
	s.notify(notifyReloading())
	defer s.notify(notifyReady)

	s.cfgMu.Lock()
	prev := s.cfg
	changes := diffConfig(prev, next)
	var refused []string
	for _, c := range changes {
		if !c.rule.live {
			refused = append(refused, c.rule.name)
		}
	}
	if len(refused) > 0 {
		s.pendingRestart = refused
		s.cfgMu.Unlock()
		return fmt.Errorf("%w: %s", ErrReloadRefused, strings.Join(refused, ", "))
	}
	// Every change is live: the applied configuration becomes next.
	s.cfg, s.pendingRestart = next, nil
	s.cfgMu.Unlock()

	var errs []error
	for _, c := range changes {
		switch c.field {
		case "LogLevel":
			if s.opts.LogLevel != nil {
				s.opts.LogLevel.Set(next.SlogLevel())
			}
			s.log.Info("log level changed", "from", prev.LogLevel, "to", next.LogLevel)
		case "Labels":
			errs = append(errs, s.reloadLabels(prev.Labels, next.Labels))
		}
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

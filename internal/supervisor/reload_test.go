package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// newSeed is a fresh seed of kind k (its value never appears in a test's
// output: only whether it leaked).
func newSeed(t *testing.T, k lattice.KeyKind) string {
	t.Helper()
	kp, err := trust.CreateKeyPair(k)
	if err != nil {
		t.Fatal(err)
	}
	return kp.Seed()
}

func newPublicKey(t *testing.T, k lattice.KeyKind) string {
	t.Helper()
	kp, err := trust.CreateKeyPair(k)
	if err != nil {
		t.Fatal(err)
	}
	return kp.PublicKey()
}

// reloadMutations changes each setting of config.Config to another value.
// Every field must have one: a new setting without a reload decision (and
// a case here) fails TestReloadDecidesEverySetting.
func reloadMutations(t *testing.T) map[string]func(c *config.Config) {
	flip := func(s, a, b string) string {
		if s == a {
			return b
		}
		return a
	}
	return map[string]func(c *config.Config){
		"ConfigFile":    func(c *config.Config) { c.ConfigFile += ".other.yaml" },
		"LatticePrefix": func(c *config.Config) { c.LatticePrefix += "other" },
		"ClusterSeed":   func(c *config.Config) { c.ClusterSeed = newSeed(t, lattice.KindCluster) },
		"ClusterIssuers": func(c *config.Config) {
			c.ClusterIssuers = append(slices.Clone(c.ClusterIssuers), newPublicKey(t, lattice.KindCluster))
		},
		"HostSeed":       func(c *config.Config) { c.HostSeed = newSeed(t, lattice.KindServer) },
		"RPC":            func(c *config.Config) { c.RPC.Seed = newSeed(t, lattice.KindUser) },
		"CTL":            func(c *config.Config) { c.CTL.JWT += "x" },
		"ProvRPC":        func(c *config.Config) { c.ProvRPC.Seed = newSeed(t, lattice.KindUser) },
		"RPCTimeout":     func(c *config.Config) { c.RPCTimeout += time.Second },
		"CtlTopicPrefix": func(c *config.Config) { c.CtlTopicPrefix += ".other" },
		"JSDomain":       func(c *config.Config) { c.JSDomain += "other" },
		"AllowFileLoad":  func(c *config.Config) { c.AllowFileLoad = !c.AllowFileLoad },
		"OCIAllowLatest": func(c *config.Config) { c.OCIAllowLatest = !c.OCIAllowLatest },
		"OCIAllowedInsecure": func(c *config.Config) {
			c.OCIAllowedInsecure = append(slices.Clone(c.OCIAllowedInsecure), "reg.example:5000")
		},
		"PolicyTopic":        func(c *config.Config) { c.PolicyTopic += "policy.other" },
		"PolicyChangesTopic": func(c *config.Config) { c.PolicyChangesTopic += "policy.changes.other" },
		"PolicyTimeout":      func(c *config.Config) { c.PolicyTimeout += time.Second },
		"StructuredLogging":  func(c *config.Config) { c.StructuredLogging = !c.StructuredLogging },
		"LogLevel":           func(c *config.Config) { c.LogLevel = flip(c.LogLevel, "warn", "info") },
		"Labels": func(c *config.Config) {
			l := maps.Clone(c.Labels)
			l = lattice.NonNil(l)
			l["zone"] = "reloaded"
			c.Labels = l
		},
		"DataDir":     func(c *config.Config) { c.DataDir += "/other" },
		"NATSListen":  func(c *config.Config) { c.NATSListen = "127.0.0.1:1" },
		"MetricsAddr": func(c *config.Config) { c.MetricsAddr = "127.0.0.1:1" },
		"AllowedActorIssuers": func(c *config.Config) {
			c.AllowedActorIssuers = append(slices.Clone(c.AllowedActorIssuers), newPublicKey(t, lattice.KindAccount))
		},
		"MaxPayloadBytes":       func(c *config.Config) { c.MaxPayloadBytes++ },
		"ReplayWindow":          func(c *config.Config) { c.ReplayWindow += time.Minute },
		"ClockSkew":             func(c *config.Config) { c.ClockSkew += time.Second },
		"ActorMemoryLimitPages": func(c *config.Config) { c.ActorMemoryLimitPages++ },
		"ActorQueueLength":      func(c *config.Config) { c.ActorQueueLength++ },
		"ActorStartTimeout":     func(c *config.Config) { c.ActorStartTimeout += time.Second },
		"TolerateStartFailures": func(c *config.Config) { c.TolerateStartFailures = !c.TolerateStartFailures },
		"CacheStorage":          func(c *config.Config) { c.CacheStorage = flip(c.CacheStorage, "file", "memory") },
		"CacheReplicas":         func(c *config.Config) { c.CacheReplicas++ },
		"NATSKeepalive":         func(c *config.Config) { c.NATSKeepalive.Misses++ },
		"AdminSocket":           func(c *config.Config) { c.AdminSocket += ".other" },
		"RestartBackoff":        func(c *config.Config) { c.RestartBackoff += time.Millisecond },
		"RestartBackoffMax":     func(c *config.Config) { c.RestartBackoffMax += time.Millisecond },
		"RestartStable":         func(c *config.Config) { c.RestartStable += time.Millisecond },
		"CrashLoopCount":        func(c *config.Config) { c.CrashLoopCount++ },
		"CrashLoopWindow":       func(c *config.Config) { c.CrashLoopWindow += time.Second },
		"StopGrace":             func(c *config.Config) { c.StopGrace += time.Second },
		"HealthInterval":        func(c *config.Config) { c.HealthInterval += time.Millisecond },
		"AccountSigningSeed":    func(c *config.Config) { c.AccountSigningSeed = newSeed(t, lattice.KindAccount) },
		"OperatorSigningSeed":   func(c *config.Config) { c.OperatorSigningSeed = newSeed(t, lattice.KindOperator) },
		"SystemCredsFile":       func(c *config.Config) { c.SystemCredsFile += "/other.creds" },
		"ProviderCredsLifetime": func(c *config.Config) { c.ProviderCredsLifetime += time.Minute },
		"ConsoleAddr":           func(c *config.Config) { c.ConsoleAddr = "127.0.0.1:1" },
		"ConsoleToken":          func(c *config.Config) { c.ConsoleToken = !c.ConsoleToken },
	}
}

// Every setting has a reload decision. A live one takes effect; a refused
// one refuses the whole reload by name (secrets compared by value, never
// shown) and changes nothing: the applied configuration is the same value.
func TestReloadDecidesEverySetting(t *testing.T) {
	mutations := reloadMutations(t)
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		if _, ok := reloadRules[f.Name]; !ok {
			t.Errorf("config.Config.%s has no reload decision in reloadRules", f.Name)
		}
		if _, ok := mutations[f.Name]; !ok {
			t.Errorf("config.Config.%s has no case in reloadMutations", f.Name)
		}
	}
	for name := range reloadRules {
		if _, ok := typ.FieldByName(name); !ok {
			t.Errorf("reloadRules names %s, which config.Config does not have", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	n := startNode(t, nil)
	labels := func() map[string]string {
		var info lattice.HostInfo
		n.ctlRequest(n.s.ctl.PingHosts(), struct{}{}, &info)
		return info.Labels
	}
	for _, field := range slices.Sorted(maps.Keys(reloadRules)) {
		rule := reloadRules[field]
		t.Run(rule.name, func(t *testing.T) {
			before := n.s.config()
			next := *before
			mutations[field](&next)
			changes := diffConfig(before, &next)
			if len(changes) != 1 || changes[0].field != field {
				t.Fatalf("changing %s is seen as %+v", field, changes)
			}
			err := n.s.Reload(&next)
			if !rule.live {
				if !errors.Is(err, ErrReloadRefused) || !strings.Contains(err.Error(), ": "+rule.name) {
					t.Fatalf("reload of %s: %v, want %v naming %s", field, err, ErrReloadRefused, rule.name)
				}
				if s := anySeed.FindString(err.Error()); s != "" {
					t.Errorf("the refusal shows a seed of kind %s", s[:2])
				}
				if after := n.s.config(); after != before {
					t.Errorf("a refused reload of %s replaced the applied configuration", field)
				}
				if p := n.s.PendingRestart(); !slices.Equal(p, []string{rule.name}) {
					t.Errorf("pending restart %v, want [%s]", p, rule.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("reload of live setting %s: %v", field, err)
			}
			after := n.s.config()
			got, want := reflect.ValueOf(after).Elem().FieldByName(field), reflect.ValueOf(&next).Elem().FieldByName(field)
			if !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Errorf("%s after reload: %v, want %v", field, got, want)
			}
			if field == "Labels" {
				testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
					if l := labels(); l["zone"] != "reloaded" {
						return fmt.Errorf("host labels %v", l)
					}
					return nil
				})
			}
			if err := n.s.Reload(before); err != nil { // back, for the next case
				t.Fatalf("reload back: %v", err)
			}
		})
	}
}

// A refused reload changes nothing in what the supervisor starts next: a
// provider launched after it gets the applied rpc timeout, issuers and log
// level (it used to get the refused values while the host kept the old
// ones); a live change reaches the next provider.
func TestRefusedReloadChangesNothingTheNextProviderGets(t *testing.T) {
	n := startNode(t, nil)
	applied := n.s.config()
	next := *applied
	next.RPCTimeout += 3 * time.Second
	next.ClusterIssuers = append(slices.Clone(applied.ClusterIssuers), newPublicKey(t, lattice.KindCluster))
	next.ClusterSeed = newSeed(t, lattice.KindCluster)
	next.LogLevel = "warn"
	err := n.s.Reload(&next)
	if !errors.Is(err, ErrReloadRefused) {
		t.Fatalf("reload: %v, want %v", err, ErrReloadRefused)
	}
	for _, name := range []string{"cluster_seed", "cluster_issuers", "rpc_timeout"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the refusal does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "log_level") {
		t.Errorf("the refusal names a live setting: %v", err)
	}
	issuers := strings.Join(clusterIssuers(applied.ClusterIssuers, n.cluster.PublicKey()), ",")
	started := func(ref string) string {
		t.Helper()
		n.launch(ref, "default", "")
		n.waitProviderState(ref, "default", child.StateRunning)
		inst := n.instance(ref, "default")
		inst.mu.Lock()
		id := inst.instanceID
		inst.mu.Unlock()
		for _, line := range strings.Split(n.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"provider starting"`) && strings.Contains(line, id) {
				return line
			}
		}
		t.Fatalf("no start line of instance %s", id)
		return ""
	}
	line := started("file://" + providerBin)
	for _, want := range []string{
		fmt.Sprintf(`"rpc_timeout_ms":%d`, applied.RPCTimeout.Milliseconds()),
		fmt.Sprintf(`"cluster_issuers":%q`, issuers),
		fmt.Sprintf(`"log_level":%q`, applied.LogLevel),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("after a refused reload the next provider started with other settings: no %s in %s", want, line)
		}
	}

	live := *applied
	live.LogLevel = "warn"
	if err := n.s.Reload(&live); err != nil {
		t.Fatalf("live reload: %v", err)
	}
	if line := started("file://" + providerBin2); !strings.Contains(line, `"log_level":"warn"`) {
		t.Errorf("after a live reload of the log level the next provider did not get it: %s", line)
	}
}

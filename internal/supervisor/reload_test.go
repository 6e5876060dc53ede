package supervisor

import (
	"errors"
	"fmt"
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

// settingLeaf is one field of config.SupervisorSettings that holds a
// setting (a field of a nested struct counts, not the struct).
type settingLeaf struct {
	path   string // e.g. "NATS.Endpoints.RPC.Seed"
	mutate func(set *config.SupervisorSettings)
}

// leafSeedKinds gives the seed fields a real seed of their kind, so that a
// refusal's text can be checked for leaked seeds.
var leafSeedKinds = map[string]lattice.KeyKind{
	"Keys.ClusterSeed": lattice.KindCluster, "Keys.HostSeed": lattice.KindServer,
	"Authority.AccountSigningSeed": lattice.KindAccount, "Authority.OperatorSigningSeed": lattice.KindOperator,
}

// settingLeaves walks config.SupervisorSettings by reflection (the product
// code does not; Diff is written field by field) and gives each leaf field
// a change to another value of its type. A field added to the settings is
// found here without anyone listing it, so Diff must decide it.
func settingLeaves(t *testing.T) []settingLeaf {
	t.Helper()
	var out []settingLeaf
	var walk func(typ reflect.Type, path string, index []int)
	walk = func(typ reflect.Type, path string, index []int) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				t.Fatalf("%s%s is unexported: settings are plain exported values", path, f.Name)
			}
			p, idx := path+f.Name, append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, p+".", idx)
				continue
			}
			out = append(out, settingLeaf{path: p, mutate: func(set *config.SupervisorSettings) {
				v := reflect.ValueOf(set).Elem().FieldByIndex(idx)
				mutateValue(t, p, v)
			}})
		}
	}
	walk(reflect.TypeFor[config.SupervisorSettings](), "", nil)
	return out
}

// mutateValue sets v, the leaf at path, to another value of its type.
func mutateValue(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch {
	case path == "Log.Level":
		if v.String() == "warn" { // a valid level, so the host child takes it
			v.SetString("info")
		} else {
			v.SetString("warn")
		}
		return
	case strings.HasSuffix(path, "Seed"):
		kind, ok := leafSeedKinds[path]
		if !ok {
			kind = lattice.KindUser // a NATS connection's user seed
		}
		v.SetString(newSeed(t, kind))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + ".other")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64: // time.Duration too
		v.SetInt(v.Int() + 1)
	case reflect.Uint32:
		v.SetUint(v.Uint() + 1)
	case reflect.Slice: // []string
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len()+1)
		reflect.Copy(n, v)
		v.Set(reflect.Append(n, reflect.ValueOf("other")))
	case reflect.Map: // map[string]string: the labels
		n := reflect.MakeMap(v.Type())
		iter := v.MapRange()
		for iter.Next() {
			n.SetMapIndex(iter.Key(), iter.Value())
		}
		n.SetMapIndex(reflect.ValueOf("zone"), reflect.ValueOf("reloaded"))
		v.Set(n)
	default:
		t.Fatalf("%s: no way to change a %s; teach mutateValue", path, v.Type())
	}
}

// Diff decides every setting: changing any one field of the settings is
// seen as exactly one change, live only for the log level and labels
// (the fields of one connection or keepalive share a name). A field
// added to config.SupervisorSettings without a line in Diff fails here.
func TestDiffDecidesEverySetting(t *testing.T) {
	base := config.SupervisorSettings{Log: config.LogSettings{Level: "info"}}
	if c := Diff(base, base); len(c) != 0 {
		t.Fatalf("equal settings differ: %+v", c)
	}
	for _, leaf := range settingLeaves(t) {
		next := base
		leaf.mutate(&next)
		changes := Diff(base, next)
		if len(changes) != 1 {
			t.Errorf("changing %s is seen as %+v, want one change: decide it in Diff", leaf.path, changes)
			continue
		}
		name := changes[0].Setting
		if live := name == settingLogLevel || name == settingLabels; changes[0].Live != live {
			t.Errorf("%s: live %v, want %v", leaf.path, changes[0].Live, live)
		}
	}
	// Empty and nil slices and maps are the same setting.
	empty := base
	empty.Lattice.ClusterIssuers, empty.Host.Labels = []string{}, map[string]string{}
	if c := Diff(base, empty); len(c) != 0 {
		t.Errorf("nil and empty differ: %+v", c)
	}
}

// Every setting has a reload decision that a running node follows. A live
// one takes effect; a refused one refuses the whole reload by name
// (secrets compared by value, never shown) and changes nothing: the
// applied settings stay as they were.
func TestReloadDecidesEverySetting(t *testing.T) {
	n := startNode(t, nil)
	labels := func() map[string]string {
		var info lattice.HostInfo
		n.ctlRequest(n.s.ctl.PingHosts(), struct{}{}, &info)
		return info.Labels
	}
	for _, leaf := range settingLeaves(t) {
		t.Run(leaf.path, func(t *testing.T) {
			before := n.s.settings()
			next := before
			leaf.mutate(&next)
			changes := Diff(before, next)
			if len(changes) != 1 {
				t.Fatalf("changing %s is seen as %+v", leaf.path, changes)
			}
			c := changes[0]
			err := n.s.Reload(next)
			if !c.Live {
				if !errors.Is(err, ErrReloadRefused) || !strings.Contains(err.Error(), ": "+c.Setting) {
					t.Fatalf("reload of %s: %v, want %v naming %s", leaf.path, err, ErrReloadRefused, c.Setting)
				}
				if s := anySeed.FindString(err.Error()); s != "" {
					t.Errorf("the refusal shows a seed of kind %s", s[:2])
				}
				if d := Diff(before, n.s.settings()); len(d) != 0 {
					t.Errorf("a refused reload of %s changed the applied settings: %+v", leaf.path, d)
				}
				if p := n.s.PendingRestart(); !slices.Equal(p, []string{c.Setting}) {
					t.Errorf("pending restart %v, want [%s]", p, c.Setting)
				}
				return
			}
			if err != nil {
				t.Fatalf("reload of live setting %s: %v", leaf.path, err)
			}
			if d := Diff(next, n.s.settings()); len(d) != 0 {
				t.Errorf("after the reload of %s the applied settings differ from the reloaded ones: %+v", leaf.path, d)
			}
			if c.Setting == settingLabels {
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
	applied := n.s.settings()
	next := applied
	next.Lattice.RPCTimeout += 3 * time.Second
	next.Lattice.ClusterIssuers = append(slices.Clone(applied.Lattice.ClusterIssuers), newPublicKey(t, lattice.KindCluster))
	next.Keys.ClusterSeed = newSeed(t, lattice.KindCluster)
	next.Log.Level = "warn"
	err := n.s.Reload(next)
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
	issuers := strings.Join(clusterIssuers(applied.Lattice.ClusterIssuers, n.cluster.PublicKey()), ",")
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
		fmt.Sprintf(`"rpc_timeout_ms":%d`, applied.Lattice.RPCTimeout.Milliseconds()),
		fmt.Sprintf(`"cluster_issuers":%q`, issuers),
		fmt.Sprintf(`"log_level":%q`, applied.Log.Level),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("after a refused reload the next provider started with other settings: no %s in %s", want, line)
		}
	}

	live := applied
	live.Log.Level = "warn"
	if err := n.s.Reload(live); err != nil {
		t.Fatalf("live reload: %v", err)
	}
	if line := started("file://" + providerBin2); !strings.Contains(line, `"log_level":"warn"`) {
		t.Errorf("after a live reload of the log level the next provider did not get it: %s", line)
	}
}

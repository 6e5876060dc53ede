package config

import (
	"reflect"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/restart"
	"github.com/latticed/latticed/lattice"
)

// TestHostSettingsCarryEveryHostSetting walks the settings table: each
// setting marked partHost must reach HostSettings (two different values
// give two different resolved settings), and no other setting may. A new
// setting fails here until it names its readers and, when the host is one
// of them, Config.Host carries it.
func TestHostSettingsCarryEveryHostSetting(t *testing.T) {
	for i := range settings {
		s := &settings[i]
		t.Run(s.env, func(t *testing.T) {
			if s.reads == 0 {
				t.Fatalf("%s names no reader: mark it partHost, partNode and/or partSupervisor", s.env)
			}
			a, b := defaultConfig(), defaultConfig()
			sampleSetting(t, s, a, 0)
			sampleSetting(t, s, b, 1)
			differ := !reflect.DeepEqual(a.Host(), b.Host())
			switch host := s.reads&partHost != 0; {
			case host && !differ:
				t.Errorf("%s is marked partHost but does not reach HostSettings: carry it in Config.Host", s.env)
			case !host && differ:
				t.Errorf("%s changes HostSettings but is not marked partHost", s.env)
			}
		})
	}
}

// sampleSetting stores the n-th (0 or 1) of two different values of s's
// kind in c. The strings are the two LATTICED_CACHE_STORAGE values, since
// that setting reaches the host only as "memory or not".
func sampleSetting(t *testing.T, s *setting, c *Config, n int) {
	t.Helper()
	var v any
	switch s.kind {
	case kindString:
		v = []string{"memory", "file"}[n]
	case kindBool:
		v = n == 1
	case kindInt:
		v = 2 + n
	case kindUint32:
		v = uint32(2 + n)
	case kindMillis, kindDuration:
		v = time.Duration(2+n) * time.Second
	case kindList:
		v = []string{[]string{"a", "b"}[n]}
	case kindLabels:
		c.Labels = map[string]string{"k": []string{"a", "b"}[n]}
		return
	case kindConfig:
		c.ConfigFile = []string{"a.yaml", "b.yaml"}[n]
		return
	default:
		t.Fatalf("%s: kind %d has no sample values; add them here", s.env, s.kind)
	}
	s.set(c, v)
}

// TestWithDefaultsTakesTheTable checks that hand-built host settings get
// the settings table's defaults, the same values Load resolves.
func TestWithDefaultsTakesTheTable(t *testing.T) {
	got := HostSettings{}.WithDefaults()
	want := HostSettings{
		LatticePrefix: lattice.DefaultLatticePrefix, RPCTimeout: 2 * time.Second, MaxPayloadBytes: 64 << 20,
		ReplayWindow: time.Minute, QueueLength: DefaultActorQueueLength,
		MemoryLimitPages: DefaultActorMemoryLimitPages, StartTimeout: DefaultActorStartTimeout,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HostSettings{}.WithDefaults() = %+v\nwant %+v", got, want)
	}
	cfg, _, err := LoadEnviron(nil, []string{EnvDataDir + "=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	loaded := cfg.Host()
	if d := loaded.WithDefaults(); !reflect.DeepEqual(d, loaded) {
		t.Errorf("Load's settings changed by WithDefaults:\n got %+v\nwant %+v", d, loaded)
	}
	set := HostSettings{QueueLength: 7}.WithDefaults()
	if set.QueueLength != 7 {
		t.Errorf("WithDefaults replaced a set queue length: %d", set.QueueLength)
	}
}

// TestRestartPolicyTakesEachSetting loads each restart setting from the
// environment and checks it lands in the resolved restart.Policy.
func TestRestartPolicyTakesEachSetting(t *testing.T) {
	for _, tc := range []struct {
		env, val string
		got      func(p restart.Policy) any
		want     any
	}{
		{EnvRestartBackoff, "3s", func(p restart.Policy) any { return p.Backoff }, 3 * time.Second},
		{EnvRestartBackoffMax, "3m", func(p restart.Policy) any { return p.BackoffMax }, 3 * time.Minute},
		{EnvRestartStable, "4m", func(p restart.Policy) any { return p.Stable }, 4 * time.Minute},
		{EnvCrashLoopCount, "9", func(p restart.Policy) any { return p.CrashLoopCount }, 9},
		{EnvCrashLoopWindow, "7m", func(p restart.Policy) any { return p.CrashLoopWindow }, 7 * time.Minute},
	} {
		t.Run(tc.env, func(t *testing.T) {
			cfg, _, err := LoadEnviron(nil, []string{EnvDataDir + "=" + t.TempDir(), tc.env + "=" + tc.val})
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(cfg.RestartPolicy()); got != tc.want {
				t.Errorf("%s=%s resolves to %v, want %v", tc.env, tc.val, got, tc.want)
			}
		})
	}
}

// TestSupervisorSettingsCarryEverySetting walks the settings table: every
// setting reaches SupervisorSettings (two different values give two
// different resolved settings), since a reload must see each change, even
// of a setting only the host child reads. The base names a NATS server for
// each role: with the embedded server the WASMCLOUD_* connection settings
// are not used, and without WASMCLOUD_PROV_RPC_HOST providers connect to
// the RPC server, so those settings rightly leave the endpoints alone.
func TestSupervisorSettingsCarryEverySetting(t *testing.T) {
	for i := range settings {
		s := &settings[i]
		if s.set == nil {
			continue
		}
		t.Run(s.env, func(t *testing.T) {
			a, b := defaultConfig(), defaultConfig()
			for _, c := range []*Config{a, b} {
				c.RPC.Host, c.CTL.Host, c.ProvRPC.Host = "rpc.example", "ctl.example", "prov.example"
			}
			sampleSetting(t, s, a, 0)
			sampleSetting(t, s, b, 1)
			if reflect.DeepEqual(a.Supervisor(), b.Supervisor()) {
				t.Errorf("%s does not reach SupervisorSettings: carry it in Config.Supervisor", s.env)
			}
		})
	}
}

// The supervisor's settings are its own: changing the Config's slices and
// maps afterwards does not change them.
func TestSupervisorSettingsAreCopies(t *testing.T) {
	c := defaultConfig()
	c.ClusterIssuers, c.OCIAllowedInsecure, c.AllowedActorIssuers = []string{"a"}, []string{"r"}, []string{"i"}
	c.Labels = map[string]string{"k": "v"}
	set := c.Supervisor()
	c.ClusterIssuers[0], c.OCIAllowedInsecure[0], c.AllowedActorIssuers[0] = "x", "x", "x"
	c.Labels["k"] = "x"
	if set.Lattice.ClusterIssuers[0] != "a" || set.Artifacts.OCIAllowedInsecure[0] != "r" ||
		set.Host.AllowedActorIssuers[0] != "i" || set.Host.Labels["k"] != "v" {
		t.Errorf("SupervisorSettings share memory with the Config: %+v", set)
	}
}

package config

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"

	"github.com/latticed/latticed/lattice"
)

// A fixed test vector (the one lattice/keys_test.go checks the encoding with); not a secret of any real lattice.
const (
	vectorClusterSeed = "SCABNLVRXGEJEG5FBBPMMKMMY37FNKVLDY6YXHVL6WA4IRBEYD6ACIQKV4"
	vectorClusterPub  = "CDMTUBVGADIQZFWBUZL7LEF7YHZF6CPSKO3HLOTLBQFY2FHDLZFAMYMD"
)

// keys is a fresh set of keys of each role, generated per test run.
type keys struct {
	clusterSeed, clusterPub string
	accountSeed, accountPub string
	userSeed, userPub       string
	serverSeed              string
}

func newKeys(t *testing.T) keys {
	t.Helper()
	pair := func(create func() (nkeys.KeyPair, error)) (string, string) {
		t.Helper()
		kp, err := create()
		if err != nil {
			t.Fatal(err)
		}
		seed, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		return string(seed), pub
	}
	var k keys
	k.clusterSeed, k.clusterPub = pair(nkeys.CreateCluster)
	k.accountSeed, k.accountPub = pair(nkeys.CreateAccount)
	k.userSeed, k.userPub = pair(nkeys.CreateUser)
	k.serverSeed, _ = pair(nkeys.CreateServer)
	return k
}

// baseEnv is the minimum environment: HOME, so the data dir has a default.
func baseEnv(extra map[string]string) map[string]string {
	env := map[string]string{"HOME": "/home/tester"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// flags returns a FlagSet with this package's flags, parsed from args.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return fs
}

// writeFile writes content to name in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, fs *pflag.FlagSet, env map[string]string) (*Config, []string) {
	t.Helper()
	c, warnings, err := LoadEnviron(fs, environ(env))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, warnings
}

func loadErr(t *testing.T, fs *pflag.FlagSet, env map[string]string) error {
	t.Helper()
	c, _, err := LoadEnviron(fs, environ(env))
	if err == nil {
		t.Fatalf("Load succeeded, want an error; config %+v", c)
	}
	if c != nil {
		t.Errorf("Load returned a config together with error %v", err)
	}
	return err
}

func TestDefaults(t *testing.T) {
	c, warnings := mustLoad(t, nil, baseEnv(nil))
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
	defConn := NATSConn{Port: 4222}
	checks := []struct {
		name      string
		got, want any
	}{
		{"LatticePrefix", c.LatticePrefix, "default"},
		{"ClusterSeed", c.ClusterSeed, ""},
		{"ClusterIssuers", len(c.ClusterIssuers), 0},
		{"HostSeed", c.HostSeed, ""},
		{"RPC", c.RPC, defConn},
		{"CTL", c.CTL, defConn},
		{"ProvRPC", c.ProvRPC, defConn},
		{"RPCTimeout", c.RPCTimeout, 2 * time.Second},
		{"CtlTopicPrefix", c.CtlTopicPrefix, "wasmbus.ctl"},
		{"JSDomain", c.JSDomain, ""},
		{"AllowFileLoad", c.AllowFileLoad, false},
		{"OCIAllowLatest", c.OCIAllowLatest, false},
		{"PolicyTopic", c.PolicyTopic, ""},
		{"PolicyTimeout", c.PolicyTimeout, time.Second},
		{"StructuredLogging", c.StructuredLogging, false},
		{"LogLevel", c.LogLevel, "info"},
		{"Labels", len(c.Labels), 0},
		{"DataDir", c.DataDir, "/home/tester/.local/share/latticed"},
		{"NATSListen", c.NATSListen, "127.0.0.1:4222"},
		{"MetricsAddr", c.MetricsAddr, "127.0.0.1:9464"},
		{"AllowedActorIssuers", len(c.AllowedActorIssuers), 0},
		{"MaxPayloadBytes", c.MaxPayloadBytes, 64 << 20},
		{"ReplayWindow", c.ReplayWindow, time.Minute},
		{"ClockSkew", c.ClockSkew, 30 * time.Second},
		{"ActorMemoryLimitPages", c.ActorMemoryLimitPages, uint32(4096)},
		{"ActorQueueLength", c.ActorQueueLength, 256},
		{"ActorStartTimeout", c.ActorStartTimeout, 5 * time.Second},
		{"ConfigFile", c.ConfigFile, ""},
		{"EmbeddedNATS", c.EmbeddedNATS(), true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if c.Labels == nil {
		t.Error("Labels is nil, want an empty map")
	}
}

func TestDataDirDefault(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"xdg", map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/home/x"}, "/xdg/latticed"},
		{"relative xdg is ignored", map[string]string{"XDG_DATA_HOME": "rel", "HOME": "/home/x"}, "/home/x/.local/share/latticed"},
		{"home", map[string]string{"HOME": "/home/x"}, "/home/x/.local/share/latticed"},
		{"explicit", map[string]string{"HOME": "/home/x", EnvDataDir: "/srv/lattice/"}, "/srv/lattice"},
		{"explicit without home", map[string]string{EnvDataDir: "/srv/l"}, "/srv/l"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, nil, tt.env)
			if c.DataDir != tt.want {
				t.Errorf("DataDir = %q, want %q", c.DataDir, tt.want)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	yaml := writeFile(t, "latticed.yaml", "lattice_prefix: fromfile\nrpc_port: 4001\nrpc_timeout_ms: 3000\nreplay_window: 7m\n")
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) (got, want any)
	}{
		{"env over default", map[string]string{EnvLatticePrefix: "fromenv"}, nil,
			func(c *Config) (any, any) { return c.LatticePrefix, "fromenv" }},
		{"flag over env", map[string]string{EnvLatticePrefix: "fromenv"}, []string{"--lattice-prefix=fromflag"},
			func(c *Config) (any, any) { return c.LatticePrefix, "fromflag" }},
		{"file over default", map[string]string{EnvConfig: yaml}, nil,
			func(c *Config) (any, any) { return c.LatticePrefix, "fromfile" }},
		{"env over file", map[string]string{EnvConfig: yaml, EnvLatticePrefix: "fromenv"}, nil,
			func(c *Config) (any, any) { return c.LatticePrefix, "fromenv" }},
		{"flag over env and file", map[string]string{EnvConfig: yaml, EnvRPCPort: "4002"}, []string{"--rpc-port", "4003"},
			func(c *Config) (any, any) { return c.RPC.Port, 4003 }},
		{"env int over file", map[string]string{EnvConfig: yaml, EnvRPCPort: "4002"}, nil,
			func(c *Config) (any, any) { return c.RPC.Port, 4002 }},
		{"file int", map[string]string{EnvConfig: yaml}, nil,
			func(c *Config) (any, any) { return c.RPC.Port, 4001 }},
		{"file millis", map[string]string{EnvConfig: yaml}, nil,
			func(c *Config) (any, any) { return c.RPCTimeout, 3 * time.Second }},
		{"env millis", map[string]string{EnvRPCTimeoutMS: "250"}, nil,
			func(c *Config) (any, any) { return c.RPCTimeout, 250 * time.Millisecond }},
		{"flag millis", nil, []string{"--rpc-timeout-ms=9"},
			func(c *Config) (any, any) { return c.RPCTimeout, 9 * time.Millisecond }},
		{"file duration", map[string]string{EnvConfig: yaml}, nil,
			func(c *Config) (any, any) { return c.ReplayWindow, 7 * time.Minute }},
		{"env duration over file", map[string]string{EnvConfig: yaml, EnvReplayWindow: "90s"}, nil,
			func(c *Config) (any, any) { return c.ReplayWindow, 90 * time.Second }},
		{"flag duration", nil, []string{"--clock-skew=1s"},
			func(c *Config) (any, any) { return c.ClockSkew, time.Second }},
		{"unset flag does not shadow env", map[string]string{EnvRPCPort: "4005"}, []string{"--lattice-prefix=x"},
			func(c *Config) (any, any) { return c.RPC.Port, 4005 }},
		{"config path from flag", map[string]string{EnvConfig: "/nonexistent.yaml"}, []string{"--config", yaml},
			func(c *Config) (any, any) { return c.ConfigFile, yaml }},
		{"bool flag", map[string]string{EnvCtlTLS: "no"}, []string{"--ctl-tls"},
			func(c *Config) (any, any) { return c.CTL.TLS, true }},
		{"bool env", map[string]string{EnvCtlTLS: "Enabled"}, nil,
			func(c *Config) (any, any) { return c.CTL.TLS, true }},
		{"uint32 env", map[string]string{EnvActorMemoryPages: "100"}, nil,
			func(c *Config) (any, any) { return c.ActorMemoryLimitPages, uint32(100) }},
		{"uint32 flag", nil, []string{"--actor-memory-pages=200"},
			func(c *Config) (any, any) { return c.ActorMemoryLimitPages, uint32(200) }},
		{"log level alias", map[string]string{EnvLogLevel: "TRACE"}, nil,
			func(c *Config) (any, any) { return c.LogLevel, "debug" }},
		{"log level warning", map[string]string{EnvLogLevel: "warning"}, nil,
			func(c *Config) (any, any) { return c.LogLevel, "warn" }},
		{"list env", map[string]string{EnvOCIAllowedInsecure: " localhost:5000, ,reg:80 "}, nil,
			func(c *Config) (any, any) { return strings.Join(c.OCIAllowedInsecure, "|"), "localhost:5000|reg:80" }},
		{"list flag", map[string]string{EnvOCIAllowedInsecure: "a"}, []string{"--oci-allowed-insecure=b,c"},
			func(c *Config) (any, any) { return strings.Join(c.OCIAllowedInsecure, "|"), "b|c" }},
		{"empty env string overrides file", map[string]string{EnvConfig: yaml, EnvJSDomain: ""}, nil,
			func(c *Config) (any, any) { return c.JSDomain, "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, flags(t, tt.args...), baseEnv(tt.env))
			if got, want := tt.check(c); got != want {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestFileFormats(t *testing.T) {
	k := newKeys(t)
	credsYAML := writeFile(t, "u.creds", "not checked here")
	yamlFile := writeFile(t, "c.yml", `
lattice_prefix: prod
cluster_issuers:
  - `+k.clusterPub+`
rpc_host: nats.example
rpc_port: 4333
rpc_tls: true
ctl_host: nats.example
ctl_credsfile: `+credsYAML+`
allow_file_load: yes
allowed_actor_issuers: `+k.accountPub+`
max_payload_bytes: 2097152
actor_memory_pages: 1024
labels:
  zone: eu-1
  App.Kubernetes.io/Name: web
`)
	tomlFile := writeFile(t, "c.toml", `
lattice_prefix = "prod"
cluster_issuers = ["`+k.clusterPub+`"]
rpc_host = "nats.example"
rpc_port = 4333
rpc_tls = true
ctl_host = "nats.example"
ctl_credsfile = "`+credsYAML+`"
allow_file_load = "yes"
allowed_actor_issuers = "`+k.accountPub+`"
max_payload_bytes = 2097152
actor_memory_pages = 1024

[labels]
zone = "eu-1"
"App.Kubernetes.io/Name" = "web"
`)
	for _, path := range []string{yamlFile, tomlFile} {
		t.Run(filepath.Ext(path), func(t *testing.T) {
			c, _ := mustLoad(t, nil, baseEnv(map[string]string{EnvConfig: path}))
			want := NATSConn{Host: "nats.example", Port: 4333, TLS: true}
			if c.RPC != want {
				t.Errorf("RPC = %+v, want %+v", c.RPC, want)
			}
			if c.CTL.CredsFile != credsYAML {
				t.Errorf("CTL.CredsFile = %q", c.CTL.CredsFile)
			}
			if c.LatticePrefix != "prod" || !c.AllowFileLoad || c.MaxPayloadBytes != 2<<20 || c.ActorMemoryLimitPages != 1024 {
				t.Errorf("scalars wrong: %+v", c)
			}
			if !slices.Equal(c.ClusterIssuers, []string{k.clusterPub}) {
				t.Errorf("ClusterIssuers = %q", c.ClusterIssuers)
			}
			if !slices.Equal(c.AllowedActorIssuers, []string{k.accountPub}) {
				t.Errorf("AllowedActorIssuers = %q", c.AllowedActorIssuers)
			}
			// Viper lower-cases keys; dots inside a label name survive.
			if c.Labels["zone"] != "eu-1" || c.Labels["app.kubernetes.io/name"] != "web" || len(c.Labels) != 2 {
				t.Errorf("Labels = %v", c.Labels)
			}
			if c.EmbeddedNATS() {
				t.Error("EmbeddedNATS() = true with RPC and CTL hosts set")
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	k := newKeys(t)
	creds := writeFile(t, "ok.creds", "x")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		file string // content of a YAML file to load, if any
		// want are substrings of the error; the first names the setting.
		want []string
	}{
		{name: "account seed as cluster seed", env: map[string]string{EnvClusterSeed: k.accountSeed},
			want: []string{EnvClusterSeed + ": is an account seed (SA...); expected a cluster seed (SC...)"}},
		{name: "garbage cluster seed", env: map[string]string{EnvClusterSeed: "SCNOTASEED"},
			want: []string{EnvClusterSeed + ": not a valid nkeys seed"}},
		{name: "issuer not a cluster key", env: map[string]string{EnvClusterIssuers: k.clusterPub + "," + k.accountPub},
			want: []string{EnvClusterIssuers + ": entry 2 \"" + k.accountPub + "\": expected a cluster public key"}},
		{name: "seed in issuers is not echoed", env: map[string]string{EnvClusterIssuers: k.clusterSeed},
			want: []string{EnvClusterIssuers + ": entry 1 (a seed, not shown"}},
		{name: "host seed of wrong role", env: map[string]string{EnvHostSeed: k.clusterSeed},
			want: []string{EnvHostSeed + ": is a cluster seed (SC...); expected a server seed (SN...)"}},
		{name: "port 0", env: map[string]string{EnvRPCPort: "0"},
			want: []string{EnvRPCPort + ": port 0 out of range 1-65535"}},
		{name: "port 70000", env: map[string]string{EnvRPCPort: "70000"},
			want: []string{"WASMCLOUD_RPC_PORT: port 70000 out of range 1-65535"}},
		{name: "port from flag names the flag", args: []string{"--ctl-port=70000"},
			want: []string{EnvCtlPort + " (--ctl-port): port 70000 out of range 1-65535"}},
		{name: "port from file names key and file", file: "prov_rpc_port: 0\n",
			want: []string{EnvProvRPCPort + " (prov_rpc_port in ", "port 0 out of range"}},
		{name: "port not a number", env: map[string]string{EnvRPCPort: "42a"},
			want: []string{EnvRPCPort + ": expected a base-10 integer, got \"42a\""}},
		{name: "missing credsfile", env: map[string]string{EnvCtlCredsFile: "/nonexistent/x.creds"},
			want: []string{EnvCtlCredsFile + ": /nonexistent/x.creds: no such file"}},
		{name: "credsfile and seed", env: map[string]string{EnvRPCCredsFile: creds, EnvRPCSeed: k.userSeed},
			want: []string{EnvRPCCredsFile + ": set together with"}},
		{name: "seed not a user seed", env: map[string]string{EnvProvRPCSeed: k.accountSeed},
			want: []string{EnvProvRPCSeed + ": is an account seed (SA...); expected a user seed (SU...)"}},
		{name: "jwt without seed", env: map[string]string{EnvRPCJWT: "a.b.c"},
			want: []string{EnvRPCJWT + ": set without " + EnvRPCSeed}},
		// A list of servers is fine (TestServerListSettings); a bad entry is named.
		{name: "host with other scheme", env: map[string]string{EnvRPCHost: "http://x"},
			want: []string{EnvRPCHost + ": \"http://x\": scheme \"http\": expected nats:// or tls://"}},
		{name: "host list with bad port", env: map[string]string{EnvCtlHost: "x:4222,y:42x"},
			want: []string{EnvCtlHost + ": entry 2 \"y:42x\" of \"x:4222,y:42x\": port \"42x\""}},
		{name: "bad bool", env: map[string]string{EnvAllowFileLoad: "sure"},
			want: []string{EnvAllowFileLoad + ": expected a boolean", `got "sure"`}},
		{name: "bad bool in file", file: "rpc_tls: maybe\n",
			want: []string{EnvRPCTLS + " (rpc_tls in ", "expected a boolean"}},
		{name: "prefix with a dot", env: map[string]string{EnvLatticePrefix: "a.b"},
			want: []string{EnvLatticePrefix + ": \"a.b\": must not contain '.'"}},
		{name: "prefix with space", env: map[string]string{EnvLatticePrefix: "a b"},
			want: []string{EnvLatticePrefix + ": \"a b\": must not contain"}},
		{name: "empty prefix", env: map[string]string{EnvLatticePrefix: ""},
			want: []string{EnvLatticePrefix + ": must not be empty"}},
		{name: "unknown file key", file: "lattice_prefx: x\nbogus: 1\n",
			want: []string{EnvConfig + ": ", `unknown key "bogus", "lattice_prefx" (did you mean "lattice_prefix"?)`}},
		{name: "zero timeout", env: map[string]string{EnvRPCTimeoutMS: "0"},
			want: []string{EnvRPCTimeoutMS + ": 0: must be a positive number of milliseconds"}},
		{name: "bad log level", env: map[string]string{EnvLogLevel: "verbose"},
			want: []string{EnvLogLevel + ": \"verbose\": expected one of debug, info, warn, error"}},
		{name: "bad listen", env: map[string]string{EnvNATSListen: "4222"},
			want: []string{EnvNATSListen + ": \"4222\": expected host:port, e.g. 127.0.0.1:4222"}},
		{name: "bad metrics listen", env: map[string]string{EnvMetricsAddr: "bogus"},
			want: []string{EnvMetricsAddr + ": \"bogus\": expected host:port, e.g. 127.0.0.1:9464"}},
		{name: "bad metrics addr", env: map[string]string{EnvMetricsAddr: "localhost:http2"},
			want: []string{EnvMetricsAddr + ": \"localhost:http2\": port must be a number"}},
		{name: "bad console addr", env: map[string]string{EnvConsoleAddr: "4000"},
			want: []string{EnvConsoleAddr + ": \"4000\": expected host:port"}},
		{name: "console off loopback without a token", env: map[string]string{EnvConsoleAddr: "0.0.0.0:4000"},
			want: []string{EnvConsoleAddr + ": \"0.0.0.0:4000\" is not a loopback address", "set " + EnvConsoleToken + "=true", EnvConsoleTLSClientCA}},
		{name: "console off loopback with HTTPS but no login", env: map[string]string{EnvConsoleAddr: "0.0.0.0:4000", EnvConsoleTLSCert: creds, EnvConsoleTLSKey: creds},
			want: []string{EnvConsoleAddr + ": \"0.0.0.0:4000\" is not a loopback address"}},
		{name: "console certificate without key", env: map[string]string{EnvConsoleTLSCert: creds},
			want: []string{EnvConsoleTLSCert + ": " + EnvConsoleTLSCert + " and " + EnvConsoleTLSKey + " go together"}},
		{name: "console client CAs without HTTPS", env: map[string]string{EnvConsoleTLSClientCA: creds},
			want: []string{EnvConsoleTLSClientCA + ": client certificates need HTTPS"}},
		{name: "console client CA file missing", env: map[string]string{EnvConsoleTLSCert: creds, EnvConsoleTLSKey: creds, EnvConsoleTLSClientCA: "/nonexistent/ca.pem"},
			want: []string{EnvConsoleTLSClientCA + ": /nonexistent/ca.pem: no such file"}},
		{name: "actor issuer not an account", env: map[string]string{EnvAllowedActorIssuers: k.userPub},
			want: []string{EnvAllowedActorIssuers + ": entry 1 \"" + k.userPub + "\": expected an account public key"}},
		{name: "payload 0", env: map[string]string{EnvMaxPayloadBytes: "0"},
			want: []string{EnvMaxPayloadBytes + ": 0: out of range 1-1073741824"}},
		{name: "bad duration", env: map[string]string{EnvReplayWindow: "5"},
			want: []string{EnvReplayWindow + ": expected a duration with a unit"}},
		{name: "zero replay window", env: map[string]string{EnvReplayWindow: "0s"},
			want: []string{EnvReplayWindow + ": 0s: must be a positive duration"}},
		{name: "negative skew", env: map[string]string{EnvClockSkew: "-1s"},
			want: []string{EnvClockSkew + ": -1s: must not be negative"}},
		{name: "memory pages 0", env: map[string]string{EnvActorMemoryPages: "0"},
			want: []string{EnvActorMemoryPages + ": 0: out of range 1-65536"}},
		{name: "memory pages negative", env: map[string]string{EnvActorMemoryPages: "-1"},
			want: []string{EnvActorMemoryPages + ": -1: out of range 0-4294967295"}},
		{name: "bad cache form", env: map[string]string{EnvCache: "both"},
			want: []string{EnvCache + `: "both": must be auto, stream or kv`}},
		{name: "bad cache storage", env: map[string]string{EnvCacheStorage: "disk"},
			want: []string{EnvCacheStorage + `: "disk": must be file or memory`}},
		{name: "too many cache replicas", env: map[string]string{EnvCacheReplicas: "7"},
			want: []string{EnvCacheReplicas + ": 7: must be 1 to 5"}},
		{name: "negative queue", env: map[string]string{EnvActorQueue: "-1"},
			want: []string{EnvActorQueue + ": -1: must not be negative"}},
		{name: "zero start timeout", env: map[string]string{EnvActorStartTimeout: "0s"},
			want: []string{EnvActorStartTimeout + ": 0s: must be a positive duration such as 5s"}},
		{name: "ctl topic prefix wildcard", env: map[string]string{EnvCtlTopicPrefix: "wasmbus.*"},
			want: []string{EnvCtlTopicPrefix + ": \"wasmbus.*\": must not contain the wildcards"}},
		{name: "js domain with dot", env: map[string]string{EnvJSDomain: "a.b"},
			want: []string{EnvJSDomain + ": \"a.b\": must not contain"}},
		{name: "no home, no data dir", env: map[string]string{"HOME": ""},
			want: []string{EnvDataDir + ": must not be empty"}},
		{name: "bad --label", args: []string{"--label", "novalue"},
			want: []string{EnvLabelPrefix + "{name} (--label): \"novalue\": expected key=value"}},
		{name: "list of non-strings in file", file: "cluster_issuers: [1, 2]\n",
			want: []string{EnvClusterIssuers + " (cluster_issuers in ", "entry 1: expected a string"}},
		{name: "OCI login without a registry", env: map[string]string{EnvOCIRegistryUser: "u", EnvOCIRegistryPassword: "pw-not-echoed"},
			want: []string{EnvOCIRegistry + ": not set, but " + EnvOCIRegistryUser + " is", "(missing: " + EnvOCIRegistry + ")"}},
		{name: "OCI registry without a login", env: map[string]string{EnvOCIRegistry: "registry.example.com"},
			want: []string{EnvOCIRegistryUser + ": not set, but " + EnvOCIRegistry + " is", "missing: " + EnvOCIRegistryUser + ", " + EnvOCIRegistryPassword}},
		{name: "OCI registry with a scheme", env: map[string]string{EnvOCIRegistry: "https://registry.example.com", EnvOCIRegistryUser: "u", EnvOCIRegistryPassword: "pw-not-echoed"},
			want: []string{EnvOCIRegistry + ": \"https://registry.example.com\": expected a registry host[:port]"}},
		{name: "secret of wrong type in file is not echoed", file: "cluster_seed: [1]\n",
			want: []string{EnvClusterSeed + " (cluster_seed in ", "(value not shown)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(tt.env)
			if tt.file != "" {
				env[EnvConfig] = writeFile(t, "c.yaml", tt.file)
			}
			err := loadErr(t, flags(t, tt.args...), env)
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			if !strings.HasPrefix(msg, strings.SplitN(tt.want[0], ":", 2)[0]) {
				t.Errorf("error %q does not start with the setting's name", msg)
			}
			var se *SettingError
			if !errors.As(err, &se) {
				t.Errorf("error %T is not a *SettingError", err)
			}
			for _, secret := range []string{k.clusterSeed, k.accountSeed, k.userSeed, k.serverSeed, "pw-not-echoed"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks a secret", msg)
				}
			}
			// One problem, one line: a bad value must not also fail validation.
			if n := strings.Count(msg, "\n") + 1; n != 1 {
				t.Errorf("got %d errors, want 1:\n%s", n, msg)
			}
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	k := newKeys(t)
	err := loadErr(t, nil, baseEnv(map[string]string{
		EnvLatticePrefix: "a>b",
		EnvClusterSeed:   k.accountSeed,
		EnvRPCPort:       "70000",
		EnvCtlTLS:        "perhaps",
		EnvActorQueue:    "-5",
	}))
	var envs []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *SettingError
		if !errors.As(e, &se) {
			t.Fatalf("%T is not a *SettingError", e)
		}
		envs = append(envs, se.Env)
	}
	slices.Sort(envs)
	want := []string{EnvActorQueue, EnvLatticePrefix, EnvClusterSeed, EnvCtlTLS, EnvRPCPort}
	slices.Sort(want)
	if !slices.Equal(envs, want) {
		t.Errorf("errors name %q, want %q\n%v", envs, want, err)
	}
}

func TestValidConnections(t *testing.T) {
	k := newKeys(t)
	creds := writeFile(t, "u.creds", "x")
	c, _ := mustLoad(t, flags(t, "--prov-rpc-seed", k.userSeed), baseEnv(map[string]string{
		EnvRPCHost: "::1", EnvRPCSeed: k.userSeed, EnvRPCJWT: "h.p.s",
		EnvCtlHost: "ctl.example", EnvCtlCredsFile: creds, EnvCtlTLS: "1",
	}))
	if got := c.RPC.URL(); got != "nats://[::1]:4222" {
		t.Errorf("RPC.URL() = %q", got)
	}
	if got := c.CTL.URL(); got != "tls://ctl.example:4222" {
		t.Errorf("CTL.URL() = %q", got)
	}
	if c.ProvRPC.Seed != k.userSeed || c.ProvRPC.Configured() {
		t.Errorf("ProvRPC = %+v", c.ProvRPC)
	}
}

// Off loopback, the console starts with a token or with client
// certificates (and HTTPS); TLS settings are left alone when it is off.
func TestConsoleLogins(t *testing.T) {
	pem := writeFile(t, "console.pem", "x")
	for _, env := range []map[string]string{
		{EnvConsoleAddr: "0.0.0.0:4000", EnvConsoleToken: "true"},
		{EnvConsoleAddr: "0.0.0.0:4000", EnvConsoleTLSCert: pem, EnvConsoleTLSKey: pem, EnvConsoleTLSClientCA: pem},
		{EnvConsoleAddr: "0.0.0.0:4000", EnvConsoleToken: "true", EnvConsoleTLSCert: pem, EnvConsoleTLSKey: pem, EnvConsoleTLSClientCA: pem},
		{EnvConsoleAddr: "127.0.0.1:4000", EnvConsoleTLSCert: pem, EnvConsoleTLSKey: pem},
		{EnvConsoleAddr: "", EnvConsoleTLSClientCA: "/nonexistent/ca.pem"},
	} {
		c, _ := mustLoad(t, nil, baseEnv(env))
		set := c.Supervisor().Console
		if set.Addr != env[EnvConsoleAddr] || set.CertFile != env[EnvConsoleTLSCert] || set.KeyFile != env[EnvConsoleTLSKey] || set.ClientCAFile != env[EnvConsoleTLSClientCA] {
			t.Errorf("%v: console settings %+v", env, set)
		}
	}
}

func TestEmbeddedNATS(t *testing.T) {
	tests := []struct {
		rpc, ctl, prov string
		want           bool
	}{
		{"", "", "", true},
		{"", "", "p", true}, // providers' server alone does not replace the embedded one
		{"r", "", "", false},
		{"", "c", "", false},
		{"r", "c", "", false},
	}
	for _, tt := range tests {
		c := &Config{RPC: NATSConn{Host: tt.rpc}, CTL: NATSConn{Host: tt.ctl}, ProvRPC: NATSConn{Host: tt.prov}}
		if got := c.EmbeddedNATS(); got != tt.want {
			t.Errorf("EmbeddedNATS with rpc=%q ctl=%q prov=%q = %v, want %v", tt.rpc, tt.ctl, tt.prov, got, tt.want)
		}
	}
}

func TestClusterSeedAddedToIssuers(t *testing.T) {
	k := newKeys(t)
	tests := []struct {
		name        string
		issuers     string
		want        []string
		wantWarning bool
	}{
		{"no issuers", "", []string{vectorClusterPub}, true},
		{"prepended", k.clusterPub, []string{vectorClusterPub, k.clusterPub}, true},
		{"already present", k.clusterPub + "," + vectorClusterPub, []string{k.clusterPub, vectorClusterPub}, false},
		{"duplicates dropped", k.clusterPub + "," + k.clusterPub, []string{vectorClusterPub, k.clusterPub}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warnings := mustLoad(t, nil, baseEnv(map[string]string{
				EnvClusterSeed: vectorClusterSeed, EnvClusterIssuers: tt.issuers,
			}))
			if !slices.Equal(c.ClusterIssuers, tt.want) {
				t.Errorf("ClusterIssuers = %q, want %q", c.ClusterIssuers, tt.want)
			}
			warned := slices.ContainsFunc(warnings, func(w string) bool {
				return strings.HasPrefix(w, EnvClusterIssuers+":") && strings.Contains(w, vectorClusterPub)
			})
			if warned != tt.wantWarning {
				t.Errorf("warnings = %q, want the issuer warning: %v", warnings, tt.wantWarning)
			}
			for _, w := range warnings {
				if strings.Contains(w, vectorClusterSeed) {
					t.Errorf("warning %q leaks the seed", w)
				}
			}
		})
	}
}

func TestValidateOwnKeyMissing(t *testing.T) {
	c, _ := mustLoad(t, nil, baseEnv(map[string]string{EnvClusterSeed: vectorClusterSeed}))
	c.ClusterIssuers = nil // a Config edited by hand breaks the invariant Load set up
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), EnvClusterIssuers+": must contain the public key of "+EnvClusterSeed) {
		t.Errorf("Validate() = %v", err)
	}
}

func TestLabels(t *testing.T) {
	file := writeFile(t, "c.toml", "[labels]\nzone = \"file\"\nrack = \"r1\"\n")
	env := baseEnv(map[string]string{
		EnvConfig:                   file,
		"WASMCLOUD_LABEL_ZONE":      "env",
		"WASMCLOUD_LABEL_Team_Name": "core",
		"WASMCLOUD_LABEL_":          "ignored",
		"HOST_OTHER":                "not ours",
	})
	c, warnings := mustLoad(t, flags(t, "--label", "team_name=platform", "--label", "a=b=c"), env)
	want := map[string]string{"zone": "env", "rack": "r1", "team_name": "platform", "a": "b=c"}
	if len(c.Labels) != len(want) {
		t.Errorf("Labels = %v, want %v", c.Labels, want)
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("Labels[%q] = %q, want %q", k, c.Labels[k], v)
		}
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.HasPrefix(w, "WASMCLOUD_LABEL_ has no label name") }) {
		t.Errorf("warnings = %q, want one about the empty label name", warnings)
	}
}

// TestLoadLookup checks that Load takes values only from the lookup function:
// the real process environment must not leak into a test.
func TestLoadLookup(t *testing.T) {
	t.Setenv(EnvLatticePrefix, "from-process")
	t.Setenv("WASMCLOUD_LABEL_REGION", "process-value")
	t.Setenv("WASMCLOUD_LABEL_ONLYPROCESS", "x")
	env := baseEnv(map[string]string{"WASMCLOUD_LABEL_REGION": "lookup-value"})
	c, _, err := Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.LatticePrefix != lattice.DefaultLatticePrefix {
		t.Errorf("LatticePrefix = %q: Load read the process environment", c.LatticePrefix)
	}
	if len(c.Labels) != 1 || c.Labels["region"] != "lookup-value" {
		t.Errorf("Labels = %v, want only region=lookup-value", c.Labels)
	}
	if _, _, err := Load(nil, nil); err == nil {
		t.Error("Load with a nil lookup (no HOME) succeeded; want the data dir error")
	}
}

func TestUnknownLatticedVarWarning(t *testing.T) {
	_, warnings := mustLoad(t, nil, baseEnv(map[string]string{"LATTICED_DATADIR": "/x", "WASMCLOUD_SOMETHING": "y"}))
	if len(warnings) != 1 || !strings.Contains(warnings[0], "LATTICED_DATADIR is not a latticed setting") ||
		!strings.Contains(warnings[0], "did you mean "+EnvDataDir) {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestBoolWords(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		ok   bool
	}{
		{"1", true, true}, {"true", true, true}, {"TRUE", true, true}, {"Yes", true, true},
		{"y", true, true}, {"enabled", true, true}, {"ENABLE", true, true},
		{"0", false, true}, {"false", false, true}, {"no", false, true}, {"N", false, true},
		{"disabled", false, true}, {"disable", false, true}, {"", false, true},
		{"on", false, false}, {"2", false, false}, {"ture", false, false},
	}
	for _, tt := range tests {
		got, ok := parseBool(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseBool(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"missing", "", "", "no such file"},
		{"wrong extension", "c.json", "{}", "unsupported config file type"},
		{"bad yaml", "c.yaml", "a: [", "cannot parse as YAML"},
		{"bad toml", "c.toml", "a = ", "cannot parse as TOML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.yaml")
			if tt.file != "" {
				path = writeFile(t, tt.file, tt.content)
			}
			err := loadErr(t, flags(t, "--config", path), baseEnv(nil))
			if !strings.HasPrefix(err.Error(), EnvConfig+" (--config): ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestEnvHelpAndFlags(t *testing.T) {
	help := EnvHelp()
	fs := flags(t)
	for _, s := range settings {
		if !strings.Contains(help, s.envDisplay()+" ") {
			t.Errorf("EnvHelp lacks %s", s.envDisplay())
		}
		if fs.Lookup(s.flag()) == nil {
			t.Errorf("no flag --%s for %s", s.flag(), s.env)
		}
	}
	for _, want := range []string{"--lattice-prefix", "--rpc-port", "--prov-rpc-credsfile", "--rpc-timeout-ms", "--data-dir", "--config", "--label"} {
		if fs.Lookup(strings.TrimPrefix(want, "--")) == nil {
			t.Errorf("missing flag %s", want)
		}
	}
	if !strings.Contains(help, "WASMCLOUD_RPC_TIMEOUT_MS") || !strings.Contains(help, "2000") {
		t.Errorf("EnvHelp lacks the RPC timeout default:\n%s", help)
	}
}

func TestLogValueRedactsSecrets(t *testing.T) {
	k := newKeys(t)
	c, _ := mustLoad(t, nil, baseEnv(map[string]string{
		EnvClusterSeed: k.clusterSeed, EnvHostSeed: k.serverSeed, EnvRPCSeed: k.userSeed, EnvRPCJWT: "hdr.payload.sig",
		EnvOCIRegistry: "registry.example.com:5000", EnvOCIRegistryUser: "lattice", EnvOCIRegistryPassword: "oci-password",
	}))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String()
	for _, secret := range []string{k.clusterSeed, k.serverSeed, k.userSeed, "hdr.payload.sig", "oci-password"} {
		if strings.Contains(out, secret) {
			t.Errorf("log output leaks a secret: %s", out)
		}
	}
	if !strings.Contains(out, `"oci_registry":"registry.example.com:5000"`) || !strings.Contains(out, `"oci_registry_user":"lattice"`) {
		t.Errorf("log output lacks the OCI registry and user: %s", out)
	}
	if !strings.Contains(out, k.clusterPub) || !strings.Contains(out, "[redacted]") {
		t.Errorf("log output lacks the issuer or the redaction marker: %s", out)
	}
}

func TestSlogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got := (&Config{LogLevel: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

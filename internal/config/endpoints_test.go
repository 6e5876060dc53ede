package config

import "testing"

// TestEndpoints: which server serves which role, from the settings as an
// operator writes them, including IPv6 addresses and server lists.
func TestEndpoints(t *testing.T) {
	k := newKeys(t)
	type role struct{ url, seed string }
	for _, tt := range []struct {
		name          string
		env           map[string]string
		rpc, ctl, prv role
		embedded      bool
	}{
		{name: "nothing configured: the embedded server on loopback, no credentials",
			env: map[string]string{EnvNATSListen: "0.0.0.0:5222", EnvCtlSeed: k.userSeed},
			rpc: role{url: "nats://127.0.0.1:5222"}, ctl: role{url: "nats://127.0.0.1:5222"}, prv: role{url: "nats://127.0.0.1:5222"},
			embedded: true},
		{name: "embedded server listening on IPv6 loopback",
			env: map[string]string{EnvNATSListen: "[::1]:4222"},
			rpc: role{url: "nats://[::1]:4222"}, ctl: role{url: "nats://[::1]:4222"}, prv: role{url: "nats://[::1]:4222"},
			embedded: true},
		{name: "RPC alone serves every role, with its credentials",
			env: map[string]string{EnvRPCHost: "[::1]:4222", EnvRPCSeed: k.userSeed},
			rpc: role{"nats://[::1]:4222", k.userSeed}, ctl: role{"nats://[::1]:4222", k.userSeed}, prv: role{url: "nats://[::1]:4222"}},
		{name: "control alone serves every role",
			env: map[string]string{EnvCtlHost: "nats://[::1]:4222", EnvCtlPort: "5000"},
			rpc: role{url: "nats://[::1]:4222"}, ctl: role{url: "nats://[::1]:4222"}, prv: role{url: "nats://[::1]:4222"}},
		{name: "a bare IPv6 address takes the role's port",
			env: map[string]string{EnvRPCHost: "::1", EnvRPCPort: "4333"},
			rpc: role{url: "nats://[::1]:4333"}, ctl: role{url: "nats://[::1]:4333"}, prv: role{url: "nats://[::1]:4333"}},
		{name: "comma lists, each role its own",
			env: map[string]string{EnvRPCHost: "a,b:4223", EnvCtlHost: "nats://[::1]:4222,c", EnvCtlPort: "4300",
				EnvProvRPCHost: "p1, p2", EnvProvRPCSeed: k.userSeed},
			rpc: role{url: "nats://a:4222,nats://b:4223"}, ctl: role{url: "nats://[::1]:4222,nats://c:4300"},
			prv: role{"nats://p1:4222,nats://p2:4222", k.userSeed}},
		{name: "providers take the RPC servers and TLS, with their own credentials",
			env: map[string]string{EnvRPCHost: "a,tls://b", EnvRPCTLS: "true", EnvRPCSeed: k.userSeed, EnvCtlHost: "c", EnvProvRPCSeed: k.userSeed},
			rpc: role{"tls://a:4222,tls://b:4222", k.userSeed}, ctl: role{url: "nats://c:4222"}, prv: role{"tls://a:4222,tls://b:4222", k.userSeed}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, nil, baseEnv(tt.env))
			ep := c.Endpoints()
			if ep.Embedded != tt.embedded {
				t.Errorf("Embedded = %v, want %v", ep.Embedded, tt.embedded)
			}
			for _, r := range []struct {
				name string
				got  NATSConn
				want role
			}{{"RPC", ep.RPC, tt.rpc}, {"Ctl", ep.Ctl, tt.ctl}, {"ProvRPC", ep.ProvRPC, tt.prv}} {
				if got := r.got.URL(); got != r.want.url {
					t.Errorf("%s.URL() = %q, want %q", r.name, got, r.want.url)
				}
				if r.got.Seed != r.want.seed {
					t.Errorf("%s.Seed = %q, want %q", r.name, r.got.Seed, r.want.seed)
				}
				if !r.got.Configured() {
					t.Errorf("%s is not configured", r.name)
				}
			}
		})
	}
}

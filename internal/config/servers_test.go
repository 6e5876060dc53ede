package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/latticed/latticed/lattice"
)

func TestParseServers(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		port    int
		tls     bool
		want    []string
		wantErr string // substring of the error; "" = no error
	}{
		{name: "host", list: "nats.example", port: 4222, want: []string{"nats://nats.example:4222"}},
		{name: "host:port", list: "127.0.0.1:24222", port: 4222, want: []string{"nats://127.0.0.1:24222"}},
		{name: "url", list: "nats://10.0.0.1:4333", port: 4222, want: []string{"nats://10.0.0.1:4333"}},
		{name: "url without port", list: "nats://n1", port: 4300, want: []string{"nats://n1:4300"}},
		{name: "tls setting", list: "n1,n2:5", port: 4222, tls: true, want: []string{"tls://n1:4222", "tls://n2:5"}},
		{name: "tls scheme", list: "tls://n1:4443", port: 4222, want: []string{"tls://n1:4443"}},
		{name: "list", list: "127.0.0.1:24222, 127.0.0.1:24223,nats://127.0.0.1:24224", port: 4222,
			want: []string{"nats://127.0.0.1:24222", "nats://127.0.0.1:24223", "nats://127.0.0.1:24224"}},
		{name: "port setting fills in", list: "a,b:7,c", port: 4300,
			want: []string{"nats://a:4300", "nats://b:7", "nats://c:4300"}},
		{name: "ipv6 with port", list: "[::1]:4222", port: 1, want: []string{"nats://[::1]:4222"}},
		{name: "ipv6 bracketed", list: "[::1]", port: 4223, want: []string{"nats://[::1]:4223"}},
		{name: "ipv6 bare", list: "::1", port: 4223, want: []string{"nats://[::1]:4223"}},
		{name: "ipv6 url", list: "nats://[fe80::1]:4333,[::1]:1", port: 4222, want: []string{"nats://[fe80::1]:4333", "nats://[::1]:1"}},
		{name: "trailing slash", list: "nats://n1:4222/", port: 4222, want: []string{"nats://n1:4222"}},

		{name: "empty", list: " ", port: 4222, wantErr: "no server given"},
		{name: "empty entry", list: "a,,b", port: 4222, wantErr: `entry 2 "" of "a,,b": empty entry`},
		{name: "trailing comma", list: "a,", port: 4222, wantErr: "entry 2"},
		{name: "other scheme", list: "http://n1:4222", port: 4222, wantErr: `scheme "http"`},
		{name: "credentials in url", list: "nats://u:p@n1:4222", port: 4222, wantErr: "credentials go in"},
		{name: "path", list: "nats://n1:4222/x", port: 4222, wantErr: `unexpected '/'`},
		{name: "space inside", list: "n 1", port: 4222, wantErr: "unexpected"},
		{name: "bad port", list: "b,n1:http", port: 4222, wantErr: `entry 2 "n1:http" of "b,n1:http": port "http"`},
		{name: "port zero", list: "n1:0", port: 4222, wantErr: `port "0"`},
		{name: "port too big", list: "n1:65536", port: 4222, wantErr: `port "65536"`},
		{name: "default port out of range", list: "n1", port: 0, wantErr: "port 0 out of range"},
		{name: "no host", list: ":4222", port: 4222, wantErr: "no host"},
		{name: "missing bracket", list: "[::1:4222", port: 4222, wantErr: "expected host:port"},
		{name: "ipv4 in brackets", list: "[127.0.0.1]", port: 4222, wantErr: "not an IPv6 address"},
		{name: "too many colons", list: "a:b:c", port: 4222, wantErr: "expected host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServers(tt.list, tt.port, tt.tls)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseServers(%q) = %v, %v; want an error containing %q", tt.list, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseServers(%q): %v", tt.list, err)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("ParseServers(%q) = %q, want %q", tt.list, got, tt.want)
			}
		})
	}
}

// The settings take lists, and a bad entry is refused at load with the
// setting's name.
func TestServerListSettings(t *testing.T) {
	c, _ := mustLoad(t, nil, baseEnv(map[string]string{
		EnvCtlHost: "127.0.0.1:24222,[::1]:24223,nats://h3", EnvCtlPort: "4300",
		EnvRPCHost: "h1,h2", EnvRPCTLS: "true",
	}))
	if got, want := c.CTL.URL(), "nats://127.0.0.1:24222,nats://[::1]:24223,nats://h3:4300"; got != want {
		t.Errorf("CTL.URL() = %q, want %q", got, want)
	}
	if got, want := c.RPC.URL(), "tls://h1:4222,tls://h2:4222"; got != want {
		t.Errorf("RPC.URL() = %q, want %q", got, want)
	}
	err := loadErr(t, nil, baseEnv(map[string]string{EnvProvRPCHost: "ok,bad:port"}))
	if !strings.Contains(err.Error(), EnvProvRPCHost) || !strings.Contains(err.Error(), `"bad:port"`) {
		t.Errorf("a bad entry: err = %v, want one naming %s and the entry", err, EnvProvRPCHost)
	}
}

func TestHostPorts(t *testing.T) {
	if got := strings.Join(HostPorts("nats://a:1,tls://[::1]:2,c:3"), ","); got != "a:1,[::1]:2,c:3" {
		t.Errorf("HostPorts = %q", got)
	}
}

func TestListenConn(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:4222": "nats://127.0.0.1:4222",
		"0.0.0.0:5222":   "nats://127.0.0.1:5222",
		"[::1]:4222":     "nats://[::1]:4222",
		":4223":          "nats://127.0.0.1:4223",
	} {
		if got := ListenConn(listen, false).URL(); got != want {
			t.Errorf("ListenConn(%q).URL() = %q, want %q", listen, got, want)
		}
	}
}

func TestKeepaliveSettings(t *testing.T) {
	c, _ := mustLoad(t, nil, baseEnv(nil))
	if c.NATSKeepalive != DefaultKeepalive || DefaultKeepalive.Bound() != 3*lattice.DefaultNATSPingInterval {
		t.Errorf("default keepalive = %+v (bound %s)", c.NATSKeepalive, c.NATSKeepalive.Bound())
	}
	for _, tt := range []struct{ env, val string }{
		{EnvNATSPingInterval, "10ms"}, {EnvNATSPingMisses, "0"},
	} {
		if err := loadErr(t, nil, baseEnv(map[string]string{tt.env: tt.val})); !strings.Contains(err.Error(), tt.env) {
			t.Errorf("%s=%s: err = %v, want one naming the setting", tt.env, tt.val, err)
		}
	}
}

// FuzzParseServers: whatever an operator types, the parser returns an
// error or URLs that nats.go can dial: one per entry, each with a host and
// a port in range, and no credentials.
func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"a", "a:1,b", "nats://[::1]:4222", "::1", "tls://h", "a,,b", "[::1", "u@h:1"} {
		f.Add(s, 4222, false)
	}
	f.Fuzz(func(t *testing.T, list string, port int, tls bool) {
		urls, err := ParseServers(list, port, tls)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(urls) != strings.Count(list, ",")+1 {
			t.Fatalf("%q: %d URLs for %d entries", list, len(urls), strings.Count(list, ",")+1)
		}
		for _, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("%q gave %q: %v", list, raw, err)
			}
			if (u.Scheme != "nats" && u.Scheme != "tls") || u.User != nil || u.Hostname() == "" || u.Path != "" {
				t.Fatalf("%q gave %q", list, raw)
			}
			if tls && u.Scheme != "tls" {
				t.Fatalf("%q with TLS gave %q", list, raw)
			}
			_, p, err := net.SplitHostPort(u.Host)
			if n, perr := strconv.Atoi(p); err != nil || perr != nil || n < 1 || n > 65535 {
				t.Fatalf("%q gave %q: bad port", list, raw)
			}
		}
	})
}

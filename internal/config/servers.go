package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/latticed/latticed/lattice"
)

// ParseServers is the one rule for a role's server list
// (WASMCLOUD_RPC_HOST, WASMCLOUD_CTL_HOST, WASMCLOUD_PROV_RPC_HOST and their
// config-file keys): comma-separated entries, each `host`, `host:port`,
// `[ipv6]:port`, a bare IPv6 address, or `nats://host:port` (`tls://` too).
// Entries without a port take defPort, the role's port setting. It returns
// one URL per entry, nats://host:port (tls:// when tls is set or the entry
// says tls://), in the order given. The error names the bad entry and what
// is wrong with it; docs/operations.md ("Several NATS servers") describes
// the syntax.
func ParseServers(list string, defPort int, tls bool) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("no server given")
	}
	entries := strings.Split(list, ",")
	urls := make([]string, 0, len(entries))
	for i, raw := range entries {
		u, err := parseServer(strings.TrimSpace(raw), defPort, tls)
		if err != nil {
			if len(entries) == 1 {
				return nil, fmt.Errorf("%q: %w", raw, err)
			}
			return nil, fmt.Errorf("entry %d %q of %q: %w", i+1, raw, list, err)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// parseServer turns one entry of a server list into a URL.
func parseServer(entry string, defPort int, tls bool) (string, error) {
	if entry == "" {
		return "", errors.New("empty entry (remove the extra comma)")
	}
	scheme := "nats"
	if tls {
		scheme = "tls"
	}
	if s, rest, ok := strings.Cut(entry, "://"); ok {
		switch strings.ToLower(s) {
		case "nats":
		case "tls":
			scheme = "tls"
		default:
			return "", fmt.Errorf("scheme %q: expected nats:// or tls:// (or no scheme)", s)
		}
		entry = strings.TrimSuffix(rest, "/")
	}
	if i := strings.IndexFunc(entry, func(r rune) bool {
		return r == '/' || r == '@' || r == '?' || r == '#' || r == ',' || r <= ' ' || r == 0x7f
	}); i >= 0 {
		// '@' would be credentials in the URL, which end up in logs:
		// they belong in the role's CREDSFILE/JWT/SEED settings.
		return "", fmt.Errorf("unexpected %q: expected host, host:port or nats://host:port (credentials go in the CREDSFILE, JWT and SEED settings)", entry[i])
	}
	host, port := entry, defPort
	switch {
	case net.ParseIP(entry) != nil: // a bare IP, including IPv6 ::1 without brackets
	case strings.HasPrefix(entry, "[") && strings.HasSuffix(entry, "]"):
		host = entry[1 : len(entry)-1]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	case strings.Contains(entry, ":"):
		h, p, err := net.SplitHostPort(entry)
		if err != nil {
			return "", fmt.Errorf("expected host:port, [ipv6]:port or host: %w", err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q: expected a number 1-65535", p)
		}
		host, port = h, n
	}
	if host == "" {
		return "", errors.New("no host name or address")
	}
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("host %q: misplaced bracket (write IPv6 as [::1]:4222)", host)
	}
	if net.ParseIP(host) == nil && strings.IndexFunc(host, notHostNameRune) >= 0 {
		return "", fmt.Errorf("host %q: a host name has only letters, digits, '.', '-' and '_'", host)
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("port %d out of range 1-65535 (the role's PORT setting)", port)
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func notHostNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
}

// HostPorts strips the scheme of each URL of a comma-separated list
// ("nats://a:4222,nats://b:4223" → ["a:4222", "b:4223"]): the form of
// HostData's lattice_rpc_url, which wasmCloud's hosts send without scheme.
func HostPorts(urls string) []string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if _, rest, ok := strings.Cut(p, "://"); ok {
			parts[i] = rest
		}
	}
	return parts
}

// ListenConn is the connection to the embedded server of a lattice of one
// listening on listen (LATTICED_NATS_LISTEN, already validated): a server
// listening on all interfaces is reached on loopback.
func ListenConn(listen string, tls bool) NATSConn {
	host, portStr, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	port, _ := strconv.Atoi(portStr)
	return NATSConn{Host: host, Port: port, TLS: tls}
}

// Keepalive is how every NATS connection of every latticed process notices
// a server that stopped answering without closing the connection (a frozen
// or partitioned server): a PING every Interval, and after Misses PINGs
// without a PONG the client drops the connection and fails over to another
// server of its list.
type Keepalive struct {
	// Interval is the time between PINGs (LATTICED_NATS_PING_INTERVAL).
	Interval time.Duration
	// Misses is how many PINGs may go unanswered (LATTICED_NATS_PING_MISSES).
	Misses int
}

// DefaultKeepalive is the keepalive of a connection made without a Config;
// its values are lattice's, which a provider uses too when its HostData
// names none.
var DefaultKeepalive = Keepalive{Interval: lattice.DefaultNATSPingInterval, Misses: lattice.DefaultNATSPingMisses}

// Bound is the longest a healthy connection goes without hearing from its
// server: past it, the client gives the server up, and /readyz reports the
// connection unready.
func (k Keepalive) Bound() time.Duration {
	return k.Interval * time.Duration(k.Misses+1)
}

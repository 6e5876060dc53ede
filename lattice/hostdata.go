package lattice

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxHostDataLine bounds the HostData line a provider reads from stdin.
const MaxHostDataLine = 4 << 20

// The keepalive of a lattice connection when nothing sets one: a provider's
// whose HostData has no NATSPingIntervalMS and NATSPingMisses, and every
// connection of a node without LATTICED_NATS_PING_INTERVAL and
// LATTICED_NATS_PING_MISSES. A frozen server is then noticed within about
// DefaultNATSPingInterval × (DefaultNATSPingMisses+1) = 3 s, inside the 5 s
// docs/operations.md promises for a failover.
const (
	DefaultNATSPingInterval = time.Second
	DefaultNATSPingMisses   = 2
)

// HostData is what a host hands a provider on stdin at launch: one line of
// standard base64 of this JSON object.
type HostData struct {
	HostID              string            `json:"host_id"`
	LatticeRPCPrefix    string            `json:"lattice_rpc_prefix"`
	LinkName            string            `json:"link_name"`
	LatticeRPCUserJWT   string            `json:"lattice_rpc_user_jwt"`
	LatticeRPCUserSeed  string            `json:"lattice_rpc_user_seed"`
	LatticeRPCURL       string            `json:"lattice_rpc_url"`
	LatticeRPCTLS       FlexBool          `json:"lattice_rpc_tls"`
	EnvValues           map[string]string `json:"env_values"`
	InstanceID          string            `json:"instance_id"`
	ProviderKey         string            `json:"provider_key"`
	LinkDefinitions     []LinkDefinition  `json:"link_definitions"`
	ConfigJSON          string            `json:"config_json"`
	DefaultRPCTimeoutMS uint64            `json:"default_rpc_timeout_ms"`
	ClusterIssuers      []string          `json:"cluster_issuers"`
	InvocationSeed      string            `json:"invocation_seed"`
	// InvocationDelegation vouches for InvocationSeed when that is a delegated
	// signing key rather than the cluster seed (latticed extension).
	InvocationDelegation string  `json:"invocation_delegation,omitempty"`
	JSDomain             *string `json:"js_domain"`
	StructuredLogging    bool    `json:"structured_logging"`
	LogLevel             string  `json:"log_level,omitempty"`
	// InboxPrefix is the reply-inbox prefix the provider's NATS user may
	// subscribe to, for nats.CustomInboxPrefix (latticed extension, which
	// wasmCloud providers ignore). Empty: nats' default "_INBOX".
	InboxPrefix string `json:"inbox_prefix,omitempty"`
	// NATSPingIntervalMS and NATSPingMisses are the keepalive the
	// provider's lattice connection should use (latticed extensions; zero:
	// DefaultNATSPingInterval and DefaultNATSPingMisses).
	// docs/operations.md, "When NATS fails".
	NATSPingIntervalMS uint64 `json:"nats_ping_interval_ms,omitempty"`
	NATSPingMisses     int    `json:"nats_ping_misses,omitempty"`
	// LatticeRPCURLs is every server of the lattice connection's list,
	// host:port each (latticed extension). LatticeRPCURL carries only the
	// first: wasmCloud's provider SDK parses that field as one address
	// (async-nats ToServerAddrs for str), so a list there would break it.
	LatticeRPCURLs []string `json:"latticed_rpc_urls,omitempty"`
}

// FlexBool is a bool that also decodes from 0/1: the OTP host sends
// `lattice_rpc_tls` as an integer.
type FlexBool bool

// UnmarshalJSON accepts true/false, numbers and null.
func (b *FlexBool) UnmarshalJSON(data []byte) error {
	switch s := string(bytes.TrimSpace(data)); s {
	case "true":
		*b = true
	case "false", "null", "0":
		*b = false
	default:
		var n float64
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("want a boolean, got %s", s)
		}
		*b = n != 0
	}
	return nil
}

// EncodeHostData renders the stdin line: base64(JSON) + "\n".
func EncodeHostData(hd *HostData) ([]byte, error) {
	if hd.EnvValues == nil {
		hd.EnvValues = map[string]string{} // the Rust SDK requires the field
	}
	if hd.LinkDefinitions == nil {
		hd.LinkDefinitions = []LinkDefinition{}
	}
	js, err := json.Marshal(hd)
	if err != nil {
		return nil, fmt.Errorf("encode host data: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(js))+1)
	base64.StdEncoding.Encode(out, js)
	out[len(out)-1] = '\n'
	return out, nil
}

// ErrHostData wraps every HostData decoding failure.
var ErrHostData = errors.New("invalid host data")

// DecodeHostData parses the line a provider read from stdin and checks the
// fields a provider cannot work without.
func DecodeHostData(line []byte) (*HostData, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, fmt.Errorf("%w: empty line on stdin (start providers through a host)", ErrHostData)
	}
	if len(line) > MaxHostDataLine {
		return nil, fmt.Errorf("%w: line of %d bytes exceeds %d", ErrHostData, len(line), MaxHostDataLine)
	}
	// Sized for the unpadded fallback too, which needs more room than padded input.
	js := make([]byte, base64.RawStdEncoding.DecodedLen(len(line)))
	n, err := base64.StdEncoding.Decode(js, line)
	if err != nil {
		// Some hosts pad differently; accept unpadded too.
		if n, err = base64.RawStdEncoding.Decode(js, bytes.TrimRight(line, "=")); err != nil {
			return nil, fmt.Errorf("%w: not base64: %v", ErrHostData, err)
		}
	}
	hd := new(HostData)
	if err := json.Unmarshal(js[:n], hd); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrHostData, err)
	}
	var missing []string
	for name, v := range map[string]string{
		"host_id": hd.HostID, "lattice_rpc_prefix": hd.LatticeRPCPrefix,
		"provider_key": hd.ProviderKey, "link_name": hd.LinkName,
	} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrHostData, strings.Join(missing, ", "))
	}
	return hd, nil
}

package httpserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/latticed/latticed/rpc"
)

// Defaults of a link's settings.
const (
	// DefaultAddress is wasmCloud's httpserver default listen address.
	DefaultAddress = "127.0.0.1:8000"
	// DefaultMaxContentLen bounds request bodies: the host's default
	// payload limit (LATTICED_MAX_PAYLOAD_BYTES), since bodies over 900 KiB
	// travel through the lattice object store (wasmCloud: 10 MiB).
	DefaultMaxContentLen = rpc.DefaultMaxPayloadBytes
	// MaxContentLenLimit is the highest max_content_len accepted.
	MaxContentLenLimit = 500 << 20
)

// Settings is how one link's listener behaves.
type Settings struct {
	// Address is the listen address, host:port.
	Address string
	// MaxContentLen is the request body limit in bytes; a larger body gets 413.
	MaxContentLen int64
	// Timeout is how long the actor may take to answer; then 504. Zero means
	// the host's default RPC timeout.
	Timeout time.Duration
}

// fileSettings is the JSON form (config_json / config_b64), wasmCloud's
// field names; fields we do not implement (tls, cors, log) are ignored.
type fileSettings struct {
	Address       string          `json:"address"`
	TimeoutMS     uint64          `json:"timeout_ms"`
	MaxContentLen json.RawMessage `json:"max_content_len"`
}

// ParseSettings reads a link's values. Keys are case-insensitive (PORT and
// port are the same key; two spellings of one key are an error), and are
// applied in this order, later ones overriding:
//
//   - config_b64 (base64 JSON), then config_json: {"address", "timeout_ms",
//     "max_content_len"} as in wasmCloud's httpserver;
//   - address: the listen address, host:port;
//   - port: a port on 127.0.0.1, used only when no address was given
//     (wasmCloud lets port override address; latticed never widens an
//     explicit address);
//   - max_content_len: bytes, or a number with suffix k, m or g (×1024);
//   - timeout_ms: how long to wait for the actor.
//
// Without address or port the listener is DefaultAddress, loopback only:
// exposing a port beyond the machine takes an explicit address such as
// 0.0.0.0:8080.
func ParseSettings(values map[string]string) (Settings, error) {
	v := make(map[string]string, len(values))
	for k, val := range values {
		lk := strings.ToLower(k)
		if _, dup := v[lk]; dup {
			return Settings{}, fmt.Errorf("link values have key %q more than once (keys are case-insensitive)", lk)
		}
		v[lk] = val
	}
	s := Settings{MaxContentLen: DefaultMaxContentLen}
	var address string
	apply := func(source string, fs fileSettings) error {
		if fs.Address != "" {
			address = fs.Address
		}
		if fs.TimeoutMS > 0 {
			s.Timeout = time.Duration(fs.TimeoutMS) * time.Millisecond
		}
		if len(fs.MaxContentLen) > 0 && string(fs.MaxContentLen) != "null" {
			raw := strings.Trim(string(fs.MaxContentLen), `"`)
			n, err := parseSize(raw)
			if err != nil {
				return fmt.Errorf("%s: max_content_len: %w", source, err)
			}
			s.MaxContentLen = n
		}
		return nil
	}
	if b64, ok := v["config_b64"]; ok {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
		if err != nil {
			return Settings{}, fmt.Errorf("config_b64: not base64: %v", err)
		}
		var fs fileSettings
		if err := json.Unmarshal(raw, &fs); err != nil {
			return Settings{}, fmt.Errorf("config_b64: invalid JSON: %v", err)
		}
		if err := apply("config_b64", fs); err != nil {
			return Settings{}, err
		}
	}
	if js, ok := v["config_json"]; ok {
		var fs fileSettings
		if err := json.Unmarshal([]byte(js), &fs); err != nil {
			return Settings{}, fmt.Errorf("config_json: invalid JSON: %v", err)
		}
		if err := apply("config_json", fs); err != nil {
			return Settings{}, err
		}
	}
	if a, ok := v["address"]; ok {
		address = a
	}
	if address == "" {
		address = DefaultAddress
		if p, ok := v["port"]; ok {
			port, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil {
				return Settings{}, fmt.Errorf("port %q: want a number 0-65535", p)
			}
			address = net.JoinHostPort("127.0.0.1", strconv.FormatUint(port, 10))
		}
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return Settings{}, fmt.Errorf("address %q: want host:port: %v", address, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Settings{}, fmt.Errorf("address %q: port %q is not a number 0-65535", address, port)
	}
	s.Address = net.JoinHostPort(host, port)
	if m, ok := v["max_content_len"]; ok {
		n, err := parseSize(m)
		if err != nil {
			return Settings{}, fmt.Errorf("max_content_len: %w", err)
		}
		s.MaxContentLen = n
	}
	if t, ok := v["timeout_ms"]; ok {
		ms, err := strconv.ParseUint(strings.TrimSpace(t), 10, 32)
		if err != nil || ms == 0 {
			return Settings{}, fmt.Errorf("timeout_ms %q: want a positive number of milliseconds", t)
		}
		s.Timeout = time.Duration(ms) * time.Millisecond
	}
	return s, nil
}

// parseSize reads "1048576", "512k", "10M", "1g" (multiples of 1024).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive size such as 1048576, 512k or 10m", s)
	}
	if n > MaxContentLenLimit/mult {
		return 0, fmt.Errorf("%d×%d bytes exceeds the %d byte limit", n, mult, MaxContentLenLimit)
	}
	return n * mult, nil
}

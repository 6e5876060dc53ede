package lattice

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// ErrInvalidRequest marks control input refused before anything changed: a
// name that cannot be a NATS subject token, keys that collide, a negative
// count. Hosts and the ctl client check the same rules (these functions).
var ErrInvalidRequest = errors.New("invalid request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// maxNameLen bounds link names and label keys.
const maxNameLen = 128

// ValidateLinkName checks a link name (after the "default" fill-in): it
// becomes one token of NATS subjects (wasmbus.rpc.{prefix}.{provider}.{link}),
// so it must not contain '.', the wildcards '*' and '>', whitespace or
// control characters.
func ValidateLinkName(name string) error {
	if name == "" {
		return invalid("link name must not be empty")
	}
	if len(name) > maxNameLen {
		return invalid("link name of %d bytes is longer than %d", len(name), maxNameLen)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	}); i >= 0 {
		return invalid("link name %q contains %q: a link name is one NATS subject token, without '.', '*', '>' or whitespace", name, name[i:i+1])
	}
	return nil
}

// ValidateLabelKey checks a host label key: letters, digits, '_', '-', '/',
// and '.' between non-empty parts (as in the core label hostcore.os). No
// wildcards, whitespace or control characters: keys are matched against
// auction constraints and shown in every inventory.
func ValidateLabelKey(key string) error {
	if key == "" {
		return invalid("label key must not be empty")
	}
	if len(key) > maxNameLen {
		return invalid("label key of %d bytes is longer than %d", len(key), maxNameLen)
	}
	for _, r := range key {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || strings.ContainsRune("_-./", r)) {
			return invalid("label key %q contains %q: use letters, digits, '_', '-', '/' and '.'", key, r)
		}
	}
	if slices.Contains(strings.Split(key, "."), "") {
		return invalid("label key %q has an empty part: '.' must sit between two names", key)
	}
	return nil
}

// ValidateLabelPut checks a label put against the labels a host already has:
// a key that differs from an existing one only in case would make constraints
// match one or the other by accident.
func ValidateLabelPut(labels map[string]string, key string) error {
	if err := ValidateLabelKey(key); err != nil {
		return err
	}
	if IsCoreLabel(key) {
		return invalid("label %q is a core label the host sets from its platform; it cannot be changed", key)
	}
	for k := range labels {
		if k != key && strings.EqualFold(k, key) {
			return invalid("label key %q differs only in case from the existing label %q: remove that first, or use its spelling", key, k)
		}
	}
	return nil
}

// ValidateValues checks a link's values: keys must be non-empty and no two
// may differ only in case, since providers look keys up case-insensitively
// (wasmCloud's httpserver reads PORT or port) and would pick one at random.
func ValidateValues(values map[string]string) error {
	seen := make(map[string]string, len(values))
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if strings.TrimSpace(k) == "" {
			return invalid("link value key %q is empty", k)
		}
		fold := strings.ToLower(k)
		if other, ok := seen[fold]; ok {
			return invalid("link value keys %q and %q differ only in case: give one of them", other, k)
		}
		seen[fold] = k
	}
	return nil
}

// Validate checks a link definition from control input, after Normalize:
// its link name and its values. What the values mean is the provider's
// business; it refuses values it cannot use and keeps its current link.
func (l *LinkDefinition) Validate() error {
	if err := ValidateLinkName(l.LinkName); err != nil {
		return err
	}
	return ValidateValues(l.Values)
}

// ValidateCount checks an instance count from control input: never
// negative (0 means the command's default).
func ValidateCount(count int) error {
	if count < 0 {
		return invalid("count %d must not be negative", count)
	}
	return nil
}

package child

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// What replaces a secret the supervisor handed out, and anything else
// shaped like an nkeys seed, in a child's output.
const (
	RedactedSecret = "[redacted secret]"
	RedactedSeed   = "[redacted seed]"
)

// minSecretLen is the shortest value redacted: shorter ones (an empty
// field, a one-letter link name) would blank out ordinary words.
const minSecretLen = 16

// redactor removes from a child's output the exact secret values the
// supervisor handed to that child (its seeds, its whole HostData), in every
// form a child is likely to print them: raw, JSON-escaped, hex, and base64
// (standard and URL alphabets, padded or not) at any alignment, so a secret
// inside a larger base64 blob, such as the HostData line itself or a
// re-encoding of its JSON, is found too. It is built once per child start and
// only read afterwards, so it is safe for concurrent use.
//
// It guards against accidents (a provider that echoes its stdin or dumps its
// configuration); a child that wants to leak its own secrets can always
// transform them further or send them elsewhere. See RATIONALE.md.
type redactor struct {
	r *strings.Replacer // nil: nothing to redact
}

// newRedactor builds a redactor for secrets; values shorter than
// minSecretLen are ignored.
func newRedactor(secrets ...string) *redactor {
	var needles []string
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		needles = append(needles, secretForms(s)...)
	}
	if len(needles) == 0 {
		return &redactor{}
	}
	// strings.Replacer tries the old strings in argument order at each
	// position: longest first, so the whole HostData wins over a seed in it.
	slices.SortFunc(needles, func(a, b string) int { return len(b) - len(a) })
	needles = slices.Compact(needles)
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, RedactedSecret)
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

// secretForms lists the substrings that betray s in output.
func secretForms(s string) []string {
	forms := []string{s, hex.EncodeToString([]byte(s)), strings.ToUpper(hex.EncodeToString([]byte(s)))}
	if q, err := json.Marshal(s); err == nil {
		forms = append(forms, string(q[1:len(q)-1])) // escaped quotes, newlines, <, >, &
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		forms = append(forms, base64Cores(enc, []byte(s))...)
	}
	return forms
}

// base64Cores returns, for each of the three byte offsets s can start at in
// a base64 stream, the characters that depend on s's bytes alone. Every
// base64 encoding of data containing s contains one of them (the padded and
// unpadded forms differ only in '=' at the end, which no core includes).
func base64Cores(enc *base64.Encoding, s []byte) []string {
	cores := make([]string, 0, 3)
	for off := range 3 {
		buf := make([]byte, off+len(s))
		copy(buf[off:], s)
		e := enc.EncodeToString(buf)
		// Character i carries bits 6i..6i+5; s occupies bits 8off..8(off+len)-1.
		start := (8*off + 5) / 6
		end := 8 * (off + len(s)) / 6
		if end > start {
			cores = append(cores, e[start:end])
		}
	}
	return cores
}

// redact returns line with every secret form, and anything shaped like an
// nkeys seed, replaced. A nil redactor still removes seed shapes.
func (r *redactor) redact(line []byte) []byte {
	if r != nil && r.r != nil {
		if s := r.r.Replace(string(line)); s != string(line) {
			line = []byte(s)
		}
	}
	return seedPattern.ReplaceAll(line, []byte(RedactedSeed))
}

// redactString is redact for a string.
func (r *redactor) redactString(s string) string {
	if r != nil && r.r != nil {
		s = r.r.Replace(s)
	}
	return seedPattern.ReplaceAllString(s, RedactedSeed)
}

// redactValue redacts every string in a decoded JSON value, keys included:
// JSON escapes (\u0053…) can hide a secret from the raw line that decoding
// then restores.
func (r *redactor) redactValue(v any) any {
	switch v := v.(type) {
	case string:
		return r.redactString(v)
	case []any:
		for i := range v {
			v[i] = r.redactValue(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[r.redactString(k)] = r.redactValue(x)
		}
		return out
	}
	return v
}

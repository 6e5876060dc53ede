package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
)

// seedShape matches an nkeys seed.
var seedShape = regexp.MustCompile(`S[ACMNOUVX][A-Z2-7]{56}`)

// FindSeeds looks for any of seeds (nil: anything shaped like an nkeys
// seed) in s, raw, or hidden in a base64 (either alphabet, any alignment) or
// hex run, and names the first form found. It is written independently of
// the redactor: it decodes, where the redactor encodes.
func FindSeeds(s string, seeds []string) string {
	has := func(b []byte) string {
		if seeds == nil {
			if m := seedShape.Find(b); m != nil {
				return string(m[:4]) + "…"
			}
		}
		for _, seed := range seeds {
			if bytes.Contains(b, []byte(seed)) {
				return seed[:4] + "…"
			}
		}
		return ""
	}
	if f := has([]byte(s)); f != "" {
		return "raw " + f
	}
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/_-]{20,}`).FindAllString(s, -1) {
		std := strings.NewReplacer("-", "+", "_", "/").Replace(run)
		for skip := range 4 {
			body := std[skip:]
			body = body[:len(body)/4*4]
			if b, err := base64.StdEncoding.DecodeString(body); err == nil {
				if f := has(b); f != "" {
					return "base64 " + f
				}
			}
		}
	}
	for _, run := range regexp.MustCompile(`[0-9a-fA-F]{40,}`).FindAllString(s, -1) {
		for skip := range 2 {
			body := run[skip:]
			if b, err := hex.DecodeString(body[:len(body)/2*2]); err == nil {
				if f := has(b); f != "" {
					return "hex " + f
				}
			}
		}
	}
	return ""
}

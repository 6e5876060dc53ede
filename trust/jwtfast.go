package trust

import (
	"encoding/json"
	"strconv"
)

// The invocation token is parsed once per invocation, on the hot path, and
// encoding/json spends more there than everything else in ParseJWT but the
// signature check. decodeInvocationClaims reads the form every signer writes
// (latticed's, and wascap's) without reflection. It accepts only a strict
// subset of JSON: exact lower-case keys, each at most once; strings of
// printable ASCII without escapes; unsigned integers without leading zeros.
// Anything else returns false and the caller decodes with encoding/json, so
// the result is always what encoding/json would give (FuzzInvocationClaims
// checks that on every input the fast path accepts).

// encodeClaims is json.Marshal(c), written by hand for invocation claims
// whose strings need no escaping (TestEncodeClaimsMatchesMarshal).
func encodeClaims[T any](c *Claims[T]) ([]byte, error) {
	ic, ok := any(c).(*Claims[InvocationClaims])
	if !ok || !plainJSON(ic.ID) || !plainJSON(ic.Issuer) || !plainJSON(ic.Subject) ||
		(ic.Wascap != nil && (!plainJSON(ic.Wascap.TargetURL) || !plainJSON(ic.Wascap.OriginURL) || !plainJSON(ic.Wascap.Hash))) {
		return json.Marshal(c)
	}
	b := make([]byte, 0, 160+len(ic.ID)+len(ic.Issuer)+len(ic.Subject)+invocationWascapLen(ic.Wascap))
	b = append(b, '{')
	if ic.Expires != 0 {
		b = strconv.AppendInt(append(b, `"exp":`...), ic.Expires, 10)
		b = append(b, ',')
	}
	b = append(append(append(b, `"jti":"`...), ic.ID...), `","iat":`...)
	b = strconv.AppendInt(b, ic.IssuedAt, 10)
	b = append(append(append(b, `,"iss":"`...), ic.Issuer...), `","sub":"`...)
	b = append(append(b, ic.Subject...), '"')
	if ic.NotBefore != 0 {
		b = strconv.AppendInt(append(b, `,"nbf":`...), ic.NotBefore, 10)
	}
	if w := ic.Wascap; w != nil {
		b = append(append(append(b, `,"wascap":{"target_url":"`...), w.TargetURL...), `","origin_url":"`...)
		b = append(append(append(b, w.OriginURL...), `","hash":"`...), w.Hash...)
		b = append(b, `"}`...)
	}
	if ic.WascapRevision != 0 {
		b = strconv.AppendUint(append(b, `,"wascap_revision":`...), uint64(ic.WascapRevision), 10)
	}
	return append(b, '}'), nil
}

func invocationWascapLen(w *InvocationClaims) int {
	if w == nil {
		return 0
	}
	return len(w.TargetURL) + len(w.OriginURL) + len(w.Hash)
}

// plainJSON reports whether json.Marshal writes s unchanged between quotes:
// printable ASCII other than the quote, the backslash and the HTML
// characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decodeInvocationClaims fills c from the JSON object b, reporting false
// (with c in an unspecified state) when b is outside the fast subset.
func decodeInvocationClaims(b []byte, c *Claims[InvocationClaims]) bool {
	s := claimScanner{b: b}
	var seen uint16
	ok := s.object(func(key []byte) bool {
		var bit uint16
		var ok bool
		switch string(key) { // no allocation: the compiler compares in place
		case "exp":
			bit, ok = 1<<0, s.int64(&c.Expires)
		case "jti":
			bit, ok = 1<<1, s.str(&c.ID)
		case "iat":
			bit, ok = 1<<2, s.int64(&c.IssuedAt)
		case "iss":
			bit, ok = 1<<3, s.str(&c.Issuer)
		case "sub":
			bit, ok = 1<<4, s.str(&c.Subject)
		case "nbf":
			bit, ok = 1<<5, s.int64(&c.NotBefore)
		case "wascap_revision":
			var v int64
			bit, ok = 1<<6, s.int64(&v)
			if ok && v > 1<<32-1 {
				return false
			}
			c.WascapRevision = uint32(v)
		case "wascap":
			w := new(InvocationClaims)
			c.Wascap = w
			var wseen uint8
			bit, ok = 1<<7, s.object(func(key []byte) bool {
				var wbit uint8
				var ok bool
				switch string(key) {
				case "target_url":
					wbit, ok = 1<<0, s.str(&w.TargetURL)
				case "origin_url":
					wbit, ok = 1<<1, s.str(&w.OriginURL)
				case "hash":
					wbit, ok = 1<<2, s.str(&w.Hash)
				default:
					return false
				}
				if wseen&wbit != 0 {
					return false
				}
				wseen |= wbit
				return ok
			})
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
	if !ok {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

// claimScanner walks the fast subset of JSON; every method reports false on
// anything outside it.
type claimScanner struct {
	b []byte
	i int
}

func (s *claimScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *claimScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}; member reads each value.
func (s *claimScanner) object(member func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.raw()
		if !ok || !s.byte(':') || !member(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// raw reads a string of printable ASCII without escapes and returns its bytes.
func (s *claimScanner) raw() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *claimScanner) str(dst *string) bool {
	v, ok := s.raw()
	*dst = string(v)
	return ok
}

// int64 reads a non-negative integer of at most 18 digits (no sign, no
// fraction or exponent, no leading zero), which always fits.
func (s *claimScanner) int64(dst *int64) bool {
	s.space()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	digits := s.b[start:s.i]
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] { // a number must end here, not run on as 1.5 or 1e3
		case '.', 'e', 'E', '-', '+':
			return false
		}
	}
	var v int64
	for _, d := range digits {
		v = v*10 + int64(d-'0')
	}
	*dst = v
	return true
}

package lattice

import (
	"strings"
	"testing"
)

// One subscription to RPCLinkdefPutOrDel receives both kinds of link
// change, and IsLinkdefPut tells them apart; other subjects under a
// provider's linkdefs are neither.
func TestLinkdefPutOrDelCoversPutAndDel(t *testing.T) {
	const prefix, key, link = "default", "VPROVIDER", "default"
	wild := RPCLinkdefPutOrDel(prefix, "*", "*")
	for _, tc := range []struct {
		subject string
		put, ok bool
	}{
		{RPCLinkdefPut(prefix, key, link), true, true},
		{RPCLinkdefDel(prefix, key, link), false, true},
		{RPCProvider(prefix, key, link) + ".linkdefs.get", false, false},
		{RPCHealth(prefix, key, link), false, false},
	} {
		put, ok := IsLinkdefPut(tc.subject)
		if put != tc.put || ok != tc.ok {
			t.Errorf("IsLinkdefPut(%q) = %v, %v; want %v, %v", tc.subject, put, ok, tc.put, tc.ok)
		}
		if tc.ok && !subjectMatchesFilter(wild, tc.subject) {
			t.Errorf("%q does not match %q", tc.subject, wild)
		}
	}
}

// subjectMatchesFilter is NATS subject matching for '*' (no '>').
func subjectMatchesFilter(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	if len(f) != len(s) {
		return false
	}
	for i := range f {
		if f[i] != "*" && f[i] != s[i] {
			return false
		}
	}
	return true
}

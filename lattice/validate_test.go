package lattice

import (
	"errors"
	"testing"
)

func TestControlInputRules(t *testing.T) {
	cases := []struct {
		name string
		err  error
		ok   bool
	}{
		{"link name default", ValidateLinkName("default"), true},
		{"link name with dash and digits", ValidateLinkName("web-2"), true},
		{"link name empty", ValidateLinkName(""), false},
		{"link name x.>", ValidateLinkName("x.>"), false},
		{"link name a.b*>", ValidateLinkName("a.b*>"), false},
		{"link name *", ValidateLinkName("*"), false},
		{"link name with a space", ValidateLinkName("my link"), false},
		{"link name with a tab", ValidateLinkName("a\tb"), false},
		{"link name too long", ValidateLinkName(string(make([]byte, 129))), false},
		{"label key hostcore.os", ValidateLabelKey("hostcore.os"), true},
		{"label key app.kubernetes.io/name", ValidateLabelKey("app.kubernetes.io/name"), true},
		{"label key x.>", ValidateLabelKey("x.>"), false},
		{"label key a.b*>", ValidateLabelKey("a.b*>"), false},
		{"label key a..b", ValidateLabelKey("a..b"), false},
		{"label key .a", ValidateLabelKey(".a"), false},
		{"label key empty", ValidateLabelKey(""), false},
		{"label key non-ASCII", ValidateLabelKey("zoné"), false},
		{"label put new key", ValidateLabelPut(map[string]string{"zone": "eu"}, "region"), true},
		{"label put same key", ValidateLabelPut(map[string]string{"zone": "eu"}, "zone"), true},
		{"label put case twin", ValidateLabelPut(map[string]string{"zone": "eu"}, "Zone"), false},
		{"values distinct", ValidateValues(map[string]string{"port": "1", "address": "x"}), true},
		{"values case twins", ValidateValues(map[string]string{"PORT": "1", "port": "2"}), false},
		{"values empty key", ValidateValues(map[string]string{" ": "1"}), false},
		{"values nil", ValidateValues(nil), true},
		{"count 0", ValidateCount(0), true},
		{"count 3", ValidateCount(3), true},
		{"count -5", ValidateCount(-5), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ok != (tc.err == nil) || tc.err != nil && !errors.Is(tc.err, ErrInvalidRequest) {
				t.Fatalf("err %v, want ok=%v (refusals wrap ErrInvalidRequest)", tc.err, tc.ok)
			}
		})
	}
}

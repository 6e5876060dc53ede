package provider

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// repeated finds how many link definitions at the head of the next
// session's channel repeat the end of the retired session's: the ones both
// connections received while they overlapped.
func TestRepeatedFindsTheOverlap(t *testing.T) {
	msgs := func(s string) []*nats.Msg { // "p1 d1 p2": put/del with a value
		var out []*nats.Msg
		for _, f := range strings.Fields(s) {
			subj := "x.linkdefs.put"
			if f[0] == 'd' {
				subj = "x.linkdefs.del"
			}
			out = append(out, &nats.Msg{Subject: subj, Data: []byte(f[1:])})
		}
		return out
	}
	for _, tc := range []struct {
		tail, head string
		want       int
	}{
		{"", "", 0},
		{"p1 p2", "", 0},
		{"", "p1 p2", 0},
		{"p1 p2 p3", "p2 p3 p4", 2},          // overlap of two
		{"p1 p2 p3", "p4 p5", 0},             // next subscribed after the last one
		{"p1 p2 p3", "p1 p2 p3 p4", 3},       // everything was received twice
		{"p1 d1 p1", "d1 p1 p2", 2},          // a del and a put again
		{"p1 d1", "p1 d1 p1", 2},             // all of tail, then a new put
		{"p1 d1", "d2 p1", 0},                // the del's value differs
		{"p1 p2", "p2 p2", 1},                // a repeat of the same put
		{"d1 p1", "p1 d1", 1},                // the same value put, then deleted
		{"p1 p2 p1 p2", "p1 p2 p1 p2 p3", 4}, // the longest run wins
		{"p1 d1", "p1", 0},                   // the same value, put not deleted
	} {
		if got := repeated(msgs(tc.tail), msgs(tc.head)); got != tc.want {
			t.Errorf("repeated(%q, %q) = %d, want %d", tc.tail, tc.head, got, tc.want)
		}
	}
}

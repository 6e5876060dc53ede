package httpserver

import (
	"net/http"
	"strings"
	"testing"
)

// The header conversions written to allocate less must give what the plain
// definitions give: actors see the same request header, clients the same
// response header.

func FuzzHeaders(f *testing.F) {
	f.Add("User-Agent", "Go-http-client/1.1", "Accept-Encoding", "gzip", "example.com", true)
	f.Add("X-Custom", "a", "x-custom", "b", "", false)
	f.Add("Content-Type", "", "Content-Length", "12", "h:1", true)
	f.Add("Ünï", "v", "TRANSFER-encoding", "chunked", "host", false)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, host string, twoValues bool) {
		in := http.Header{k1: {v1}, k2: {v2}}
		if twoValues {
			in[k2] = append(in[k2], v1)
		}
		in["Empty"] = []string{}
		checkRequestHeader(t, &http.Request{Header: in, Host: host})
		checkResponseHeader(t, map[string][]string{k1: {v1}, k2: {v2, v1}, strings.ToLower(k1): {v2}, "x-none": {}})
	})
}

func TestHeaders(t *testing.T) {
	checkRequestHeader(t, &http.Request{Host: "example.com", Header: http.Header{
		"User-Agent": {"curl"}, "Accept": {"*/*"}, "X-Two": {"a", "b"}, "x-two": {"c"}, "Empty": {},
	}})
	checkResponseHeader(t, map[string][]string{
		"content-type": {"text/plain"}, "set-cookie": {"a=1", "b=2"}, "Set-Cookie": {"c=3"},
		"connection": {"close"}, "content-length": {"1"}, "x-none": {}, "x-nil": nil,
	})
}

func checkRequestHeader(t *testing.T, r *http.Request) {
	t.Helper()
	want := make(map[string][]string, len(r.Header)+1)
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		want[lk] = append(want[lk], vs...)
	}
	if r.Host != "" {
		want["host"] = []string{r.Host}
	}
	got := requestHeader(r)
	if len(got) != len(want) {
		t.Fatalf("requestHeader(%v) = %v, want %v", r.Header, got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		// Values may come in either order when two names share a
		// lower-case form (map order); nil and empty must not be confused.
		if !ok || (g == nil) != (w == nil) || !sameValues(g, w) {
			t.Fatalf("requestHeader(%v)[%q] = %#v, want %#v", r.Header, k, g, w)
		}
	}
}

func checkResponseHeader(t *testing.T, from map[string][]string) {
	t.Helper()
	want := http.Header{}
	for k, vs := range from {
		if hopByHop(http.CanonicalHeaderKey(k)) {
			continue
		}
		for _, v := range vs {
			want.Add(k, v)
		}
	}
	got := http.Header{}
	copyResponseHeader(got, from)
	if len(got) != len(want) {
		t.Fatalf("copyResponseHeader(%v) = %v, want %v", from, got, want)
	}
	for k, w := range want {
		if !sameValues(got[k], w) {
			t.Fatalf("copyResponseHeader(%v)[%q] = %v, want %v", from, k, got[k], w)
		}
	}
}

// sameValues compares as multisets: a map's order decides which of two
// spellings of a name comes first, in the old code and the new alike.
func sameValues(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, v := range a {
		count[v]++
	}
	for _, v := range b {
		count[v]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

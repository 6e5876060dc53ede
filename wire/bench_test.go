package wire

import "testing"

// The HTTP request and response as a Go actor's guest reads and writes
// them for the GET of make bench's HTTP rows. Natively these say how many
// allocations each makes (-benchmem); inside a wasm guest every allocation
// and call costs several times more (BenchmarkGuestSteps in
// internal/wasmstop times them there).
var (
	benchReq = (&HTTPRequest{Method: "GET", Path: "/bench", QueryString: "x=1",
		Header: map[string][]string{"host": {"127.0.0.1:8080"}, "user-agent": {"Go-http-client/1.1"}}}).Encode()
	benchResp = HTTPResponse{StatusCode: 200, Header: map[string][]string{"Content-Type": {"application/json"}},
		Body: []byte(`{"method":"GET","path":"/bench","query_string":"x=1","body":""}`)}
)

func BenchmarkDecodeHTTPRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeHTTPRequest(benchReq); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHTTPResponseEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = benchResp.Encode()
	}
}

func BenchmarkDecodeHTTPRequestNoCopy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeHTTPRequestNoCopy(benchReq); err != nil {
			b.Fatal(err)
		}
	}
}

// Command echo is the wasmCloud echo sample as a plain-Go actor: it answers
// HTTP requests with a JSON description of the request, and Echo.Echo with
// its own payload (the trivial actor the benchmarks call).
//
// Build (in actor/, the SDK module): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm ./examples/echo
package main

import (
	"unsafe"

	"github.com/latticed/latticed/actor"
	"github.com/latticed/latticed/wire"
)

// echoBody is the reply body, with the wasmCloud sample's field names.
type echoBody struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	QueryString string `json:"query_string"`
	Body        string `json:"body"`
}

// jsonHeader is every reply's header. The SDK only reads a reply's header
// (to encode it), so one map serves every call instead of a map and a
// slice built per request.
var jsonHeader = map[string][]string{"Content-Type": {"application/json"}}

func init() {
	actor.HandleHTTP(func(req wire.HTTPRequest) (wire.HTTPResponse, error) {
		b := echoBody{Method: req.Method, Path: req.Path, QueryString: req.QueryString,
			Body: unsafe.String(unsafe.SliceData(req.Body), len(req.Body))} // read only: no copy of the body
		// Room for the escapes of a text body; a binary one grows once.
		size := len(req.Body) + len(req.Path) + len(req.QueryString) + len(req.Method) + 128
		body := appendEchoJSON(make([]byte, 0, size+size/8), &b)
		return wire.HTTPResponse{
			StatusCode: 200,
			Header:     jsonHeader,
			Body:       body,
		}, nil
	})
	actor.Handle("Echo.Echo", func(payload []byte) ([]byte, error) {
		return payload, nil
	})
}

// main is not run in a reactor module; the handlers above are registered by
// init during _initialize.
func main() {}

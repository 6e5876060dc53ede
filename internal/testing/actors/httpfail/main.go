// Command httpfail is an HTTP actor that fails on request, for the HTTP
// server provider's tests:
//
//   - /error returns a guest error (the SDK's error path);
//   - /panic panics in the handler (recovered by the SDK: a guest error);
//   - /fault reads far beyond linear memory: a genuine wasm trap;
//   - /sleep?ms=N sleeps N milliseconds, then answers 200;
//   - /status?code=N answers with status N (the SDK sends 0 as 200);
//   - anything else answers 200 "ok".
package main

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/latticed/latticed/actor"
	"github.com/latticed/latticed/wire"
)

var anchor byte

func query(q, name string) int {
	for _, kv := range strings.Split(q, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func init() {
	actor.HandleHTTP(func(req wire.HTTPRequest) (wire.HTTPResponse, error) {
		switch req.Path {
		case "/error":
			return wire.HTTPResponse{}, errors.New("the actor refused")
		case "/panic":
			panic("boom")
		case "/fault":
			p := (*byte)(unsafe.Add(unsafe.Pointer(&anchor), 3<<30))
			return wire.HTTPResponse{Body: []byte{*p}}, nil
		case "/sleep":
			time.Sleep(time.Duration(query(req.QueryString, "ms")) * time.Millisecond)
		case "/status":
			return wire.HTTPResponse{StatusCode: uint16(query(req.QueryString, "code")), Body: []byte("status")}, nil
		}
		return wire.HTTPResponse{StatusCode: 200, Body: []byte("ok")}, nil
	})
}

func main() {}

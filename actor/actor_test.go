package actor

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/latticed/latticed/wire"
)

// fakeHost replaces the ABI's outbound half for one test.
func fakeHost(t *testing.T, fn func(binding, namespace, operation string, payload []byte) ([]byte, error)) {
	t.Helper()
	saved := hostCall
	hostCall = fn
	t.Cleanup(func() { hostCall = saved })
}

// handled registers fn under a name unique to the test; the registry is
// process-wide and refuses duplicates.
func handled(t *testing.T, fn HandlerFunc) string {
	t.Helper()
	op := "Test." + t.Name()
	Handle(op, fn)
	t.Cleanup(func() {
		registry.Lock()
		delete(registry.handlers, op)
		registry.Unlock()
	})
	return op
}

func TestDispatchRunsTheRegisteredHandler(t *testing.T) {
	op := handled(t, func(p []byte) ([]byte, error) { return append([]byte("re: "), p...), nil })
	got, err := dispatch([]byte(op), []byte("hi"))
	if err != nil || string(got) != "re: hi" {
		t.Fatalf("dispatch = %q, %v; want %q, nil", got, err, "re: hi")
	}
}

func TestDispatchErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler HandlerFunc
		op      string // when set, dispatched instead of the registered name
		want    string
	}{
		{name: "unknown operation", op: "No.Such", want: "unsupported operation: No.Such"},
		{name: "empty operation", op: "", want: "unsupported operation: "},
		{
			name:    "handler error passes through",
			handler: func([]byte) ([]byte, error) { return nil, errors.New("nope") },
			want:    "nope",
		},
		{
			name:    "panic becomes an error",
			handler: func([]byte) ([]byte, error) { panic("boom") },
			want:    "panic in handler for Test.TestDispatchErrors/panic_becomes_an_error: boom",
		},
		{
			name: "runtime error becomes an error",
			handler: func([]byte) ([]byte, error) {
				var m map[string]int
				m["x"] = 1
				return nil, nil
			},
			want: "assignment to entry in nil map",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := tc.op
			if tc.handler != nil {
				op = handled(t, tc.handler)
			}
			got, err := dispatch([]byte(op), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("dispatch = %q, %v; want error containing %q", got, err, tc.want)
			}
			if got != nil {
				t.Fatalf("reply %q alongside an error", got)
			}
		})
	}
}

func TestHandleRefusesProgrammingErrors(t *testing.T) {
	op := handled(t, func([]byte) ([]byte, error) { return nil, nil })
	for _, tc := range []struct {
		name string
		op   string
		fn   HandlerFunc
	}{
		{"duplicate", op, func([]byte) ([]byte, error) { return nil, nil }},
		{"empty operation", "", func([]byte) ([]byte, error) { return nil, nil }},
		{"nil handler", "Test.Nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Handle did not panic")
				}
			}()
			Handle(tc.op, tc.fn)
		})
	}
}

func TestHostCallOutsideWasmFails(t *testing.T) {
	_, err := HostCall("default", wire.ContractKeyValue, wire.OpKVGet, nil)
	if !errors.Is(err, ErrNotInActor) {
		t.Fatalf("HostCall = %v; want ErrNotInActor", err)
	}
}

func TestKVIncrementEncodesAMapAndDecodesAnInteger(t *testing.T) {
	fakeHost(t, func(binding, namespace, operation string, payload []byte) ([]byte, error) {
		if binding != "store" || namespace != "wasmcloud:keyvalue" || operation != "KeyValue.Increment" {
			t.Errorf("call %s %s %s", binding, namespace, operation)
		}
		arg, err := wire.DecodeKVIncrementRequest(payload)
		if err != nil || *arg != (wire.KVIncrementRequest{Key: "hits", Value: 5}) {
			t.Errorf("argument %+v (%v); want map {key: hits, value: 5}", arg, err)
		}
		return []byte{0xcc, 42}, nil // a provider may use any integer width
	})
	n, err := KVIncrement("store", "hits", 5)
	if err != nil || n != 42 {
		t.Fatalf("KVIncrement = %d, %v; want 42, nil", n, err)
	}
}

func TestKVGetSendsABareString(t *testing.T) {
	fakeHost(t, func(_, _, operation string, payload []byte) ([]byte, error) {
		key, err := wire.NewReader(payload).Str()
		if err != nil || key != "k" || operation != "KeyValue.Get" {
			t.Errorf("%s argument %q (%v); want bare string k", operation, key, err)
		}
		return (&wire.KVGetResponse{Value: "v", Exists: true}).Encode(), nil
	})
	v, ok, err := KVGet("default", "k")
	if err != nil || v != "v" || !ok {
		t.Fatalf("KVGet = %q, %v, %v", v, ok, err)
	}
}

func TestKVSetIgnoresAnEmptyReply(t *testing.T) {
	var got wire.KVSetRequest
	fakeHost(t, func(_, _, _ string, payload []byte) ([]byte, error) {
		arg, err := wire.DecodeKVSetRequest(payload)
		if err == nil {
			got = *arg
		}
		return nil, err
	})
	if err := KVSet("default", "k", "v", 60); err != nil {
		t.Fatal(err)
	}
	if got != (wire.KVSetRequest{Key: "k", Value: "v", Expires: 60}) {
		t.Fatalf("sent %+v", got)
	}
}

func TestHostErrorsReachTheCaller(t *testing.T) {
	want := &HostError{Binding: "default", Namespace: "wasmcloud:keyvalue", Operation: "KeyValue.Increment", Message: "missing link definition"}
	fakeHost(t, func(string, string, string, []byte) ([]byte, error) { return nil, want })
	_, err := KVIncrement("default", "k", 1)
	var got *HostError
	if !errors.As(err, &got) || got.Message != "missing link definition" {
		t.Fatalf("KVIncrement error = %v; want the host's *HostError", err)
	}
	if !strings.Contains(err.Error(), "missing link definition") {
		t.Fatalf("error text %q hides the host's message", err)
	}
}

func TestBuiltinsUseTheDefaultLink(t *testing.T) {
	var calls []string
	fakeHost(t, func(binding, namespace, operation string, payload []byte) ([]byte, error) {
		calls = append(calls, binding+" "+namespace+" "+operation)
		switch operation {
		case wire.OpNumGenGUID:
			if len(payload) != 0 {
				t.Errorf("GenerateGuid payload %q; want empty", payload)
			}
			w := wire.NewWriter(0)
			w.Str("f47ac10b-58cc-4372-a567-0e02b2c3d479")
			return w.Bytes(), nil
		case wire.OpLogWrite:
			e, err := wire.DecodeLogEntry(payload)
			if err != nil || *e != (wire.LogEntry{Level: "warn", Text: "careful"}) {
				t.Errorf("log entry %+v (%v)", e, err)
			}
		}
		return nil, nil
	})
	if err := Log("warn", "careful"); err != nil {
		t.Fatal(err)
	}
	guid, err := GenerateGUID()
	if err != nil || guid != "f47ac10b-58cc-4372-a567-0e02b2c3d479" {
		t.Fatalf("GenerateGUID = %q, %v", guid, err)
	}
	if _, err := CallActor("MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW", "Echo.Echo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"default wasmcloud:builtin:logging Logging.WriteLog",
		"default wasmcloud:builtin:numbergen NumberGen.GenerateGuid",
		"default MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW Echo.Echo",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestHandleHTTPFillsWasmCloudDefaults(t *testing.T) {
	var seen wire.HTTPRequest
	HandleHTTP(func(req wire.HTTPRequest) (wire.HTTPResponse, error) {
		seen = req
		return wire.HTTPResponse{}, nil
	})
	t.Cleanup(func() {
		registry.Lock()
		delete(registry.handlers, wire.OpHTTPHandleRequest)
		registry.Unlock()
	})
	req := wire.HTTPRequest{Method: "POST", Path: "/p", QueryString: "a=1", Header: map[string][]string{"X": {"y"}}, Body: []byte("b")}
	reply, err := dispatch([]byte(wire.OpHTTPHandleRequest), req.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if seen.Method != "POST" || seen.Path != "/p" || seen.QueryString != "a=1" || string(seen.Body) != "b" || seen.Header["X"][0] != "y" {
		t.Fatalf("handler saw %+v", seen)
	}
	// The wire shape, not Go's zero values: status 200 as a uint16, an
	// empty header map and an empty bin, never nil.
	want := "83" + "aa737461747573436f6465" + "cd00c8" + "a6686561646572" + "80" + "a4626f6479" + "c400"
	if got := hex.EncodeToString(reply); got != want {
		t.Errorf("reply %s; want %s", got, want)
	}
	if _, err := dispatch([]byte(wire.OpHTTPHandleRequest), []byte{0xc1}); err == nil || !strings.Contains(err.Error(), "decode HttpRequest") {
		t.Errorf("malformed request: %v; want a decode error", err)
	}
}

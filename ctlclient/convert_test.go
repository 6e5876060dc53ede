package ctlclient

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJSONToMsgpack(t *testing.T) {
	tests := []struct {
		name, json, want string // want is hex
	}{
		{"null", `null`, "c0"},
		{"true", `true`, "c3"},
		{"false", ` false `, "c2"},
		{"small int", `5`, "05"},
		{"negative int", `-1`, "ff"},
		{"int8", `-100`, "d0 9c"},
		{"uint8", `200`, "cc c8"},
		{"uint16", `65535`, "cd ffff"},
		{"int64 min", `-9223372036854775808`, "d3 8000000000000000"},
		{"uint64 max", `18446744073709551615`, "cf ffffffffffffffff"},
		{"beyond uint64 is a float", `18446744073709551616`, "cb 43f0000000000000"},
		{"float", `2.5`, "cb 4004000000000000"},
		{"integral float stays float", `1.0`, "cb 3ff0000000000000"},
		{"exponent is a float", `1e3`, "cb 408f400000000000"},
		{"string", `"hi"`, "a2 6869"},
		{"empty string", `""`, "a0"},
		{"unicode string", `"é"`, "a2 c3a9"},
		{"array", `[1, "a", null]`, "93 01 a161 c0"},
		{"empty object", `{}`, "80"},
		{"object keys sorted", `{"b": 1, "a": 2}`, "82 a161 02 a162 01"},
		{"nested", `{"x": {"y": [true]}}`, "81 a178 81 a179 91 c3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JSONToMsgpack([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("got % x, want % x", got, want)
			}
		})
	}
}

func TestJSONToMsgpackHTTPRequest(t *testing.T) {
	// The payload `ctl call … HttpServer.HandleRequest` sends decodes into the
	// contract type an actor uses, including "" into a []byte body.
	got, err := JSONToMsgpack([]byte(`{"method":"GET","path":"/hi","queryString":"a=1","header":{"Accept":["*/*"]},"body":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Method      string              `msgpack:"method"`
		Path        string              `msgpack:"path"`
		QueryString string              `msgpack:"queryString"`
		Header      map[string][]string `msgpack:"header"`
		Body        []byte              `msgpack:"body"`
		Port        uint16              `msgpack:"port"`
	}
	if err := msgpack.Unmarshal(got, &req); err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.Path != "/hi" || req.QueryString != "a=1" || req.Header["Accept"][0] != "*/*" || string(req.Body) != "x" {
		t.Fatalf("decoded %+v", req)
	}
}

func TestJSONToMsgpackErrors(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"empty", ``, "no value"},
		{"blank", `   `, "no value"},
		{"syntax", `{"a":`, "invalid JSON"},
		{"bare word", `hello`, "invalid JSON"},
		{"two values", `1 2`, "more than one value"},
		{"trailing garbage", `{} x`, "invalid JSON"},
		{"too deep", strings.Repeat("[", 200) + strings.Repeat("]", 200), "deeper"},
		{"float overflow", `1e400`, "does not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := JSONToMsgpack([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestMsgpackToJSON(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty is null", nil, `null`},
		{"nil", unhex(t, "c0"), `null`},
		{"bools", mp(t, []bool{true, false}), `[true,false]`},
		{"fixint", unhex(t, "07"), `7`},
		{"negative fixint", unhex(t, "e0"), `-32`},
		{"uint64 max", unhex(t, "cf ffffffffffffffff"), `18446744073709551615`},
		{"int64 min", unhex(t, "d3 8000000000000000"), `-9223372036854775808`},
		{"uint8 wide form", unhex(t, "cc 05"), `5`},
		{"float64", mp(t, 2.5), `2.5`},
		{"float32 keeps its digits", mp(t, float32(0.1)), `0.1`},
		{"NaN", mp(t, math.NaN()), `"NaN"`},
		{"+Inf", mp(t, math.Inf(1)), `"+Inf"`},
		{"-Inf", mp(t, math.Inf(-1)), `"-Inf"`},
		{"str", mp(t, "hello"), `"hello"`},
		{"str is not HTML-escaped", mp(t, "<a&b>"), `"<a&b>"`},
		{"str with quotes and newline", mp(t, "a\"b\n"), `"a\"b\n"`},
		{"bin UTF-8 is text", mp(t, []byte(`{"path":"/hi"}`)), `"{\"path\":\"/hi\"}"`},
		{"bin unicode is text", mp(t, []byte("héllo")), `"héllo"`},
		{"empty bin", mp(t, []byte{}), `""`},
		{"bin invalid UTF-8 is base64", mp(t, []byte{0xff, 0xfe, 0x00, 0x01}), `"//4AAQ=="`},
		{"str invalid UTF-8 is base64", unhex(t, "a2 ff fe"), `"//4="`},
		{"array", mp(t, []any{1, "a", nil}), `[1,"a",null]`},
		{"map keeps wire order", unhex(t, "82 a162 01 a161 02"), `{"b":1,"a":2}`},
		{"bin key", unhex(t, "81 c4 01 6b 01"), `{"k":1}`},
		{"int key", unhex(t, "81 01 a178"), `{"1":"x"}`},
		{"array key", unhex(t, "81 92 01 02 c0"), `{"[1,2]":null}`},
		{"HTTP response", mp(t, map[string]any{"statusCode": 200}), `{"statusCode":200}`},
		{"timestamp", mp(t, ts), `"2026-01-02T03:04:05.0000006Z"`},
		{"ext", unhex(t, "d5 05 0102"), `{"ext_type":5,"data":"AQI="}`},
		{"ext8", unhex(t, "c7 03 7f 010203"), `{"ext_type":127,"data":"AQID"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MsgpackToJSON(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMsgpackToJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"trailing bytes", []byte("ping"), "follow the first value"},
		{"truncated str", unhex(t, "a5 6865"), "not msgpack"},
		{"truncated map", unhex(t, "82 a161 01"), "not msgpack"},
		{"reserved code", unhex(t, "c1"), "not msgpack"},
		{"ext longer than input", unhex(t, "c9 ffffffff 01"), "not msgpack"},
		{"too deep", bytes.Repeat([]byte{0x91}, 200), "deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MsgpackToJSON(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, js := range []string{
		`null`, `[1,-2,3.25,"x",true,false,null]`, `{"a":{"b":[{"c":"d"}]},"e":18446744073709551615}`, `"\u0001<>"`,
	} {
		b, err := JSONToMsgpack([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		back, err := MsgpackToJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		if string(back) != js {
			t.Errorf("%s came back as %s", js, back)
		}
	}
}

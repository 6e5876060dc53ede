package main

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/latticed/latticed/internal/config"
)

// TestLogFormatHonoursStructuredLogging: WASMCLOUD_STRUCTURED_LOGGING_ENABLED,
// when given, decides the format whatever stderr is; unset, a pipe or a
// buffer (a collector) gets JSON.
func TestLogFormatHonoursStructuredLogging(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantJSON bool
	}{
		{"unset", nil, true},
		{"false", map[string]string{config.EnvStructuredLogging: "false"}, false},
		{"true", map[string]string{config.EnvStructuredLogging: "true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{config.EnvDataDir: t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, _, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range []io.Writer{w, &bytes.Buffer{}} {
				if got := jsonLogs(cfg, out); got != tc.wantJSON {
					t.Errorf("%T: JSON %v, want %v", out, got, tc.wantJSON)
				}
			}
		})
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/config"
)

// A tracing exporter latticed does not have is a usage error at start, for
// the node and for a host alone, not a child failing over and over.
func TestCLITracingSetting(t *testing.T) {
	t.Setenv(config.EnvOTelTracesExporter, "zipkin")
	e := newCLIEnv(t)
	for _, args := range [][]string{{"up"}, {"host"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := e.run(args...)
			r.want(t, 2)
			if !strings.Contains(r.stderr, config.EnvOTelTracesExporter) || !strings.Contains(r.stderr, `"zipkin"`) {
				t.Errorf("stderr %q does not name %s=\"zipkin\"", r.stderr, config.EnvOTelTracesExporter)
			}
		})
	}
}

package telemetry

import (
	"context"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/config"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestCheckEnv(t *testing.T) {
	for _, tc := range []struct {
		value   string
		set     bool
		on      bool
		wantErr bool
	}{
		{"", false, false, false},
		{"none", true, false, false},
		{"otlp", true, true, false},
		{"OTLP", true, true, false},
		{"otlp,none", true, true, false},
		{"jaeger", true, false, true},
		{"console", true, false, true},
	} {
		vars := map[string]string{}
		if tc.set {
			vars[config.EnvOTelTracesExporter] = tc.value
		}
		on, err := exporterWanted(env(vars))
		if on != tc.on || (err != nil) != tc.wantErr {
			t.Errorf("%s=%q: on %v, err %v; want on %v, error %v", config.EnvOTelTracesExporter, tc.value, on, err, tc.on, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), config.EnvOTelTracesExporter) {
			t.Errorf("error %q does not name the setting", err)
		}
		if got := CheckEnv(env(vars)); (got != nil) != tc.wantErr {
			t.Errorf("CheckEnv(%q) = %v", tc.value, got)
		}
	}
}

// Off by default: Setup without the setting turns nothing on (the hooks on
// the invocation path are rpc's; their cost while off is tested there).
func TestOffByDefault(t *testing.T) {
	shutdown, err := Setup(context.Background(), env(nil), ServiceHost, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if Enabled() {
		t.Fatal("tracing on without OTEL_TRACES_EXPORTER")
	}
}

package config

import "strings"

// OpenTelemetry trace export. These are the OpenTelemetry SDK's standard
// variable names, not rows of the settings table: wasmCloud's hosts read them
// the same way (the OTP host ships with traces_exporter :none and turns OTLP
// export on with OTEL_TRACES_EXPORTER=otlp, forwarding that and
// OTEL_EXPORTER_OTLP_ENDPOINT to the providers it starts), and the OTLP
// exporter reads the endpoint, headers, timeout and TLS variables itself.
const (
	// EnvOTelTracesExporter switches tracing on: "otlp" exports spans over
	// OTLP/HTTP; unset or "none" (the default) means no tracing at all.
	EnvOTelTracesExporter = "OTEL_TRACES_EXPORTER"
	// EnvOTelEndpoint is the collector's base URL (default
	// http://localhost:4318; spans go to {endpoint}/v1/traces).
	EnvOTelEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
	// EnvOTelTracesEndpoint is the full URL for spans; it wins over EnvOTelEndpoint.
	EnvOTelTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"

	// TracesExporterOTLP and TracesExporterNone are the values of
	// EnvOTelTracesExporter latticed knows.
	TracesExporterOTLP = "otlp"
	TracesExporterNone = "none"

	// EnvOTelPrefix starts every OpenTelemetry SDK variable. The supervisor
	// passes these on to the host and to providers, so every process of a
	// node exports to the same collector.
	EnvOTelPrefix = "OTEL_"
)

// IsTelemetryEnv reports whether the environment variable name is an
// OpenTelemetry SDK setting (passed on to every child process).
func IsTelemetryEnv(name string) bool { return strings.HasPrefix(name, EnvOTelPrefix) }

// Package telemetry exports OpenTelemetry traces over OTLP/HTTP when the
// environment asks for it, and carries the trace context through invocations
// (their `traceContext` map, W3C traceparent/tracestate) so that one trace
// spans the httpserver provider, the host running the actor, and the
// providers the actor calls, across processes.
//
// Tracing is off unless OTEL_TRACES_EXPORTER=otlp (wasmCloud's convention:
// its host's exporter defaults to none). While it is off every function here
// returns at once, without allocating: the hot path pays an atomic load.
// Setup installs the SDK as OpenTelemetry's global tracer provider and
// propagator, which is where package rpc, on the OTel API only, finds it
// for the spans and trace context of invocations.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/latticed/latticed/internal/buildinfo"
	"github.com/latticed/latticed/internal/config"
)

// Service names, one per kind of process (kebab-case, as wasmCloud names its own).
const (
	ServiceHost       = "latticed-host"
	ServiceSupervisor = "latticed"
	// ServiceProviderPrefix + the built-in's name (httpserver, keyvalue).
	ServiceProviderPrefix = "latticed-"
)

// enabled says whether Setup turned tracing on. The spans themselves come from
// OpenTelemetry's global tracer provider (rpc.Tracer), which Setup installs.
var enabled atomic.Bool

// Enabled reports whether spans are being recorded and exported.
func Enabled() bool { return enabled.Load() }

// Setup turns tracing on when lookup (os.LookupEnv in a process) says
// OTEL_TRACES_EXPORTER=otlp, exporting spans of service (with instance, e.g.
// the host or provider key, as service.instance.id) over OTLP/HTTP to
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT +
// /v1/traces, else http://localhost:4318/v1/traces. Headers, timeout, TLS and
// sampling follow the other OTEL_* variables, read by the SDK. Without the
// setting it does nothing. shutdown flushes the spans not yet sent (bounded
// by ctx) and turns tracing off again.
func Setup(ctx context.Context, lookup func(string) (string, bool), service, instance string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	on, err := exporterWanted(lookup)
	if err != nil || !on {
		return noop, err
	}
	if log == nil {
		log = slog.Default()
	}
	var opts []otlptracehttp.Option
	endpoint := "http://localhost:4318/v1/traces"
	if u, ok := lookup(config.EnvOTelTracesEndpoint); ok && u != "" {
		endpoint = u
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	} else if u, ok := lookup(config.EnvOTelEndpoint); ok && u != "" {
		endpoint = strings.TrimSuffix(u, "/") + "/v1/traces"
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	}
	if _, err := url.Parse(endpoint); err != nil {
		return noop, fmt.Errorf("%s/%s: %w", config.EnvOTelTracesEndpoint, config.EnvOTelEndpoint, err)
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return noop, fmt.Errorf("OTLP trace exporter for %s: %w", endpoint, err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(service), semconv.ServiceVersion(buildinfo.Version)}
	if instance != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(instance))
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, attrs...))
	if err != nil {
		return noop, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("trace export", "err", err) }))
	enabled.Store(true)
	log.Info("tracing on: exporting spans over OTLP/HTTP", "endpoint", endpoint, "service", service)
	return func(ctx context.Context) error {
		enabled.Store(false)
		// rpc reads the globals: a no-op provider and propagator say off.
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
		}
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("flush spans to %s: %w", endpoint, err)
		}
		return nil
	}, nil
}

// exporterWanted reads OTEL_TRACES_EXPORTER (a comma list, as the spec
// allows): otlp turns tracing on; none, or nothing, leaves it off.
func exporterWanted(lookup func(string) (string, bool)) (bool, error) {
	v, _ := lookup(config.EnvOTelTracesExporter)
	on := false
	for _, e := range strings.Split(v, ",") {
		switch e = strings.ToLower(strings.TrimSpace(e)); e {
		case "", config.TracesExporterNone:
		case config.TracesExporterOTLP:
			on = true
		default:
			return false, fmt.Errorf("%s=%q: latticed exports traces with %q (OTLP over HTTP) or %q", config.EnvOTelTracesExporter, v, config.TracesExporterOTLP, config.TracesExporterNone)
		}
	}
	return on, nil
}

// CheckEnv reports a tracing setting latticed cannot honour (so `latticed up`
// refuses it at once instead of its children failing one by one).
func CheckEnv(lookup func(string) (string, bool)) error {
	_, err := exporterWanted(lookup)
	return err
}

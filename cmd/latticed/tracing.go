package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/latticed/latticed/internal/telemetry"
)

// startTracing turns on OpenTelemetry trace export when the environment asks
// for it (OTEL_TRACES_EXPORTER=otlp); stop flushes the spans not yet sent.
func startTracing(ctx context.Context, service string, log *slog.Logger) (stop func(), err error) {
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", service)
	}
	shutdown, err := telemetry.Setup(ctx, os.LookupEnv, service, "", log)
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("tracing: spans lost at exit", "err", err)
		}
	}, nil
}

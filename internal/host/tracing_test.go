package host

import (
	"context"
	"testing"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/internal/testing/otlptest"
)

// BenchmarkInvokeEchoTracing is one invocation at a time through the whole
// path (sign, NATS, issuer policy, wasm echo, reply) with tracing off, the
// default, and on (spans exported to a loopback OTLP/HTTP receiver): what a
// span per invocation costs, and that off costs nothing (compare allocs/op
// with BenchmarkInvokeEcho).
func BenchmarkInvokeEchoTracing(b *testing.B) {
	f := newFixture(b)
	call := benchEcho(b, f)
	ctx := context.Background()
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("off", run)
	b.Run("on", func(b *testing.B) {
		recv := otlptest.Start(b)
		shutdown, err := telemetry.Setup(ctx, func(k string) (string, bool) {
			v, ok := map[string]string{config.EnvOTelTracesExporter: config.TracesExporterOTLP, config.EnvOTelEndpoint: recv.Endpoint()}[k]
			return v, ok
		}, telemetry.ServiceHost, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = shutdown(ctx) }()
		run(b)
	})
}

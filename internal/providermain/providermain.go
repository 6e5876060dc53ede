// Package providermain runs a built-in provider as a process: the main
// function of the standalone provider executables (cmd/provider-*) and of
// `latticed provider <name>`. HostData on stdin, SIGTERM/SIGINT stop it;
// Run's exit status is 0 after a graceful shutdown, 1 on failure, 2 when
// stdin holds no HostData.
//
// The provider SDK counts through its small provider.Metrics interface and
// serves nothing, so that it needs no metrics library; this package wires
// what a provider process of latticed's has besides: the Prometheus
// registry (internal/metrics) behind that interface, served on a private
// loopback /metrics endpoint announced to the supervisor, which scrapes
// and merges it, and tracing (internal/telemetry).
package providermain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/latticed/latticed/internal/gcpolicy"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/telemetry"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
)

// Build returns a built-in capability that counts its own families (HTTP
// requests, key-value operations) on m.
type Build func(m *metrics.Metrics) provider.Capability

// Run serves the capability build returns until the host stops it and
// returns the exit status.
func Run(build Build) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := metrics.NewProvider()
	c := build(m)
	// Traces as `latticed provider <name>` does: service latticed-<name>.
	_, name, _ := strings.Cut(c.Contract(), ":")
	stopTracing, err := telemetry.Setup(ctx, os.LookupEnv, telemetry.ServiceProviderPrefix+name, "", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		return 2
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	err = serve(ctx, os.Stdin, os.Stderr, m, c)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, lattice.ErrHostData):
		fmt.Fprintf(os.Stderr, "%s: %v (a host starts providers and writes HostData on their stdin)\n", os.Args[0], err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
	return 1
}

// Serve reads HostData from stdin and runs the capability build returns as
// a provider, logging to logOutput, until a shutdown message for its host,
// SIGTERM/SIGINT or the end of ctx; a graceful end returns nil. Tracing is
// the caller's.
func Serve(ctx context.Context, stdin io.Reader, logOutput io.Writer, build Build) error {
	m := metrics.NewProvider()
	return serve(ctx, stdin, logOutput, m, build(m))
}

// serve runs c as the provider process with registry m.
func serve(ctx context.Context, stdin io.Reader, logOutput io.Writer, m *metrics.Metrics, c provider.Capability) error {
	hd, err := provider.ReadHostData(stdin)
	if err != nil {
		return err
	}
	p, err := provider.New(provider.Config{HostData: *hd, LogOutput: logOutput, Metrics: metrics.NewProviderCounts(m)}, c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Fewer collections of a small heap that allocates per request
	// (docs/operations.md, "Memory"); GOGC, when set, is the operator's.
	gcpolicy.Start(ctx, gcpolicy.ProviderHeadroom, os.LookupEnv)
	stopMetrics, err := serveMetrics(m, logOutput)
	if err != nil {
		return err
	}
	defer stopMetrics()
	return p.Run(ctx)
}

// metricsAddr is where a provider process serves its registry: loopback
// only, since only its supervisor reads it, on a port of the kernel's
// choosing, since several providers run on one node.
const metricsAddr = "127.0.0.1:0"

// serveMetrics serves m on /metrics at metricsAddr and announces the bound
// address on w, in one JSON line that the supervisor reads from the
// process's output whatever the log level (metrics.AnnounceKey). It returns
// how to stop serving.
func serveMetrics(m *metrics.Metrics, w io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("provider metrics listener on %s: %w", metricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends when stop closes srv
	line, _ := json.Marshal(map[string]string{
		"time": time.Now().Format(time.RFC3339Nano), "level": "INFO", "msg": "provider metrics listening",
		metrics.AnnounceKey: ln.Addr().String(),
	})
	_, _ = w.Write(append(line, '\n'))
	return func() { _ = srv.Close() }, nil
}

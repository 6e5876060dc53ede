package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/builtin/httpserver"
	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
	"github.com/latticed/latticed/wire"
)

// BenchmarkHTTP compares one HTTP request through the lattice (net/http
// client on loopback → this provider → NATS → host → echo actor → back)
// with the same request answered by a bare net/http handler. Both run in
// this process; req/s is the figure to compare.
func BenchmarkHTTP(b *testing.B) {
	b.Run("lattice", func(b *testing.B) {
		l := newLattice(b, testenv.NATS(b).ClientURL())
		echo := l.startActor(b, echoPkg, wire.ContractHTTPServer)
		// As many instances as the host's own BenchmarkInvokeEcho runs.
		l.ctlRequest(b, l.ctl.Cmd(l.host.ID(), lattice.CmdScaleActor), lattice.ScaleActorCommand{ActorID: echo.Key, Count: 2})
		// Steady state: a cold start begins interpreted, and the compile
		// would burn the measurement's CPU (the interpreter made this
		// benchmark 30 ms a request).
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := l.host.WaitCompiled(wctx, echo.Key)
		wcancel()
		if err != nil {
			b.Fatal(err)
		}
		base, values := port(b)
		ld := l.link(b, echo.Key, httpBuiltin, values)
		srv := httpserver.New(metrics.NewProvider())
		p, err := provider.New(provider.Config{HostData: l.hostData(httpBuiltin, ld),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, srv)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		b.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
		<-p.Ready()
		benchGet(b, base+"/bench?x=1")
	})
	b.Run("bare", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			out, _ := json.Marshal(map[string]string{"method": r.Method, "path": r.URL.Path, "query_string": r.URL.RawQuery, "body": string(body)})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(out)
		})}
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				b.Error(err)
			}
		}()
		b.Cleanup(func() { _ = hs.Close(); <-served })
		benchGet(b, "http://"+ln.Addr().String()+"/bench?x=1")
	})
}

func benchGet(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), `"path":"/bench"`)) {
			err = errors.New(resp.Status + " " + string(body))
		}
		return err
	}
	if err := get(); err != nil { // warm: instance, connections
		b.Fatal(err)
	}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

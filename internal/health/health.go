// Package health serves a latticed process's /metrics, /healthz and /readyz
// on one address: the supervisor's for the node, and the host child's,
// which the supervisor merges into its own (docs/operations.md).
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ReadyFunc reports nil when the node is ready to serve, or why it is not.
type ReadyFunc func() error

// Server serves /metrics, /healthz and /readyz on one address.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// New listens on addr now (so a port conflict fails start-up) and
// serves once Run is called.
func New(addr string, metrics http.Handler, ready ReadyFunc) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w (set LATTICED_METRICS_ADDR)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the bound address (useful when addr asked for port 0).
func (h *Server) Addr() string { return h.ln.Addr().String() }

// Run serves until ctx ends.
func (h *Server) Run(ctx context.Context, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(h.ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		log.Error("metrics server failed", "err", err)
		return err
	}
}

package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/latticed/latticed/internal/metrics"
)

// ReasonNotLinked is the reason label of invocations refused because their
// origin actor is not linked to the provider.
const ReasonNotLinked = "not_linked"

// serveMetrics serves the registry on a private loopback listener, when
// Config.MetricsAddr asks for one, and announces its address (one JSON line
// that the supervisor reads from the process's output). It returns how to
// stop serving (nil when disabled).
func (p *Provider) serveMetrics() (func(), error) {
	addr := p.cfg.MetricsAddr
	if addr == "" || addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("provider metrics listener on %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, errors.New("provider metrics listener: " + addr + " is not a loopback address (metrics are served privately to the supervisor)")
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", p.m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	w := p.cfg.MetricsAnnounce
	if w == nil {
		w = p.cfg.LogOutput
	}
	if w == nil {
		w = os.Stderr
	}
	announce(w, ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

func announce(w io.Writer, addr string) {
	line, _ := json.Marshal(map[string]string{
		"time": time.Now().Format(time.RFC3339Nano), "level": "INFO", "msg": "provider metrics listening", metrics.AnnounceKey: addr,
	})
	_, _ = w.Write(append(line, '\n'))
}

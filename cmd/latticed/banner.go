package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strings"

	"github.com/latticed/latticed/internal/builtin/httpserver"
	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/internal/progress"
	"github.com/latticed/latticed/internal/supervisor"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// place is one thing the banner says where to find.
type place struct{ name, url string }

// readyBanner says where the node's parts are once it is ready: each
// actor the manifest links to an HTTP server, the metrics and the web
// console. A person at a terminal gets a short block; logs get it as one
// line, "node serves" (the "node ready" line has the addresses too, among
// much else).
func readyBanner(ctx context.Context, sup *supervisor.Supervisor, m *manifest.Manifest, w io.Writer, terminal bool, log *slog.Logger) {
	select {
	case <-sup.Ready():
	case <-ctx.Done():
		return
	}
	places := append(httpPlaces(m), place{"metrics", sup.MetricsURL()})
	if u := sup.ConsoleURL(); u != "" {
		places = append(places, place{"console", u})
	}
	if terminal {
		fmt.Fprint(w, formatBanner(places))
		return
	}
	attrs := make([]any, 0, 2*len(places))
	var http []string
	for _, p := range places {
		switch p.name {
		case "metrics", "console":
			attrs = append(attrs, p.name, p.url)
		default:
			http = append(http, p.name+" "+p.url)
		}
	}
	log.Info("node serves", append(attrs, "http", strings.Join(http, ", "))...)
}

// formatBanner lines the places up, one a line, with a blank line around.
func formatBanner(places []place) string {
	width := 0
	for _, p := range places {
		width = max(width, len(p.name))
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, p := range places {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, p.name, p.url)
	}
	b.WriteString("\n")
	return b.String()
}

// httpPlaces are the URLs of the actors m links to an HTTP server, by
// the listen address the provider derives from the link's values.
func httpPlaces(m *manifest.Manifest) []place {
	if m == nil {
		return nil
	}
	var out []place
	for _, l := range m.Links {
		if l.Contract != wire.ContractHTTPServer {
			continue
		}
		s, err := httpserver.ParseSettings(l.Values)
		if err != nil {
			continue // the link was refused, and the log said why
		}
		host, port, err := net.SplitHostPort(s.Address)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1" // every interface: loopback is one of them
		}
		out = append(out, place{actorLabel(l.Actor), "http://" + net.JoinHostPort(host, port) + "/"})
	}
	return out
}

// actorLabel is the name in the claims of the actor module at ref, or the
// ref's last element when ref is no readable signed module.
func actorLabel(ref string) string {
	file := strings.TrimPrefix(ref, "file://")
	if b, err := os.ReadFile(file); err == nil {
		if c, err := trust.ReadActorClaims(b); err == nil && c.Wascap != nil && c.Wascap.Name != "" {
			return c.Wascap.Name
		}
	}
	return path.Base(ref)
}

// terminalStep shows what on a status line of w, counting the seconds up,
// until the returned stop is called: for a command that waits on a long
// step done elsewhere (a host fetching and compiling an actor). Nothing
// when w is not a terminal.
func terminalStep(ctx context.Context, w io.Writer, what string) (stop func()) {
	if !progress.IsTerminal(w) {
		return func() {}
	}
	line := progress.New(w)
	line.Start(what, what, 0)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); line.Run(ctx, statusInterval) }()
	return func() { cancel(); <-done }
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// bodySizes are the payload sizes of the bytes rows; 900 KiB is the largest
// body that fits one NATS message (1 MiB max payload) with the invocation
// around it.
var bodySizes = []int{1 << 10, 64 << 10, 256 << 10, 900 << 10}

// runBytes is -only bytes: MiB/s against body size through a real node
// (HTTP POST → httpserver provider → NATS → host child → pass-through actor
// and back) and, on the same NATS server in the same run, raw NATS
// request/reply of the same size to a Go responder.
func runBytes(o options) error {
	return onlyNodeSection(o, func(tmp, bin string, a *echoActors, rep *Report) error {
		return benchBytes(context.Background(), o, bin, tmp, a.echoPath, rep)
	})
}

// benchBytes starts a node, applies the pass-through actor and the Go echo
// behind one httpserver provider (one port each) and measures each body size.
func benchBytes(ctx context.Context, o options, bin, tmp, echoPath string, rep *Report) error {
	progress("building the pass-through actor")
	passPath := filepath.Join(tmp, "passthrough.wasm")
	if err := buildSigned(passthroughPkg, passPath, "passthrough"); err != nil {
		return err
	}
	progress("starting a node (supervisor + host child)")
	n, err := startNode(bin, filepath.Join(tmp, "bytes-node"))
	if err != nil {
		return err
	}
	defer n.stop()
	count := runtime.NumCPU() * 2
	passPort, echoPort := freePort(), freePort()
	m := &manifest.Manifest{
		Actors:    []manifest.Actor{{Ref: "file://" + passPath, Count: count}, {Ref: "file://" + echoPath, Count: count}},
		Providers: []manifest.Provider{{Ref: "builtin:httpserver", LinkName: "default"}},
		Links: []manifest.Link{
			{Actor: "file://" + passPath, Provider: "builtin:httpserver", Contract: wire.ContractHTTPServer, LinkName: "default", Values: map[string]string{"port": strconv.Itoa(passPort)}},
			{Actor: "file://" + echoPath, Provider: "builtin:httpserver", Contract: wire.ContractHTTPServer, LinkName: "default", Values: map[string]string{"port": strconv.Itoa(echoPort)}},
		},
	}
	if _, err := manifest.Apply(ctx, n.ctl, m, 2*time.Second, nil); err != nil {
		return err
	}
	if err := waitCompiled(n.cfg.MetricsAddr, 2); err != nil {
		return err
	}
	passURL := fmt.Sprintf("http://127.0.0.1:%d/bytes", passPort)
	echoURL := fmt.Sprintf("http://127.0.0.1:%d/bytes", echoPort)
	probe := []byte("probe")
	if err := waitFor(60*time.Second, func() error { return postCheck(probeClient, passURL, probe, true) }); err != nil {
		return fmt.Errorf("pass-through actor never answered: %w", err)
	}
	if err := waitFor(60*time.Second, func() error { return postCheck(probeClient, echoURL, probe, false) }); err != nil {
		return fmt.Errorf("echo actor never answered: %w", err)
	}
	responder, err := natsConnect(n)
	if err != nil {
		return err
	}
	defer responder.Close()

	const mib = 1 << 20
	conc := o.httpConc[0]
	for _, size := range bodySizes {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		label := sizeLabel(size)
		progress("bytes: %s bodies, c=%d", label, conc)

		raw, stop, err := rawPath(n.nc, responder, false)
		if err != nil {
			return err
		}
		rawRPS, _, rawErrs, _ := measure(raw, body, conc, o.dur, 5)
		stop()
		passRPS, passLat, passErrs := httpPostLoad(passURL, body, true, conc, o.dur)
		// The echo actor answers JSON with the body as a string: printable
		// bytes keep it a plain copy rather than a run of escapes.
		text := make([]byte, size)
		for i, b := range body {
			text[i] = 'a' + b%26
		}
		echoRPS, _, echoErrs := httpPostLoad(echoURL, text, false, conc, o.dur)
		if rawErrs > 0 {
			return fmt.Errorf("bytes %s: raw NATS request/reply: %d errors", label, rawErrs)
		}
		rawMiB := rawRPS * float64(size) / mib
		rep.Rows = append(rep.Rows,
			Row{Name: fmt.Sprintf("bytes c=%d %s: raw NATS request/reply", conc, label), Value: rawMiB, Unit: "MiB/s"},
			Row{Name: fmt.Sprintf("bytes c=%d %s: HTTP POST -> httpserver -> pass-through actor", conc, label), Value: passRPS * float64(size) / mib, Unit: "MiB/s",
				Ratio: passRPS / rawRPS, RatioTo: "raw NATS request/reply"},
			Row{Name: fmt.Sprintf("bytes c=%d %s: pass-through actor", conc, label), Value: passRPS, Unit: "req/s"},
			Row{Name: fmt.Sprintf("bytes c=%d %s p99: pass-through actor", conc, label), Value: float64(quantile(passLat, 0.99).Microseconds()), Unit: "µs"},
			// A request the provider gave up on (its timeout) is a figure,
			// not a failed run: the rows above count only answered ones.
			Row{Name: fmt.Sprintf("bytes c=%d %s: pass-through actor errors", conc, label), Value: float64(passErrs), Unit: "errors"},
			Row{Name: fmt.Sprintf("bytes c=%d %s: HTTP POST -> httpserver -> Go echo actor (JSON)", conc, label), Value: echoRPS * float64(size) / mib, Unit: "MiB/s",
				Ratio: echoRPS / rawRPS, RatioTo: "raw NATS request/reply"},
			// The echo's JSON costs more than the payload's trip; its
			// failures (timeouts) are a figure here, not a failed run.
			Row{Name: fmt.Sprintf("bytes c=%d %s: Go echo actor (JSON) errors", conc, label), Value: float64(echoErrs), Unit: "errors"})
	}
	return nil
}

// buildSigned builds the actor package pkg for wasip1 and signs it, with the
// httpserver capability, to out.
func buildSigned(pkg, out, name string) error {
	if err := buildActor(pkg, out); err != nil {
		return err
	}
	unsigned, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	acct, _ := trust.CreateKeyPair(lattice.KindAccount)
	mod, _ := trust.CreateKeyPair(lattice.KindModule)
	signed, _, err := trust.SignActor(unsigned, trust.SignActorOptions{Name: name, Caps: []string{wire.ContractHTTPServer}}, acct, mod)
	if err != nil {
		return err
	}
	return os.WriteFile(out, signed, 0o644)
}

func sizeLabel(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

// postCheck POSTs body to url and checks the answer: the same bytes back
// (exact), or a 200 whose body is at least as long (the echo's JSON).
func postCheck(c *http.Client, url string, body []byte, exact bool) error {
	resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: %.200s", resp.Status, got)
	case exact && !bytes.Equal(got, body):
		return fmt.Errorf("pass-through answered %d bytes that differ from the %d sent", len(got), len(body))
	case !exact && len(got) < len(body):
		return fmt.Errorf("echo answered %d bytes for a %d byte body", len(got), len(body))
	}
	return nil
}

// httpPostLoad is n keep-alive clients POSTing body back to back for d.
func httpPostLoad(url string, body []byte, exact bool, n int, d time.Duration) (float64, []time.Duration, int64) {
	tr := &http.Transport{MaxIdleConns: n * 2, MaxIdleConnsPerHost: n * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var first atomic.Pointer[error]
	rps, lat, errs, _ := measure(func(b []byte) error {
		err := postCheck(c, url, b, exact)
		if err != nil {
			first.CompareAndSwap(nil, &err)
		}
		return err
	}, body, n, d, 5)
	if p := first.Load(); p != nil {
		progress("POST %s (%d bytes): %d errors, the first: %v", url, len(body), errs, *p)
	}
	return rps, lat, errs
}

// natsConnect is a second admin connection to the node's NATS server, for
// the raw responder (its own connection, as a peer would have).
func natsConnect(n *node) (*nats.Conn, error) {
	return nats.Connect(n.sup.NATSURL(), adminCreds(n.cfg.DataDir))
}

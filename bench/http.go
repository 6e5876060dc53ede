package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latticed/latticed/internal/manifest"
	"github.com/latticed/latticed/wire"
)

// httpLoad is the HTTP load generator: n concurrent keep-alive clients
// issuing GET url back to back for d. It returns the cell (requests/s, the
// latency of every request, CPU per call of every process of the bench's
// tree) and the error count (a non-200 answer or a body without the echoed
// path counts as an error).
func httpLoad(url string, n int, d time.Duration) (cell, int64) {
	tr := &http.Transport{MaxIdleConns: n * 2, MaxIdleConnsPerHost: n * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return measureTree(func([]byte) error { return httpEchoGet(c, url) }, nil, n, d)
}

// probeClient is for the single requests that check a server answers: a
// hung one fails the check instead of blocking it.
var probeClient = &http.Client{Timeout: 10 * time.Second}

// httpEchoGet is one request of the load generator: GET url, whose answer
// must be a 200 with the echo's JSON of the request (the path in it).
func httpEchoGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && (resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"path":"/bench"`)) {
		err = errors.New(resp.Status + " " + string(body))
	}
	return err
}

// bareHTTP serves what the echo actor answers (writeEcho) from a plain
// net/http handler: the floor for the HTTP path.
func bareHTTP() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(writeEcho)}
	served := make(chan struct{})
	go func() { defer close(served); _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/bench?x=1", func() { _ = hs.Close(); <-served }, nil
}

// writeEcho answers r as the echo actor does: its method, path, query and
// body as JSON.
func writeEcho(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	out, _ := json.Marshal(map[string]string{"method": r.Method, "path": r.URL.Path, "query_string": r.URL.RawQuery, "body": string(body)})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// applyHTTPEcho applies, as `latticed apply` would, the echo actor (count
// instances) behind builtin:httpserver on a free port, and waits until the
// port answers through the actor.
func applyHTTPEcho(ctx context.Context, n *node, echoPath string, count int) (string, error) {
	port := freePort()
	m := &manifest.Manifest{
		Actors:    []manifest.Actor{{Ref: "file://" + echoPath, Count: count}},
		Providers: []manifest.Provider{{Ref: "builtin:httpserver", LinkName: "default"}},
		Links: []manifest.Link{{Actor: "file://" + echoPath, Provider: "builtin:httpserver", Contract: wire.ContractHTTPServer,
			LinkName: "default", Values: map[string]string{"port": strconv.Itoa(port)}}},
	}
	if _, err := manifest.Apply(ctx, n.ctl, m, 2*time.Second, nil); err != nil {
		return "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/bench?x=1", port)
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = httpEchoGet(probeClient, url); last == nil {
			return url, nil
		}
		time.Sleep(20 * time.Millisecond) // polling a starting provider
	}
	return "", fmt.Errorf("httpserver on port %d never answered through echo: %v", port, last)
}

// benchHTTP compares the HTTP path through the lattice with a bare handler,
// with the same generator, at each concurrency, and with the crypto floor
// and (when the run measured it before the node started) the HTTP topology
// floor at the same concurrency.
func benchHTTP(url string, concs []int, d time.Duration, f *floors, rep *Report) error {
	bare, stop, err := bareHTTP()
	if err != nil {
		return err
	}
	defer stop()
	const name = "provider httpserver -> echo actor"
	for _, c := range concs {
		fl, err := f.cell(c)
		if err != nil {
			return err
		}
		progress("HTTP at concurrency %d", c)
		floor, ferrs := httpLoad(bare, c, d)
		got, errs := httpLoad(url, c, d)
		if ferrs > 0 || errs > 0 {
			return fmt.Errorf("http c=%d: %d errors (bare: %d)", c, errs, ferrs)
		}
		rep.Rows = append(rep.Rows,
			Row{Name: fmt.Sprintf("http c=%d: bare net/http handler", c), Value: floor.rps, Unit: "req/s"},
			Row{Name: fmt.Sprintf("CPU per call http c=%d: bare net/http handler", c), Value: floor.cpuPerCall, Unit: "µs"},
			Row{Name: fmt.Sprintf("http c=%d: %s", c, name), Value: got.rps, Unit: "req/s", Ratio: got.rps / floor.rps, RatioTo: "bare net/http handler"})
		rep.Rows = append(rep.Rows, throughputRows("http", c, name, got, fl)...)
		rep.Rows = append(rep.Rows, vsHTTPTopoFloorRows(c, name, got, f.httpAt[c])...)
	}
	return nil
}

package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/lattice"
)

// The HTTP topology floor is the HTTP path's process structure with none of
// latticed's work in it: the bench's HTTP load generator and the floors'
// embedded NATS server in the bench process (where the real path has the
// generator, the supervisor and its embedded NATS server); a child serving
// net/http on loopback (floor-httpd, where the real path has the
// httpserver provider child) that per request signs a message of the size
// of a real HTTP invocation's token and sends it as a NATS request; and the
// topology floor's responder child (where the real path has the host child)
// that verifies it and replies. Its gap to the crypto floor is what that
// structure costs (an HTTP server, three processes, two NATS connections
// across processes); the real HTTP path's gap to it is latticed's own work.
const (
	httpTopoFloorName = "HTTP topology floor (net/http child -> NATS + Ed25519 sign/verify -> responder child)"
	// httpTopoShort is how the real HTTP rows name this floor.
	httpTopoShort = "HTTP topology floor"
	// floorHTTPDCmd is the hidden subcommand (argv[1]) of the HTTP
	// topology floor's HTTP server child.
	floorHTTPDCmd  = "floor-httpd"
	roleFloorHTTPD = "floor httpd child"
	// httpInvocationTokenBytes is the length of the token (the JWT) the
	// httpserver provider signs for the bench's `GET /bench?x=1`: 770 bytes,
	// measured on a real node by capturing the invocation on the actor's
	// subject (captureHTTPInvocation, which every run repeats in its
	// `http invocation …` rows, so a drift shows). floor-httpd signs a
	// message of this size per request, so the floor's sign and verify
	// hash as many bytes as the real path's.
	httpInvocationTokenBytes = 770
	// roleHTTPProvider is the real HTTP path's provider child in the CPU
	// split (roleOf).
	roleHTTPProvider = "httpserver" + providerRoleSuffix
)

// floorHTTPDSpec is what floor-httpd reads from its stdin (one JSON value):
// the NATS server, the address to serve HTTP on, the responder's subject,
// the key to sign with and the size of the message it signs. The key is a
// throwaway of this run, handed over a pipe as the provider's is and kept
// out of the child's log (child.Command.Secrets).
type floorHTTPDSpec struct {
	URL          string             `json:"url"`
	Listen       string             `json:"listen"`
	Subject      string             `json:"subject"`
	PrivateKey   ed25519.PrivateKey `json:"private_key"`
	MessageBytes int                `json:"message_bytes"`
}

// httpFloor is a running HTTP topology floor: its two children and the URL
// the load generator sends to.
type httpFloor struct {
	responder *floorResponder
	httpd     *child.Process
	url       string
}

// startHTTPFloor starts the topology floor's responder on the NATS server
// at natsURL (it answers before this goes on), then floor-httpd signing
// with the responder's key, and returns once floor-httpd answers a request
// through the responder.
func startHTTPFloor(ctx context.Context, client *nats.Conn, natsURL string) (*httpFloor, error) {
	r, err := startFloorResponder(ctx, client, natsURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", httpTopoShort, err)
	}
	proc, url, err := startFloorHTTPD(ctx, natsURL, r.subject, r.key)
	if err != nil {
		r.stop()
		return nil, err
	}
	h := &httpFloor{responder: r, httpd: proc, url: url}
	if err := httpEchoGet(probeClient, url); err != nil {
		h.stop()
		return nil, fmt.Errorf("%s: floor-httpd answered, but not through the responder: %w", httpTopoShort, err)
	}
	return h, nil
}

// startFloorHTTPD starts floor-httpd (startBenchChild) signing with key for
// the responder on subject, and returns once it answers HTTP at all (any
// status: a key the responder does not accept makes every answer a 502).
func startFloorHTTPD(ctx context.Context, natsURL, subject string, key ed25519.PrivateKey) (*child.Process, string, error) {
	spec := floorHTTPDSpec{URL: natsURL, Listen: "127.0.0.1:" + strconv.Itoa(freePort()), Subject: subject, PrivateKey: key,
		MessageBytes: httpInvocationTokenBytes}
	proc, err := startBenchChild(roleFloorHTTPD, floorHTTPDCmd, spec, base64.StdEncoding.EncodeToString(key))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", httpTopoShort, err)
	}
	url := "http://" + spec.Listen + "/bench?x=1"
	err = waitChild(ctx, proc, 30*time.Second, func() error {
		resp, err := probeClient.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	})
	if err != nil {
		proc.Terminate(floorResponderStop)
		return nil, "", fmt.Errorf("%s: %w", httpTopoShort, err)
	}
	return proc, url, nil
}

// stop ends both children (floor-httpd first, its requests' responder
// last) and returns once they were reaped.
func (h *httpFloor) stop() {
	h.httpd.Terminate(floorResponderStop)
	h.responder.stop()
}

// measureHTTPTopoFloor measures the HTTP topology floor at concurrency n
// with the HTTP load generator of the HTTP rows (httpLoad), on children of
// its own that are gone when it returns.
func measureHTTPTopoFloor(ctx context.Context, client *nats.Conn, natsURL string, n int, d time.Duration) (cell, error) {
	h, err := startHTTPFloor(ctx, client, natsURL)
	if err != nil {
		return cell{}, err
	}
	defer h.stop()
	got, errs := httpLoad(h.url, n, d)
	if errs > 0 {
		return got, fmt.Errorf("%s at concurrency %d: %d errors", httpTopoFloorName, n, errs)
	}
	return got, nil
}

// httpTopoCounterpart is, for each process of the real HTTP path, the
// process of the HTTP topology floor that has its place: the real path's
// excess over it is latticed's own work in that process.
var httpTopoCounterpart = map[string]string{
	roleBench:                   roleBench,
	"httpserver provider child": roleFloorHTTPD,
	roleHost:                    roleFloor,
}

// vsHTTPTopoFloorRows are a real HTTP row's ratios to the HTTP topology
// floor at the same concurrency (throughputRows keeps those to the crypto
// floor, which the goals are stated against): requests/s, p50, CPU
// per call of all processes, and each process's CPU per call against its
// counterpart in the floor.
func vsHTTPTopoFloorRows(c int, name string, got, floor cell) []Row {
	if floor.rps == 0 {
		return nil // not measured in this run
	}
	rows := []Row{
		{Name: fmt.Sprintf("http c=%d: %s vs %s", c, name, httpTopoShort), Value: got.rps, Unit: "req/s", Ratio: got.rps / floor.rps, RatioTo: httpTopoShort},
		{Name: fmt.Sprintf("http c=%d p50: %s vs %s", c, name, httpTopoShort), Value: float64(quantile(got.lat, 0.5).Microseconds()), Unit: "µs",
			Ratio: float64(quantile(got.lat, 0.5)) / float64(max(quantile(floor.lat, 0.5), time.Microsecond)), RatioTo: httpTopoShort + " p50"},
		{Name: fmt.Sprintf("CPU per call http c=%d: %s (all processes) vs %s", c, name, httpTopoShort), Value: got.cpuPerCall, Unit: "µs",
			Ratio: got.cpuPerCall / floor.cpuPerCall, RatioTo: httpTopoShort},
	}
	for _, role := range rolesInOrder(got.cpuByRole) {
		other, ok := httpTopoCounterpart[role]
		if !ok || floor.cpuByRole[other] <= 0 {
			continue
		}
		v := got.cpuByRole[role]
		rows = append(rows, Row{Name: fmt.Sprintf("CPU per call http c=%d: %s: %s vs %s", c, name, role, httpTopoShort), Value: v, Unit: "µs",
			Ratio: v / floor.cpuByRole[other], RatioTo: httpTopoShort + ": " + other})
	}
	return rows
}

// floorHTTPDMain is the HTTP topology floor's HTTP server child (`bench
// floor-httpd`): it reads its floorHTTPDSpec from stdin, connects to NATS,
// then serves HTTP on spec.Listen until serveChild's context ends. Each
// request is one floorCall (sign a spec.MessageBytes message, NATS request
// to the responder, check the reply) and then the echo's answer
// (writeEcho); a failed call is a 502. With LATTICED_CPUPROFILE_DIR set it
// writes a CPU profile there (floor-httpd-<pid>.pprof).
func floorHTTPDMain(stdin io.Reader) error {
	var spec floorHTTPDSpec
	return serveChild(stdin, &spec, floorHTTPDCmd, func(ctx context.Context, stop context.CancelFunc) error {
		if len(spec.PrivateKey) != ed25519.PrivateKeySize || spec.URL == "" || spec.Listen == "" || spec.Subject == "" || spec.MessageBytes <= 0 {
			return errors.New("floor-httpd spec on stdin lacks url, listen, subject, message_bytes or a 64-byte private_key")
		}
		nc, err := nats.Connect(spec.URL, nats.Name(roleFloorHTTPD), nats.ClosedHandler(func(*nats.Conn) { stop() }))
		if err != nil {
			return fmt.Errorf("connect to the bench's NATS server %s: %w", spec.URL, err)
		}
		defer nc.Close()
		call := floorCall(nc, spec.Subject, spec.PrivateKey, true)
		msg := make([]byte, spec.MessageBytes) // read only: floorCall copies it to sign
		ln, err := net.Listen("tcp", spec.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", spec.Listen, err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := call(msg); err != nil {
				http.Error(w, "floor responder: "+err.Error(), http.StatusBadGateway)
				return
			}
			writeEcho(w, r)
		})}
		served := make(chan error, 1)
		// Owned by this function: Close below ends it, and it is waited for.
		go func() { served <- hs.Serve(ln) }()
		select {
		case <-ctx.Done():
			_ = hs.Close()
			<-served
			return nil
		case err := <-served:
			return fmt.Errorf("serve HTTP on %s: %w", spec.Listen, err)
		}
	})
}

// captureHTTPInvocation sends one GET to url (the real HTTP path) while
// subscribed, with the node's admin credentials, to the RPC subject of the
// actor behind it, and returns the invocation the provider sent: its
// token's length is what httpInvocationTokenBytes stands for.
func captureHTTPInvocation(nc *nats.Conn, prefix, actorKey, url string) (*lattice.Invocation, int, error) {
	sub, err := nc.SubscribeSync(lattice.RPCActor(prefix, actorKey))
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return nil, 0, err
	}
	if err := httpEchoGet(probeClient, url); err != nil {
		return nil, 0, err
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		return nil, 0, fmt.Errorf("no invocation seen on %s: %w", sub.Subject, err)
	}
	inv, err := lattice.DecodeInvocation(m.Data)
	if err != nil {
		return nil, 0, err
	}
	return inv, len(m.Data), nil
}

// httpInvocationRows are the sizes of one captured real HTTP invocation:
// its token against the message floor-httpd signs, and the whole message
// with its two other big parts. floor-httpd's request on NATS is the signed
// message and its 64-byte signature, smaller than the real one: carrying
// the rest is latticed's own work.
func httpInvocationRows(inv *lattice.Invocation, size int) []Row {
	return []Row{
		{Name: "http invocation: token (JWT) the provider signs, GET /bench?x=1", Value: float64(len(inv.EncodedClaims)), Unit: "bytes",
			Ratio: float64(len(inv.EncodedClaims)) / httpInvocationTokenBytes, RatioTo: httpTopoShort + ": message signed"},
		{Name: "http invocation: whole message on NATS, GET /bench?x=1", Value: float64(size), Unit: "bytes"},
		{Name: "http invocation: of which the payload (the HTTP request)", Value: float64(len(inv.Msg)), Unit: "bytes"},
		{Name: "http invocation: of which the delegation token (signed once per provider key, not per request)", Value: float64(len(inv.Delegation)), Unit: "bytes"},
	}
}

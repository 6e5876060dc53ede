// Package httpserver is the built-in wasmcloud:httpserver provider: one HTTP
// listener per linked actor; each request becomes an HttpServer.HandleRequest
// invocation of that actor, and the actor's HttpResponse becomes the HTTP
// response.
//
// Status codes the provider produces itself, each with a short plain-text
// body ending in a request id, also sent as X-Request-Id (details go to the
// provider's log under that id, never to the client):
//
//	413  the request body exceeds max_content_len (the node keeps serving)
//	403  the actor's claims lack wasmcloud:httpserver, so its host refused
//	     the request (the body names the missing claim)
//	503  the actor runs nowhere in the lattice, all its instances are busy,
//	     or a capability provider it called is not running yet (a node
//	     starting) or is stopping; always with Retry-After, as retrying
//	     later can succeed
//	504  the actor did not answer within the timeout
//	500  the actor failed (guest error, trap) or returned a malformed or
//	     invalid response
//
// An actor's status code 0 means 200.
package httpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/provider"
	"github.com/latticed/latticed/rpc"
	"github.com/latticed/latticed/wire"
)

// Connection limits of every listener.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
	// writeMargin is added to the actor timeout, at least rpc.ChunkTimeout,
	// for WriteTimeout.
	writeMargin = 10 * time.Second
	// closeTimeout bounds draining one listener when its link goes.
	closeTimeout = 5 * time.Second
)

// Invoker sends an invocation to an actor; *provider.Provider is one.
type Invoker interface {
	Invoke(ctx context.Context, actorKey, operation string, payload []byte) ([]byte, error)
	RPCTimeout() time.Duration
}

// Server is the httpserver capability.
type Server struct {
	inv   Invoker
	log   *slog.Logger
	count *metrics.HTTPRequestCounts // nil: not counted (tests, benchmarks)

	mu        sync.Mutex
	listeners map[string]*listener // by actor key
	closed    bool
}

// New returns the capability, counting its requests on m (nil: not
// counted); internal/providermain runs it.
func New(m *metrics.Metrics) *Server {
	s := &Server{listeners: map[string]*listener{}, log: slog.Default()}
	if m != nil {
		s.count = m.InitHTTPServer() // at 0 from the start: the first 5xx shows in increase()
	}
	return s
}

// Contract is wasmcloud:httpserver.
func (s *Server) Contract() string { return wire.ContractHTTPServer }

// Start keeps the provider for outbound invocations.
func (s *Server) Start(_ context.Context, p *provider.Provider) error {
	s.UseInvoker(p, p.Logger())
	return nil
}

// UseInvoker sets how requests reach actors (Start does this; benchmarks
// and tests may too).
func (s *Server) UseInvoker(inv Invoker, log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inv, s.log = inv, log
}

// Handle: actors do not call the HTTP server provider.
func (s *Server) Handle(_ context.Context, call provider.Call) ([]byte, error) {
	return nil, provider.UnknownOperation(wire.ContractHTTPServer, call.Operation)
}

// ValidateLink checks the link's values without opening anything, so a
// changed link whose values cannot work leaves the current listener up.
func (s *Server) ValidateLink(ld lattice.LinkDefinition) error {
	if _, err := ParseSettings(ld.Values); err != nil {
		return fmt.Errorf("link values: %w", err)
	}
	return nil
}

// PutLink opens the actor's listener.
func (s *Server) PutLink(_ context.Context, ld lattice.LinkDefinition) error {
	settings, err := ParseSettings(ld.Values)
	if err != nil {
		return fmt.Errorf("link values: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("http server provider is shutting down")
	}
	if s.inv == nil {
		return errors.New("http server provider not started")
	}
	if _, ok := s.listeners[ld.ActorID]; ok {
		return fmt.Errorf("actor %s already has a listener", ld.ActorID)
	}
	l, err := s.listen(ld.ActorID, settings)
	if err != nil {
		return err
	}
	s.listeners[ld.ActorID] = l
	s.log.Info("http listener started", "actor", ld.ActorID, "address", l.addr.String(),
		"max_content_len", settings.MaxContentLen, "timeout", l.timeout)
	return nil
}

// DeleteLink closes the actor's listener: new connections are refused at
// once, requests in progress get up to 5 s to finish.
func (s *Server) DeleteLink(ctx context.Context, ld lattice.LinkDefinition) error {
	s.mu.Lock()
	l, ok := s.listeners[ld.ActorID]
	delete(s.listeners, ld.ActorID)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	err := l.close(ctx)
	s.log.Info("http listener stopped", "actor", ld.ActorID, "address", l.addr.String())
	return err
}

// Close stops every listener gracefully.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := s.listeners
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	errs := make([]error, 0, len(ls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			err := l.close(ctx)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Addr is the address an actor's listener is bound to (tests: port 0).
func (s *Server) Addr(actor string) (net.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.listeners[actor]
	if !ok {
		return nil, false
	}
	return l.addr, true
}

// listener is one link's HTTP server.
type listener struct {
	actor   string
	addr    net.Addr
	srv     *http.Server
	served  chan struct{}
	timeout time.Duration
	maxBody int64
	inv     Invoker
	log     *slog.Logger
	count   *metrics.HTTPRequestCounts // nil: not counted
}

func (s *Server) listen(actor string, st Settings) (*listener, error) {
	ln, err := net.Listen("tcp", st.Address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for actor %s: %w", st.Address, actor, err)
	}
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = s.inv.RPCTimeout()
	}
	l := &listener{actor: actor, addr: ln.Addr(), served: make(chan struct{}), timeout: timeout,
		maxBody: st.MaxContentLen, inv: s.inv, count: s.count, log: s.log.With("actor", actor)}
	l.srv = &http.Server{
		Handler:           Traced(l, actor), // l itself while tracing is off
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      max(timeout, rpc.ChunkTimeout) + writeMargin, // a chunked call may take ChunkTimeout (serve)
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(l.served)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("http listener failed", "address", l.addr.String(), "err", err)
		}
	}()
	return l, nil
}

func (l *listener) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	err := l.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, l.srv.Close())
	}
	<-l.served
	return err
}

// ServeHTTP serves one request and counts it by status class.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.count == nil {
		l.serve(w, r)
		return
	}
	start := time.Now()
	l.count.Count(l.serve(w, r))
	l.count.Duration.Observe(time.Since(start).Seconds())
}

// serve turns one request into an HttpServer.HandleRequest invocation and
// returns the status it answered with (counted without wrapping w).
func (l *listener) serve(w http.ResponseWriter, r *http.Request) int {
	if r.ContentLength > l.maxBody {
		return l.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the %d byte limit", l.maxBody), nil)
	}
	body, err := l.readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return l.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the %d byte limit", l.maxBody), nil)
		}
		return l.fail(w, http.StatusBadRequest, "could not read the request body", err)
	}
	payload := (&wire.HTTPRequest{
		Method: r.Method, Path: r.URL.EscapedPath(), QueryString: r.URL.RawQuery,
		Header: requestHeader(r), Body: body,
	}).Encode()
	timeout := l.timeout
	if len(payload) > rpc.ChunkThreshold && timeout < rpc.ChunkTimeout {
		// Chunked through the object store: wasmCloud's request timeout
		// for such calls.
		timeout = rpc.ChunkTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	out, err := l.inv.Invoke(ctx, l.actor, wire.OpHTTPHandleRequest, payload)
	if err != nil {
		code, msg := classify(ctx, err, timeout)
		return l.fail(w, code, msg, err)
	}
	resp, err := wire.DecodeHTTPResponse(out)
	if err != nil {
		return l.fail(w, http.StatusInternalServerError, "actor returned a malformed HTTP response", err)
	}
	status := int(resp.StatusCode)
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 599 {
		return l.fail(w, http.StatusInternalServerError, "actor returned an invalid HTTP status", fmt.Errorf("status %d", status))
	}
	copyResponseHeader(w.Header(), resp.Header)
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
	return status
}

// readBody reads a request body whole, bounded by max_content_len. A
// declared Content-Length sizes the buffer once (MaxBytesReader has already
// bounded it), where io.ReadAll would grow from 512 bytes, copying a large
// body a dozen times; one byte more than declared lets the final read see
// EOF without growing. A request without a body (net/http's NoBody: most
// GETs) reads nothing and allocates nothing; its body is empty, not nil, so
// it encodes as before.
func (l *listener) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == http.NoBody {
		return []byte{}, nil
	}
	body := http.MaxBytesReader(w, r.Body, l.maxBody)
	if r.ContentLength <= 0 {
		return io.ReadAll(body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, r.ContentLength+1))
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// requestHeader is the request's header with lower-case names, as hyper
// (wasmCloud's provider) hands them to actors, plus "host". The value
// slices are r.Header's own (the payload is encoded from them before the
// handler returns, and nothing writes to them).
func requestHeader(r *http.Request) map[string][]string {
	h := make(map[string][]string, len(r.Header)+1)
	for k, vs := range r.Header {
		lk := lowerHeaderName(k)
		// Appended, as before, when two spellings share a lower-case name
		// (net/http leaves some uncanonicalised) or there is no value (nil
		// then, not empty: it encodes differently).
		if prev, ok := h[lk]; ok || len(vs) == 0 {
			vs = append(prev[:len(prev):len(prev)], vs...)
		}
		h[lk] = vs
	}
	if r.Host != "" {
		h["host"] = []string{r.Host}
	}
	return h
}

// lowerHeaderName is strings.ToLower(name), without allocating for the
// names most requests carry.
func lowerHeaderName(name string) string {
	if lk, ok := commonLowerNames[name]; ok {
		return lk
	}
	return strings.ToLower(name)
}

// commonLowerNames maps canonical header names that clients commonly send
// to their lower-case form.
var commonLowerNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control", "Connection",
		"Content-Length", "Content-Type", "Cookie", "If-Modified-Since", "If-None-Match", "Origin",
		"Pragma", "Referer", "Traceparent", "Tracestate", "Upgrade-Insecure-Requests", "User-Agent",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
	} {
		m[n] = strings.ToLower(n)
	}
	return m
}()

// copyResponseHeader adds the actor's response header to h, as h.Add of
// each value would, less the hop-by-hop names. Each name is canonicalised
// once (h.Add would, per value): actors send lower-case names.
func copyResponseHeader(h http.Header, from map[string][]string) {
	for k, vs := range from {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop(ck) || len(vs) == 0 { // a name without values must not stop net/http's Content-Type sniffing
			continue
		}
		h[ck] = append(h[ck], vs...)
	}
}

// hopByHop reports headers an actor must not set: the server frames the
// response itself. name is in canonical form.
func hopByHop(name string) bool {
	switch name {
	case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer", "Te", "Proxy-Connection":
		return true
	}
	return false
}

// classify maps an invocation failure to a status and a short message, by
// the failure's reason (the code of the host's reply, rpc's sentinels) and
// never by its text, which the host may reword.
func classify(ctx context.Context, err error, timeout time.Duration) (int, string) {
	switch {
	case errors.Is(err, rpc.ErrNoResponders):
		return http.StatusServiceUnavailable, "actor unavailable: it is not running in this lattice"
	case errors.Is(err, rpc.ErrUnavailable):
		// Coded by the actor's host (lattice.ErrorCodeUnavailable): the
		// actor, or a provider it called, is starting or stopping.
		return http.StatusServiceUnavailable, unavailableMsg
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return http.StatusGatewayTimeout, fmt.Sprintf("actor did not answer within %s", timeout)
	case errors.Is(err, rpc.ErrCapabilityNotClaimed): // docs/protocol.md §3 check 7
		return http.StatusForbidden, "actor may not handle HTTP requests: its claims lack the " + wire.ContractHTTPServer + " capability"
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, rpc.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "request too large for the lattice"
	case errors.Is(err, rpc.ErrBusy):
		return http.StatusServiceUnavailable, "actor busy: retry later"
	case errors.Is(ctx.Err(), context.Canceled):
		return 499, "client closed the request" // nginx's convention; the client is gone anyway
	}
	return http.StatusInternalServerError, "actor failed to handle the request"
}

// fail writes a short plain-text error with a request id, logs the cause
// under that id and returns code. The cause stays in the log: it can name lattice
// internals (NATS subjects, provider and actor keys) that HTTP clients must
// not see; the id lets an operator find it.
func (l *listener) fail(w http.ResponseWriter, code int, msg string, cause error) int {
	id := nuid.Next()
	if cause != nil {
		level := slog.LevelWarn
		if code == http.StatusServiceUnavailable || code == 499 {
			level = slog.LevelInfo
		}
		l.log.Log(context.Background(), level, "http request failed", "status", code, "request_id", id, "err", cause)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set(RequestIDHeader, id)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", RetryAfterSeconds)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+" (request id "+id+")\n")
	return code
}

// RequestIDHeader carries the id of a failed request, which the provider's
// log line about it carries too.
const RequestIDHeader = "X-Request-Id"

// unavailableMsg answers a call coded unavailable (rpc.ErrUnavailable).
const unavailableMsg = "temporarily unavailable: a service the actor uses is not running; retry later"

// RetryAfterSeconds is the Retry-After of every 503 the provider answers:
// long enough for a provider or actor that is starting to come up (a few
// seconds on a node start), short enough that clients do not wait long.
const RetryAfterSeconds = "2"

// Traced wraps h with a server span per request, continuing the trace of an
// incoming traceparent header. While tracing is off it returns h itself.
func Traced(h http.Handler, actor string) http.Handler {
	t := rpc.Tracer()
	if t == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, s := t.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
			semconv.URLScheme("http"), rpc.AttrActor.String(actor)))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.Status()
			s.SetAttributes(semconv.HTTPResponseStatusCode(code))
			if code >= http.StatusInternalServerError {
				s.SetStatus(codes.Error, http.StatusText(code))
			}
			s.End()
		}()
		h.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// statusWriter wraps a ResponseWriter and records the first status written,
// for the request's span (tracing on).
type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records code and passes it on.
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes b on.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status the client got: 200 when the handler wrote nothing,
// as net/http answers then.
func (w *statusWriter) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

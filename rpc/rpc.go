// Package rpc carries lattice invocations over NATS, both ways: Invoke signs
// and sends one and decodes the reply (the one client path shared by the
// wasm host, providers and `latticed ctl call`), and Server receives them
// for a callee (the host's actors, each provider) through the checks every
// receiver makes, and replies. Errors carry their reason across: a
// *RemoteError matches this package's sentinels with errors.Is.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Invoke signs an invocation from origin to target with signer (a cluster key
// or, for providers, the key they were handed), sends it on subject and
// returns the reply body, or the callee's error.
func Invoke(ctx context.Context, nc *nats.Conn, signer *trust.KeyPair, hostID string, origin, target lattice.Entity, subject, operation string, payload []byte) ([]byte, error) {
	return InvokeAs(ctx, nc, trust.Signer{Key: signer}, hostID, origin, target, subject, operation, payload)
}

// InvokeAs is Invoke with a delegated signer: the provider-side path, where
// the invocation carries the delegation token that vouches for the key.
func InvokeAs(ctx context.Context, nc *nats.Conn, signer trust.Signer, hostID string, origin, target lattice.Entity, subject, operation string, payload []byte) ([]byte, error) {
	inv, err := signer.NewInvocation(hostID, origin, target, operation, payload)
	if err != nil {
		return nil, err
	}
	inv.TraceContext = inject(ctx) // nil while tracing is off
	if len(payload) > ChunkThreshold {
		// Signed over the full payload above; the message carries none of it.
		if err := putChunked(ctx, nc, subject, inv.ID, payload); err != nil {
			return nil, err
		}
		inv.Msg = []byte{}
	}
	data, err := inv.Encode()
	if err != nil {
		return nil, err
	}
	msg, err := nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w (%w on %s)", ErrRequestTimeout, ErrNoResponders, subject)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("%w (no reply on %s in time)", ErrRequestTimeout, subject)
	case err != nil:
		return nil, fmt.Errorf("Failed to perform RPC call to %s: %w", subject, err)
	}
	resp, err := lattice.DecodeInvocationResponse(msg.Data)
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, &RemoteError{Msg: resp.Error, Code: msg.Header.Get(lattice.HeaderErrorCode)}
	}
	if chunked(len(resp.Msg), resp.ContentLength) {
		return fetchResponse(ctx, nc, subject, inv.ID, resp)
	}
	return resp.Msg, nil
}

// Defaults of the receive pipeline, one set for the host and providers
// (internal/config resolves the node's settings from them).
const (
	// DefaultTimeout bounds an invocation: the caller's wait, and the
	// callee's work (Server.Timeout).
	DefaultTimeout = 2 * time.Second
	// DefaultMaxPayloadBytes is the largest payload a callee accepts
	// (Server.MaxPayloadBytes) and the largest response Invoke reads,
	// chunked payloads included (ChunkThreshold).
	DefaultMaxPayloadBytes = 64 << 20
	// DefaultReplayWindow is how long the replay guard behind
	// Server.Issuers remembers invocation ids; older tokens are refused.
	DefaultReplayWindow = time.Minute
	// DefaultClockSkew is how far the clocks of two nodes may disagree
	// before Server.Issuers refuses a token as not yet or no longer valid.
	DefaultClockSkew = 30 * time.Second
)

// Server is the receive half of one callee (an actor on a host, or a
// provider instance): it takes the invocations its subscription delivers
// through the checks of docs/protocol.md §3, in order — size, decode,
// anti-forgery token and issuer (with the replay guard), the callee's own
// authorisation — then hands the survivors to Handle inside a server span
// and sends the reply. A refused invocation never reaches Handle: it is
// answered with its reason, coded in the reply's lattice.HeaderErrorCode.
//
// Set the fields before the first Serve and leave them alone afterwards;
// Serve is safe for concurrent use.
type Server struct {
	// Key is the callee's public key: an invocation addressed to anything
	// else is refused (lattice.ReasonWrongTarget).
	Key string
	// Issuers verifies each invocation's token (required).
	Issuers *trust.Issuers
	// MaxPayloadBytes refuses bigger invocations, and chunked ones whose
	// content_length is bigger, before reading them
	// (lattice.ReasonTooLarge); 0 means DefaultMaxPayloadBytes.
	MaxPayloadBytes int
	// Conn is the connection the invocations arrive on: chunked payloads
	// are fetched and chunked responses put through it. nil refuses chunked
	// invocations (lattice.ReasonChunkFetch) and replies inline only.
	Conn *nats.Conn
	// Timeout bounds Authorize and Handle together; 0 means
	// DefaultTimeout. A chunked invocation gets at least ChunkTimeout.
	Timeout time.Duration
	// Authorize, when set, is the callee's own admission check after the
	// issuer check (the host: capability claims and the policy service; a
	// provider: the caller is linked). An error refuses the invocation
	// with the error's text; return a *lattice.RejectError to give it a
	// reason.
	Authorize func(ctx context.Context, inv *lattice.Invocation) error
	// Handle serves an admitted invocation (required). Its error becomes
	// the reply's error text, coded by its reason or the sentinel it
	// matches (see Mark).
	Handle func(ctx context.Context, inv *lattice.Invocation) (Result, error)
	// Observer is told of each refusal and each served invocation; nil
	// means nobody is.
	Observer Observer
	// Log receives reply failures; nil means slog.Default().
	Log *slog.Logger
}

// Result is what Handle produced.
type Result struct {
	Msg        []byte
	InstanceID string // the instance that served the call (the reply's instance_id), if any
	// Done, when set, runs once the reply is sent: the host returns the
	// actor instance to its pool there, since replacing a broken one takes
	// as long as the actor's initialiser and the caller should not wait.
	Done func()
}

// Observer is how a Server's owner counts and reports what it does: rpc
// records no metrics of its own, so that the provider SDK stays free of a
// metrics library.
type Observer interface {
	// Rejected is called after a refusal is answered. inv is nil when the
	// bytes were too large or did not decode; lattice.ReasonOf(err) is the
	// reason ("" for an Authorize error that is not a rejection).
	Rejected(inv *lattice.Invocation, err error)
	// Served is called after Handle's reply is sent, with Handle's error and
	// the time since the invocation arrived.
	Served(inv *lattice.Invocation, err error, elapsed time.Duration)
}

// Serve receives one invocation and answers it. It blocks until the reply
// is sent and Result.Done has run; callers that must serve concurrently
// call it on a goroutine of their own.
func (s *Server) Serve(m *nats.Msg) {
	start := time.Now()
	if limit := s.maxPayload(); len(m.Data) > limit {
		s.reject(m, nil, lattice.Reject(lattice.ReasonTooLarge, "invocation of %d bytes exceeds the %d byte limit (LATTICED_MAX_PAYLOAD_BYTES)", len(m.Data), limit))
		return
	}
	inv, err := lattice.DecodeInvocation(m.Data)
	if err != nil {
		s.reject(m, nil, lattice.Reject(lattice.ReasonMalformed, "%v", err))
		return
	}
	timeout := s.timeout()
	if chunked(len(inv.Msg), inv.ContentLength) {
		// Fetched before the issuer check, which hashes the full payload.
		if err := s.dechunk(m, inv); err != nil {
			s.reject(m, inv, err)
			return
		}
		timeout = max(timeout, ChunkTimeout) // as long as a chunked call's caller waits
	}
	if _, err := s.Issuers.Check(inv, s.Key); err != nil {
		s.reject(m, inv, err)
		return
	}
	// One deadline for the whole invocation, admission included: the
	// caller waits no longer than that either, and one timer per invocation
	// is cheaper than one per step.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.Authorize != nil {
		if err := s.Authorize(ctx, inv); err != nil {
			s.reject(m, inv, err)
			return
		}
	}

	ctx, span := startServerSpan(ctx, inv, s.Key)
	res, err := s.Handle(ctx, inv)
	resp := &lattice.InvocationResponse{InvocationID: inv.ID, InstanceID: res.InstanceID}
	if err != nil {
		resp.Error, resp.ErrorCode = err.Error(), codeOf(err)
	} else {
		resp.Msg, resp.ContentLength = res.Msg, uint64(len(res.Msg))
		if len(res.Msg) > ChunkThreshold {
			s.chunkResponse(ctx, m, resp)
		}
	}
	span.end(resp)
	s.Reply(m, resp)
	if s.Observer != nil {
		s.Observer.Served(inv, err, time.Since(start))
	}
	if res.Done != nil {
		res.Done()
	}
}

// reject answers a refused invocation with its reason.
func (s *Server) reject(m *nats.Msg, inv *lattice.Invocation, err error) {
	resp := &lattice.InvocationResponse{Error: err.Error(), ErrorCode: codeOf(err)}
	if inv != nil {
		resp.InvocationID = inv.ID
	}
	s.Reply(m, resp)
	if s.Observer != nil {
		s.Observer.Rejected(inv, err)
	}
}

// Reply sends resp as the reply to m, logging a failure: for answers the
// owner gives without Serve (it is stopping, or has no room).
func (s *Server) Reply(m *nats.Msg, resp *lattice.InvocationResponse) {
	if err := respond(m, resp); err != nil {
		log := s.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("send invocation response failed", "err", err)
	}
}

func (s *Server) maxPayload() int {
	if s.MaxPayloadBytes > 0 {
		return s.MaxPayloadBytes
	}
	return DefaultMaxPayloadBytes
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// respond sends resp as the reply to m, with resp.ErrorCode in the
// lattice.HeaderErrorCode header when it has one. A reply too large for NATS
// is replaced by an error reply saying so, so the caller is never left to
// time out.
func respond(m *nats.Msg, resp *lattice.InvocationResponse) error {
	if m.Reply == "" {
		return nil
	}
	b, err := resp.Encode()
	switch {
	case err != nil:
	case resp.ErrorCode != "": // only coded errors carry a header; replies stay as they were
		err = m.RespondMsg(&nats.Msg{Data: b, Header: nats.Header{lattice.HeaderErrorCode: []string{resp.ErrorCode}}})
	default:
		err = m.Respond(b)
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		tooBig := &lattice.InvocationResponse{InvocationID: resp.InvocationID,
			Error: fmt.Sprintf("response of %d bytes exceeds the NATS max payload", len(resp.Msg))}
		if b, err = tooBig.Encode(); err == nil {
			err = m.Respond(b)
		}
	}
	return err
}

// Tracing uses the OpenTelemetry API only: a process that wants spans
// installs an SDK as the global tracer provider and propagator (latticed's
// own processes do when OTEL_TRACES_EXPORTER=otlp), and one that does not
// pays a pointer comparison per invocation, without allocating.

// Span attribute keys of our own (the semantic conventions have none for a
// lattice); the actor and provider keys are public keys, never secrets.
// An invocation's span names the invocation, its caller and its callee.
const (
	AttrInvocationID = attribute.Key("latticed.invocation.id")
	AttrOrigin       = attribute.Key("latticed.origin")
	AttrTarget       = attribute.Key("latticed.target")
)

// A provider's side of a span: the contract and link name (on an
// invocation of a provider, and on an actor's call out), and the actor a
// host call or an HTTP request is for.
const (
	AttrContract = attribute.Key("latticed.contract")
	AttrLinkName = attribute.Key("latticed.link_name")
	AttrActor    = attribute.Key("latticed.actor")
)

// SystemAttr is the rpc.system.name of lattice invocations.
var SystemAttr = semconv.RPCSystemNameKey.String("wasmbus")

// instrumentation is the tracer's name (the instrumentation scope).
const instrumentation = "github.com/latticed/latticed"

// apiDefault is the API's own tracer provider, in place until an SDK is
// installed: it makes only non-recording spans.
var apiDefault = otel.GetTracerProvider()

// Tracer is the installed SDK's tracer, nil while tracing is off: the one
// tracer of invocation, host-call and HTTP request spans.
func Tracer() trace.Tracer {
	tp := otel.GetTracerProvider()
	if _, off := tp.(noop.TracerProvider); off || tp == apiDefault {
		return nil
	}
	return tp.Tracer(instrumentation)
}

// serverSpan is an invocation's span in progress; the zero serverSpan
// (tracing off) does nothing.
type serverSpan struct{ s trace.Span }

// startServerSpan starts the server span of an inbound invocation served by
// receiver (an actor or provider key), as a child of the trace context the
// invocation carries (a new trace when it carries none).
func startServerSpan(ctx context.Context, inv *lattice.Invocation, receiver string) (context.Context, serverSpan) {
	t := Tracer()
	if t == nil {
		return ctx, serverSpan{}
	}
	if len(inv.TraceContext) > 0 {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(inv.TraceContext))
	}
	attrs := []attribute.KeyValue{
		SystemAttr, semconv.RPCMethod(inv.Operation), AttrInvocationID.String(inv.ID),
		AttrOrigin.String(inv.Origin.PublicKey), AttrTarget.String(receiver),
	}
	if inv.Target.ContractID != "" {
		attrs = append(attrs, AttrContract.String(inv.Target.ContractID), AttrLinkName.String(inv.Target.LinkName))
	}
	ctx, s := t.Start(ctx, inv.Operation, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return ctx, serverSpan{s}
}

// end ends the span with the outcome of resp.
func (s serverSpan) end(resp *lattice.InvocationResponse) {
	if s.s == nil {
		return
	}
	if resp.Error != "" {
		s.s.SetStatus(codes.Error, resp.Error)
	}
	s.s.End()
}

// inject returns ctx's trace context as an outgoing invocation's
// traceContext: nil while tracing is off or when ctx carries no span.
func inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil
	}
	return carrier
}

// Span is an outgoing call's client span in progress; the zero Span
// (tracing off) does nothing.
type Span struct{ s trace.Span }

// End ends the span, marking it failed when err is not nil.
func (s Span) End(err error) {
	if s.s == nil {
		return
	}
	if err != nil {
		s.s.RecordError(err)
		s.s.SetStatus(codes.Error, err.Error())
	}
	s.s.End()
}

// StartHostCall starts the client span of an actor's call out of the host
// (to a provider, another actor or a built-in); the invocation it sends
// carries this span as its parent (Invoke injects it, and the callee's
// Server continues it).
func StartHostCall(ctx context.Context, actor, namespace, binding, operation string) (context.Context, Span) {
	t := Tracer()
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.Start(ctx, operation, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		SystemAttr, semconv.RPCMethod(operation), AttrActor.String(actor),
		AttrContract.String(namespace), AttrLinkName.String(binding)))
	return ctx, Span{s}
}

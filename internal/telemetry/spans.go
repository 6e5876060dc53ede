package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/latticed/latticed/internal/httpstatus"
	"github.com/latticed/latticed/lattice"
)

// Span attribute keys of our own (the semantic conventions have none for a
// lattice); the actor and provider keys are public keys, never secrets.
const (
	AttrInvocationID = attribute.Key("latticed.invocation.id")
	AttrActor        = attribute.Key("latticed.actor")
	AttrOrigin       = attribute.Key("latticed.origin")
	AttrTarget       = attribute.Key("latticed.target")
	AttrContract     = attribute.Key("latticed.contract")
	AttrLinkName     = attribute.Key("latticed.link_name")
)

// rpcSystem is the rpc.system.name of lattice invocations.
var rpcSystem = semconv.RPCSystemNameKey.String("wasmbus")

// Span is a span in progress; the zero Span (tracing off) does nothing.
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

// EndResponse ends an invocation's span with the outcome of resp (read when
// End runs, so a deferred call sees the final response).
func (s Span) EndResponse(resp *lattice.InvocationResponse) {
	if s.s == nil {
		return
	}
	if resp != nil && resp.Error != "" {
		s.s.SetStatus(codes.Error, resp.Error)
	}
	s.s.End()
}

// Inject returns ctx's trace context as an outgoing invocation's
// traceContext: nil while tracing is off or when ctx carries no span.
func Inject(ctx context.Context) map[string]string {
	t := current.Load()
	if t == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	carrier := propagation.MapCarrier{}
	t.propagator.Inject(ctx, carrier)
	return carrier
}

// StartInvocation starts the server span of an inbound invocation served by
// receiver (an actor or provider key), as a child of the trace context the
// invocation carries (a new trace when it carries none).
func StartInvocation(ctx context.Context, inv *lattice.Invocation, receiver string) (context.Context, Span) {
	t := current.Load()
	if t == nil {
		return ctx, Span{}
	}
	if len(inv.TraceContext) > 0 {
		ctx = t.propagator.Extract(ctx, propagation.MapCarrier(inv.TraceContext))
	}
	attrs := []attribute.KeyValue{
		rpcSystem, semconv.RPCMethod(inv.Operation), AttrInvocationID.String(inv.ID),
		AttrOrigin.String(inv.Origin.PublicKey), AttrTarget.String(receiver),
	}
	if inv.Target.ContractID != "" {
		attrs = append(attrs, AttrContract.String(inv.Target.ContractID), AttrLinkName.String(inv.Target.LinkName))
	}
	ctx, s := t.tracer.Start(ctx, inv.Operation, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return ctx, Span{s}
}

// StartHostCall starts the client span of an actor's call out of the host
// (to a provider, another actor or a built-in); the invocation it sends
// carries this span as its parent.
func StartHostCall(ctx context.Context, actor, namespace, binding, operation string) (context.Context, Span) {
	t := current.Load()
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tracer.Start(ctx, operation, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		rpcSystem, semconv.RPCMethod(operation), AttrActor.String(actor),
		AttrContract.String(namespace), AttrLinkName.String(binding)))
	return ctx, Span{s}
}

// HTTPHandler wraps h with a server span per request, continuing the trace
// of an incoming traceparent header. While tracing is off it returns h itself.
func HTTPHandler(h http.Handler, actor string) http.Handler {
	t := current.Load()
	if t == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, s := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
			semconv.URLScheme("http"), AttrActor.String(actor)))
		sw := &httpstatus.Writer{ResponseWriter: w}
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

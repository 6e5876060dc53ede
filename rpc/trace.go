package rpc

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/latticed/latticed/lattice"
)

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

package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/latticed/latticed/internal/httpstatus"
	"github.com/latticed/latticed/rpc"
)

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

// StartHostCall starts the client span of an actor's call out of the host
// (to a provider, another actor or a built-in); the invocation it sends
// carries this span as its parent (rpc.Invoke injects it, and the callee's
// rpc.Server continues it).
func StartHostCall(ctx context.Context, actor, namespace, binding, operation string) (context.Context, Span) {
	t := current.Load()
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tracer.Start(ctx, operation, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		rpc.SystemAttr, semconv.RPCMethod(operation), rpc.AttrActor.String(actor),
		rpc.AttrContract.String(namespace), rpc.AttrLinkName.String(binding)))
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
			semconv.URLScheme("http"), rpc.AttrActor.String(actor)))
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

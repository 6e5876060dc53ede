// Package httpstatus records the status code an HTTP handler answers with,
// for the metrics and spans around the httpserver provider's handler. It is
// a package of its own because both wrap the same handler from different
// places: the provider counts statuses, package telemetry sets the server
// span's status, and telemetry must not import a provider.
package httpstatus

import "net/http"

// Writer wraps a ResponseWriter and records the first status written.
type Writer struct {
	http.ResponseWriter
	code int
}

// WriteHeader records code and passes it on.
func (w *Writer) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes b on.
func (w *Writer) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status the client got: 200 when the handler wrote nothing,
// as net/http answers then.
func (w *Writer) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

package httpserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatusWriter(t *testing.T) {
	for name, tc := range map[string]struct {
		handle func(w http.ResponseWriter)
		want   int
	}{
		"nothing written":  {func(http.ResponseWriter) {}, http.StatusOK},
		"body only":        {func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, http.StatusOK},
		"explicit 503":     {func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }, http.StatusServiceUnavailable},
		"first code wins":  {func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound); w.WriteHeader(http.StatusOK) }, http.StatusNotFound},
		"body then header": {func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")); w.WriteHeader(http.StatusTeapot) }, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := &statusWriter{ResponseWriter: rec}
			tc.handle(w)
			if got := w.Status(); got != tc.want {
				t.Fatalf("Status() = %d, want %d", got, tc.want)
			}
			if rec.Code != tc.want {
				t.Fatalf("client got %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

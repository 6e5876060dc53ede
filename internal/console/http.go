package console

import (
	"bytes"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/latticed/latticed/internal/config"
)

// Names the page and the server share.
const (
	csrfHeader   = "X-CSRF-Token"
	csrfMeta     = "{{CSRF}}" // replaced in index.html by the server's CSRF token
	cookieName   = "latticed_console"
	loginPath    = "/login"
	maxBodyBytes = 64 << 10
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(static, "static") // the directory is embedded: cannot fail
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /api/state", s.state)
	mux.HandleFunc("GET /api/events", s.events)
	for path, h := range s.actions() {
		mux.Handle("POST /api/"+path, s.action(h))
	}
	outer := http.NewServeMux()
	outer.HandleFunc("GET "+loginPath, s.loginPage)
	outer.HandleFunc("POST "+loginPath, s.login)
	outer.Handle("/", s.requireLogin(mux))
	return secureHeaders(s.loopbackHost(outer))
}

// loopbackHost guards a console without login against DNS rebinding: a
// page of another site whose name resolves to 127.0.0.1 would be of the
// same origin as the console and could read the CSRF token. Such a request
// names the other site in its Host header, so only loopback names pass.
// Over HTTPS the browser itself refuses: the console's certificate does
// not name the other site.
func (s *Server) loopbackHost(h http.Handler) http.Handler {
	if s.token != "" || s.tls != nil {
		return h // a login cookie is not sent to another site's name; over HTTPS, see above
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hst, _, err := net.SplitHostPort(r.Host); err == nil {
			host = hst
		}
		if !config.IsLoopbackAddr(net.JoinHostPort(host, "0")) {
			http.Error(w, "the console answers only to a loopback name (127.0.0.1, [::1] or localhost)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// secureHeaders keeps the page to its own scripts and out of frames, and
// out of caches.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// requireLogin lets a request through when no login is asked for, or when
// it carries the token as a cookie (set by /login) or a bearer token.
func (s *Server) requireLogin(h http.Handler) http.Handler {
	if s.token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(cookieName); err == nil && sameSecret(c.Value, s.token) {
			h.ServeHTTP(w, r)
			return
		}
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && sameSecret(b, s.token) {
			h.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") {
			http.Redirect(w, r, loginPath, http.StatusSeeOther)
			return
		}
		http.Error(w, "log in first: the console's token is in the file the node printed at start ("+s.tokenPath+")", http.StatusUnauthorized)
	})
}

func (s *Server) loginPage(w http.ResponseWriter, _ *http.Request) {
	servePage(w, "static/login.html", "{{TOKEN_PATH}}", htmlEscape(s.tokenPath))
}

// servePage writes an embedded page with its one placeholder filled in.
func servePage(w http.ResponseWriter, name, placeholder, value string) {
	b, err := static.ReadFile(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(bytes.ReplaceAll(b, []byte(placeholder), []byte(value)))
}

// login takes the token from a form and sets it as a cookie the browser
// sends to this console only, never to scripts.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if s.token == "" || !sameSecret(strings.TrimSpace(r.PostFormValue("token")), s.token) {
		time.Sleep(500 * time.Millisecond) // slows guessing; the token has 256 bits anyway
		http.Error(w, "wrong token: copy it from the console token file the node printed at start", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// index is the page, with the CSRF token its scripts send back.
func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	servePage(w, "static/index.html", csrfMeta, s.csrf)
}

// checkCSRF refuses a state-changing request without the page's token:
// another site's page can make the browser send a POST here, but cannot
// read the token to put in the header.
func (s *Server) checkCSRF(r *http.Request) bool {
	t := r.Header.Get(csrfHeader)
	return t != "" && sameSecret(t, s.csrf)
}

func htmlEscape(v string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(v)
}

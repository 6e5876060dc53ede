package console

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testpki"
	"github.com/latticed/latticed/lattice"
)

// newConsole starts a console on a real NATS server (no host answers: the
// security rules come before any control command) and stops it at cleanup.
func newConsole(t *testing.T, addr string, token bool, dataDir string, logs io.Writer) (*Server, error) {
	t.Helper()
	return newConsoleOpts(t, Options{Addr: addr, DataDir: dataDir, Token: token}, logs)
}

// newConsoleOpts is newConsole with every option the caller's, less the
// lattice connection it makes.
func newConsoleOpts(t *testing.T, opts Options, logs io.Writer) (*Server, error) {
	t.Helper()
	nc := testenv.Connect(t, testenv.NATS(t))
	if logs == nil {
		logs = io.Discard
	}
	opts.Control, opts.Events, opts.EventSubject = ctlclient.New(nc, lattice.DefaultCtlTopicPrefix, "default"), nc, lattice.Events("default")
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, nil
}

func TestConsoleOffLoopbackNeedsToken(t *testing.T) {
	dir := t.TempDir()
	cert, key := testpki.NewCA(t, "server-ca").IssueFiles(t, dir, testpki.Server, "console", "127.0.0.1")
	clientCA := testpki.NewCA(t, "client-ca").WriteCA(t, dir)
	for _, tc := range []struct {
		addr    string
		token   bool
		tls     bool // certificate and key (HTTPS)
		certs   bool // client CAs: login by client certificate
		refused bool
	}{
		{addr: "127.0.0.1:0"},
		{addr: "localhost:0"},
		{addr: "0.0.0.0:0", refused: true},
		{addr: ":0", refused: true},
		{addr: "0.0.0.0:0", tls: true, refused: true}, // HTTPS alone is no login
		{addr: "0.0.0.0:0", token: true},
		{addr: "0.0.0.0:0", tls: true, certs: true},
		{addr: "0.0.0.0:0", token: true, tls: true, certs: true},
	} {
		name := tc.addr + map[bool]string{true: " token"}[tc.token] + map[bool]string{true: " https"}[tc.tls] + map[bool]string{true: " client-certs"}[tc.certs]
		t.Run(name, func(t *testing.T) {
			opts := Options{Addr: tc.addr, DataDir: t.TempDir(), Token: tc.token}
			if tc.tls {
				opts.CertFile, opts.KeyFile = cert, key
			}
			if tc.certs {
				opts.ClientCAFile = clientCA
			}
			_, err := newConsoleOpts(t, opts, nil)
			if tc.refused != errors.Is(err, ErrNeedsLogin) {
				t.Fatalf("New(%s) = %v; want refused=%v", name, err, tc.refused)
			}
			if !tc.refused && err != nil {
				t.Fatal(err)
			}
			if tc.refused && !strings.Contains(err.Error(), "LATTICED_CONSOLE_TLS_CLIENT_CA") {
				t.Errorf("the refusal does not name the client certificate setting: %v", err)
			}
		})
	}
}

// TLS files the console cannot use refuse it (it never falls back to
// plain HTTP), each with what is wrong.
func TestConsoleTLSFilesRefused(t *testing.T) {
	dir := t.TempDir()
	cert, key := testpki.NewCA(t, "server-ca").IssueFiles(t, dir, testpki.Server, "console", "127.0.0.1")
	notPEM := testpki.NotPEM(t, dir)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"client CAs without a certificate", Options{ClientCAFile: cert}, "needs both"},
		{"certificate without its key", Options{CertFile: cert}, "needs both"},
		{"key of another certificate", Options{CertFile: cert, KeyFile: cert}, "load the certificate"},
		{"client CA file without a certificate in it", Options{CertFile: cert, KeyFile: key, ClientCAFile: notPEM}, "holds no PEM certificate"},
		{"missing client CA file", Options{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "nope.pem")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Addr, tc.opts.DataDir = "127.0.0.1:0", t.TempDir()
			_, err := newConsoleOpts(t, tc.opts, nil)
			if !errors.Is(err, ErrTLSFiles) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v; want %v saying %q", err, ErrTLSFiles, tc.want)
			}
		})
	}
}

// Login by TLS client certificate: the console serves HTTPS (TLS ≥ 1.2)
// and every handshake must present a certificate of the configured CAs.
// Without one, or with one of another CA, or over TLS 1.1, the handshake
// fails before any HTTP; with one, the page loads and its actions still
// need the CSRF token.
func TestConsoleClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := testpki.NewCA(t, "server-ca"), testpki.NewCA(t, "client-ca"), testpki.NewCA(t, "other-ca")
	cert, key := serverCA.IssueFiles(t, dir, testpki.Server, "console", "127.0.0.1", "localhost")
	var logs bytes.Buffer
	s, err := newConsoleOpts(t, Options{Addr: "127.0.0.1:0", DataDir: dir, CertFile: cert, KeyFile: key, ClientCAFile: clientCA.WriteCA(t, dir)}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "https://") || !s.ClientCerts() {
		t.Fatalf("URL %s, client certificates %v; want https and true", s.URL(), s.ClientCerts())
	}
	// client presents its certificate whatever CAs the server names (Go's
	// client would otherwise send none that another CA issued), so the
	// server's verification is what refuses it.
	client := func(maxVersion uint16, certs ...tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: serverCA.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
		if len(certs) > 0 {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   string // in the client's error
	}{
		{"no client certificate", client(0), "certificate required"},
		{"no client certificate, TLS 1.2", client(tls.VersionTLS12), "handshake failure"},
		{"a certificate of another CA", client(0, otherCA.ClientCert(t, "mallory")), "unknown certificate authority"},
		{"TLS 1.1", client(tls.VersionTLS11, clientCA.ClientCert(t, "old")), "protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.client.Get(s.URL())
			if err == nil {
				res.Body.Close()
				t.Fatalf("GET / answered %d; want the handshake refused", res.StatusCode)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GET /: %v; want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("plain HTTP", func(t *testing.T) {
		res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || bytes.Contains(b, []byte("csrf")) {
			t.Errorf("plain HTTP: %d %q; want 400 and no page", res.StatusCode, b)
		}
	})

	t.Run("valid client certificate", func(t *testing.T) {
		c := client(0, clientCA.ClientCert(t, "alice"))
		csrf := pageCSRF(t, c, s.URL())
		// Past the CSRF check, {} lacks the link's fields.
		for token, want := range map[string]int{"": http.StatusForbidden, csrf: http.StatusBadRequest} {
			if got := postStatus(t, c, s.URL()+"api/links/put", token); got != want {
				t.Errorf("POST /api/links/put with CSRF token %v: %d, want %d", token != "", got, want)
			}
		}
	})
}

func TestConsoleTokenFile(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	s, err := newConsole(t, "127.0.0.1:0", true, dir, &logs)
	if err != nil {
		t.Fatal(err)
	}
	path := datadir.Path(dir, datadir.ConsoleTokenFile)
	if s.TokenPath() != path {
		t.Fatalf("TokenPath = %q, want %q", s.TokenPath(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %o, want 600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(b))
	if len(token) < 32 {
		t.Fatalf("token %d characters, want ≥ 32", len(token))
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the token is in the console's log")
	}

	// A restart keeps the token; one that others may read is refused.
	if s2, err := newConsole(t, "127.0.0.1:0", true, dir, nil); err != nil || s2.token != token {
		t.Fatalf("second start: err %v, same token %v", err, s2 != nil && s2.token == token)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newConsole(t, "127.0.0.1:0", true, dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("token file mode 644: err %v, want a refusal saying chmod 600", err)
	}
}

// pageCSRF loads the console's page (200) and returns its CSRF token.
func pageCSRF(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", url, res.StatusCode)
	}
	m := regexp.MustCompile(`<meta name="csrf-token" content="([A-Za-z0-9_-]{43})">`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("the page has no CSRF token:\n%s", page)
	}
	return string(m[1])
}

// postStatus POSTs {} to an action with the CSRF token ("" for none) and
// returns the status.
func postStatus(t *testing.T, c *http.Client, url, csrf string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set(csrfHeader, csrf)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func TestConsoleLogin(t *testing.T) {
	dir := t.TempDir()
	s, err := newConsole(t, "127.0.0.1:0", true, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect}
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		path string
		want int
	}{{"/", http.StatusSeeOther}, {"/api/state", http.StatusUnauthorized}, {"/api/events", http.StatusUnauthorized}, {"/login", http.StatusOK}} {
		res, err := c.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET %s without login: %d, want %d", tc.path, res.StatusCode, tc.want)
		}
	}
	res, err := c.PostForm(base+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d, want 401", res.StatusCode)
	}
	b, _ := os.ReadFile(s.TokenPath())
	res, err = c.PostForm(base+"/login", url.Values{"token": {strings.TrimSpace(string(b))}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == cookieName {
			cookie = ck
		}
	}
	if res.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d, cookie %+v; want 303 and an HttpOnly SameSite=Strict cookie", res.StatusCode, cookie)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.AddCookie(cookie)
	if res, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET / logged in: %d, want 200", res.StatusCode)
	}
}

// Every state-changing request needs the page's CSRF token: without it, or
// with another, it is refused before anything is sent to the lattice.
func TestConsoleCSRF(t *testing.T) {
	s, err := newConsole(t, "127.0.0.1:0", false, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	base := "http://" + s.Addr()
	csrf := pageCSRF(t, c, base+"/")
	for path := range s.actions() {
		for _, tc := range []struct {
			name, token string
			want        int
		}{
			{"none", "", http.StatusForbidden},
			{"wrong", strings.Repeat("A", 43), http.StatusForbidden},
			// Past the CSRF check, the empty body is the page's mistake.
			{"right", csrf, http.StatusBadRequest},
		} {
			if got := postStatus(t, c, base+"/api/"+path, tc.token); got != tc.want {
				t.Errorf("POST /api/%s with %s CSRF token: %d, want %d", path, tc.name, got, tc.want)
			}
		}
		// A GET changes nothing: actions answer POST only.
		res, err := c.Get(base + "/api/" + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /api/%s: %d, want 405", path, res.StatusCode)
		}
	}
}

// Without login, only loopback names reach the console: a rebound DNS name
// of another site would otherwise read the page and its CSRF token.
func TestConsoleRefusesOtherHostNames(t *testing.T) {
	s, err := newConsole(t, "127.0.0.1:0", false, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(s.Addr(), ":")
	c := &http.Client{Timeout: 10 * time.Second}
	for host, want := range map[string]int{
		"127.0.0.1:" + port: http.StatusOK, "localhost:" + port: http.StatusOK, "[::1]:" + port: http.StatusOK,
		"evil.example:" + port: http.StatusMisdirectedRequest, "evil.example": http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/", nil)
		req.Host = host
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET / with Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}
}

func TestHideSecrets(t *testing.T) {
	in := []lattice.LinkDefinition{{ActorID: "M1", Values: map[string]string{"port": "8080", "PASSWORD": "p", "api_token": "t", "bucket": "b"}}}
	out := hideSecrets(in)
	want := map[string]string{"port": "8080", "PASSWORD": hidden, "api_token": hidden, "bucket": "b"}
	for k, v := range want {
		if out[0].Values[k] != v {
			t.Errorf("value %s = %q, want %q", k, out[0].Values[k], v)
		}
	}
	if in[0].Values["PASSWORD"] != "p" {
		t.Error("hideSecrets changed its input")
	}
}

// FuzzFeedEvent: whatever arrives on the events subject, the feed sends
// one line of JSON or nothing, and never a link's secret value.
func FuzzFeedEvent(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/events/*.json")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"type":"x","data":{"values":{"password":"hunter2"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, ok := feedEvent(b)
		if !ok {
			return
		}
		if bytes.ContainsAny(out, "\r\n") {
			t.Fatalf("feed line has a line break: %q", out)
		}
		var ev lattice.CloudEvent
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatalf("feed line is not a CloudEvent: %v: %s", err, out)
		}
		var data struct {
			Values map[string]any `json:"values"`
		}
		if json.Unmarshal(ev.Data, &data) == nil {
			for k, v := range data.Values {
				if secretValue.MatchString(k) && v != hidden {
					t.Fatalf("link value %s passed: %s", k, out)
				}
			}
		}
	})
}

// With a token and client certificates, a client needs both: the
// certificate to connect, then the token (a Secure cookie over HTTPS).
func TestConsoleTokenAndClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := testpki.NewCA(t, "server-ca"), testpki.NewCA(t, "client-ca")
	cert, key := serverCA.IssueFiles(t, dir, testpki.Server, "console", "127.0.0.1")
	s, err := newConsoleOpts(t, Options{Addr: "127.0.0.1:0", DataDir: dir, Token: true, CertFile: cert, KeyFile: key, ClientCAFile: clientCA.WriteCA(t, dir)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsClient := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: serverCA.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}}}
	}
	if res, err := tlsClient().Get(s.URL()); err == nil {
		res.Body.Close()
		t.Fatalf("without a client certificate: %d; want the handshake refused", res.StatusCode)
	}
	c := tlsClient(clientCA.ClientCert(t, "alice"))
	for path, want := range map[string]int{"": http.StatusSeeOther, "api/state": http.StatusUnauthorized} {
		res, err := c.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET /%s with a certificate but no token: %d, want %d", path, res.StatusCode, want)
		}
	}
	b, _ := os.ReadFile(s.TokenPath())
	res, err := c.PostForm(s.URL()+"login", url.Values{"token": {strings.TrimSpace(string(b))}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cookies := res.Cookies()
	if res.StatusCode != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].Secure {
		t.Fatalf("login: %d, cookies %+v; want 303 and one Secure cookie", res.StatusCode, cookies)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL(), nil)
	req.AddCookie(cookies[0])
	if res, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET / with certificate and token: %d, want 200", res.StatusCode)
	}
}

package console

import (
	"bytes"
	"context"
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
	"github.com/latticed/latticed/lattice"
)

// newConsole starts a console on a real NATS server (no host answers: the
// security rules come before any control command) and stops it at cleanup.
func newConsole(t *testing.T, addr string, token bool, dataDir string, logs io.Writer) (*Server, error) {
	t.Helper()
	nc := testenv.Connect(t, testenv.NATS(t))
	if logs == nil {
		logs = io.Discard
	}
	s, err := New(Options{Addr: addr, DataDir: dataDir, Token: token,
		Control: ctlclient.New(nc, lattice.DefaultCtlTopicPrefix, "default"), Events: nc, EventSubject: lattice.Events("default"),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
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
	for _, tc := range []struct {
		addr    string
		token   bool
		refused bool
	}{
		{addr: "127.0.0.1:0"},
		{addr: "localhost:0"},
		{addr: "0.0.0.0:0", refused: true},
		{addr: ":0", refused: true},
		{addr: "0.0.0.0:0", token: true},
	} {
		t.Run(tc.addr+map[bool]string{true: " with token", false: ""}[tc.token], func(t *testing.T) {
			_, err := newConsole(t, tc.addr, tc.token, t.TempDir(), nil)
			if tc.refused != errors.Is(err, ErrNeedsLogin) {
				t.Fatalf("New(%q, token=%v) = %v; want refused=%v", tc.addr, tc.token, err, tc.refused)
			}
			if !tc.refused && err != nil {
				t.Fatal(err)
			}
		})
	}
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
	res, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`<meta name="csrf-token" content="([A-Za-z0-9_-]{43})">`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("the page has no CSRF token:\n%s", page)
	}
	csrf := string(m[1])
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
			req, _ := http.NewRequest(http.MethodPost, base+"/api/"+path, strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set(csrfHeader, tc.token)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("POST /api/%s with %s CSRF token: %d, want %d", path, tc.name, res.StatusCode, tc.want)
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

package supervisor

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/internal/testing/testpki"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// The console of a real node with login by client certificate
// (LATTICED_CONSOLE_TLS_*): the node logs its https URL; a client without a
// certificate is refused in the handshake; one with a certificate of the
// configured CA loads the page and puts a link through the control
// interface (with the page's CSRF token), which the host then serves back.
func TestConsoleClientCertificateLogin(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := testpki.NewCA(t, "console-server-ca"), testpki.NewCA(t, "console-client-ca")
	cert, key := serverCA.IssueFiles(t, dir, testpki.Server, "console", "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	n := startNode(t, map[string]string{
		config.EnvConsoleAddr: addr, config.EnvConsoleTLSCert: cert, config.EnvConsoleTLSKey: key,
		config.EnvConsoleTLSClientCA: clientCA.WriteCA(t, dir),
	})
	base := "https://" + addr + "/"
	if n.s.ConsoleURL() != base || !strings.Contains(n.logs.String(), "login by client certificate") {
		t.Fatalf("console URL %q, want %q, and a log line saying the login is by client certificate:\n%s", n.s.ConsoleURL(), base, tail(n.logs.String(), 40))
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: serverCA.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12}}}
	}

	if res, err := client().Get(base); err == nil {
		res.Body.Close()
		t.Fatalf("GET / without a client certificate: %d; want the handshake refused", res.StatusCode)
	} else if !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("GET / without a client certificate: %v; want tls: certificate required", err)
	}

	c := client(clientCA.ClientCert(t, "operator"))
	res, err := c.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`<meta name="csrf-token" content="([A-Za-z0-9_-]{43})">`).FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET / with a client certificate: %d, CSRF token found %v", res.StatusCode, m != nil)
	}

	kv, _ := builtin.Lookup("builtin:keyvalue")
	ak, err := trust.CreateKeyPair(lattice.KindModule)
	if err != nil {
		t.Fatal(err)
	}
	actor := ak.PublicKey()
	ld := lattice.LinkDefinition{ActorID: actor, ProviderID: kv.Key(), ContractID: kv.Contract, LinkName: "default"}
	body, _ := json.Marshal(ld)
	req, _ := http.NewRequest(http.MethodPost, base+"api/links/put", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", string(m[1]))
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("POST /api/links/put: %d %s", res.StatusCode, out)
	}
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		res, err := c.Get(base + "api/state")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var st struct {
			Links []lattice.LinkDefinition `json:"links"`
		}
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			return err
		}
		for _, l := range st.Links {
			if l.ActorID == actor && l.ProviderID == kv.Key() {
				return nil
			}
		}
		return errors.New("the link put through the console is not in /api/state yet")
	})
}

// `latticed up` refuses a console it cannot secure, with the reason and
// what to set: off loopback without a login (a configuration error, before
// anything listens), or with client CAs it cannot load (never a fallback to
// plain HTTP).
func TestUpRefusesConsoleWithoutLogin(t *testing.T) {
	dir := t.TempDir()
	cert, key := testpki.NewCA(t, "console-server-ca").IssueFiles(t, dir, testpki.Server, "console", "127.0.0.1")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"off loopback without a login", map[string]string{config.EnvConsoleAddr: "0.0.0.0:" + strconv.Itoa(testenv.FreePort(t))},
			[]string{"is not a loopback address", config.EnvConsoleToken + "=true", config.EnvConsoleTLSClientCA}},
		{"client CA file without a certificate", map[string]string{config.EnvConsoleAddr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
			config.EnvConsoleTLSCert: cert, config.EnvConsoleTLSKey: key, config.EnvConsoleTLSClientCA: testpki.NotPEM(t, dir)},
			[]string{"holds no PEM certificate", config.EnvConsoleTLSClientCA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := launchUp(t, tc.env)
			select {
			case <-u.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("latticed up still runs after 60s:\n%s", tail(u.stderr.String(), 40))
			}
			if code := u.cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("latticed up exited 0; want a failure")
			}
			for _, w := range tc.want {
				if !strings.Contains(u.stderr.String(), w) {
					t.Errorf("latticed up's error does not say %q:\n%s", w, tail(u.stderr.String(), 20))
				}
			}
		})
	}
}

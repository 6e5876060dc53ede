package supervisor

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/trust"
	"github.com/latticed/latticed/wire"
)

// updateScreenshot rewrites docs/console.png, the README's picture of the
// console, from this test's run.
var updateScreenshot = flag.Bool("update-screenshot", false, "write the console screenshot to docs/console.png")

// Where the screenshots go: LATTICED_TEST_ARTIFACTS when set (CI keeps that
// directory), else a directory under the system's temp dir, logged.
const envArtifacts = "LATTICED_TEST_ARTIFACTS"

// chromiumBin is Debian's chromium, which `make tools` installs. The test
// fails without it: a browser test that skips would hide that the console
// was never opened.
func chromiumBin(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run `make tools` (it installs Debian's chromium with apt-get)")
	return ""
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envArtifacts)
	if base == "" {
		base = filepath.Join(os.TempDir(), "latticed-test-artifacts")
	}
	dir := filepath.Join(base, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Secrets that must never reach the page: an nkey seed of any kind, and the
// markers of a .creds file or a JWT of a NATS user.
var (
	seedPattern  = regexp.MustCompile(`S[A-Z][A-Z2-7]{56}`)
	credsMarkers = []string{"BEGIN NATS USER JWT", "BEGIN USER NKEY SEED", "NKEY SEED", "-----BEGIN"}
)

// bodyRecorder keeps every response the browser received: the listener only
// notes the request (it may not run commands), the bodies are fetched after.
type bodyRecorder struct {
	mu       sync.Mutex
	urls     map[network.RequestID]string
	finished []network.RequestID
	sse      []string
}

func (r *bodyRecorder) listen(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventResponseReceived:
		r.urls[e.RequestID] = e.Response.URL
	case *network.EventLoadingFinished:
		r.finished = append(r.finished, e.RequestID)
	case *network.EventEventSourceMessageReceived:
		r.sse = append(r.sse, e.Data)
	}
}

// Issue 22.1: the console in a real browser against a real node: it shows
// the demo's actors and providers; scaling an actor, putting a link and
// revoking a provider each go through the control interface and arrive
// through the live feed without a reload; no response the browser got
// holds a seed or credentials.
func TestConsoleInBrowser(t *testing.T) {
	bin := chromiumBin(t)
	art := artifactsDir(t)
	dir := t.TempDir()
	echo := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/echo", trust.SignActorOptions{
		Name: "echo", CallAlias: "echo", Caps: []string{wire.ContractHTTPServer}, Ver: "0.1.0", Rev: 1})
	kvc := testenv.SignActor(t, dir, "github.com/latticed/latticed/actor/examples/kvcounter", trust.SignActorOptions{
		Name: "kvcounter", CallAlias: "kvcounter", Caps: []string{wire.ContractHTTPServer, wire.ContractKeyValue}, Ver: "0.1.0", Rev: 1})
	// examples/demo.yaml, with the test's modules and free ports.
	manifest := filepath.Join(dir, "demo.yaml")
	demo := fmt.Sprintf(`actors:
  - ref: %[1]s
  - ref: %[2]s
links:
  - actor: %[1]s
    provider: builtin:httpserver
    contract: wasmcloud:httpserver
    values: {port: "%[3]d"}
  - actor: %[2]s
    provider: builtin:httpserver
    contract: wasmcloud:httpserver
    values: {port: "%[4]d"}
  - actor: %[2]s
    provider: builtin:keyvalue
    contract: wasmcloud:keyvalue
providers:
  - ref: builtin:httpserver
  - ref: builtin:keyvalue
`, echo.Path, kvc.Path, testenv.FreePort(t), testenv.FreePort(t))
	if err := os.WriteFile(manifest, []byte(demo), 0o600); err != nil {
		t.Fatal(err)
	}
	consoleAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	u := startUp(t, map[string]string{config.EnvConsoleAddr: consoleAddr}, "--apply", manifest)
	if !strings.Contains(u.stderr.String(), "http://"+consoleAddr+"/") {
		t.Fatalf("the node's log does not say where the console is (http://%s/):\n%s", consoleAddr, tail(u.stderr.String(), 40))
	}
	kv, _ := builtin.Lookup("builtin:keyvalue")

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1300),
		chromedp.UserDataDir(t.TempDir()))...)
	t.Cleanup(cancelAlloc)
	rec := &bodyRecorder{urls: map[network.RequestID]string{}}
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithListener(rec.listen))
	t.Cleanup(cancelBrowser)
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	// run bounds each step; the browser lives as long as bctx.
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot(t, bctx, art, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
	}
	js := func(expr string) chromedp.Action[chromedp.Void] { return chromedp.Evaluate[chromedp.Void](expr) }
	// feedHas: an event of the type arrived through the live feed.
	feedHas := func(typ string) string {
		return fmt.Sprintf(`document.querySelector('#event-feed li[data-type=%q]') !== null`, typ)
	}

	run("open the console and see the demo",
		chromedp.Navigate("http://"+consoleAddr+"/"),
		js(`window.notReloaded = true`),
		wait(`document.getElementById('feed-status').textContent === 'live'`),
		wait(`document.querySelector('tr[data-name="echo"]') && document.querySelector('tr[data-name="kvcounter"]')`),
		wait(`document.querySelector('tr[data-name="kvcounter"] td.alias').textContent === 'kvcounter'`),
		wait(`document.querySelectorAll('#providers-table tr[data-state="running"]').length === 2`),
		wait(`document.querySelectorAll('#links-table tbody tr').length === 3`),
		wait(`document.querySelector('#providers-table tr[data-provider^="`+kv.Key()+`/"] td.user').textContent.startsWith('U')`),
		wait(`document.querySelector('#hosts-table tbody tr') !== null`),
	)
	shot(t, bctx, art, "1-demo")

	run("an action that fails shows the error",
		js(`(() => { const f = document.getElementById('start-actor');
			f.ref.value = 'file:///nonexistent/actor.wasm'; f.querySelector('button').click(); })()`),
		wait(`document.querySelector('#outcome [data-ok="false"]') !== null`),
		wait(`document.querySelector('#outcome').textContent.includes('nonexistent/actor.wasm')`),
	)

	run("scale echo to 3 instances",
		js(`document.getElementById('outcome').replaceChildren()`),
		js(`(() => { const f = document.querySelector('tr[data-name="echo"] form.scale');
			f.querySelector('input[name=count]').value = '3'; f.querySelector('button.scale-btn').click(); })()`),
		wait(`document.querySelector('#outcome [data-ok="true"]') !== null`),
		wait(`document.querySelector('tr[data-name="echo"] .instances').textContent.endsWith(': 3')`),
		wait(feedHas("actor_started")),
	)
	shot(t, bctx, art, "2-scaled")

	run("put a link from echo to the key-value provider",
		js(`document.getElementById('outcome').replaceChildren()`),
		js(fmt.Sprintf(`(() => { const f = document.getElementById('put-link');
			f.actor_id.value = %q; f.provider_id.value = %q; f.contract_id.value = %q; f.link_name.value = 'default';
			f.values.value = 'bucket=console,password=hunter2'; f.querySelector('button').click(); })()`, echo.Key, kv.Key(), wire.ContractKeyValue)),
		wait(`document.querySelector('#outcome [data-ok="true"]') !== null`),
		wait(feedHas("linkdef_set")),
		wait(fmt.Sprintf(`document.querySelector('#links-table tr[data-link=%q]') !== null`, echo.Key+"|"+wire.ContractKeyValue+"|default")),
	)
	shot(t, bctx, art, "3-linked")

	// A second link, deleted again: delete goes through the control interface too.
	run("put and delete a link from echo to the key-value provider under link name spare",
		js(`document.getElementById('outcome').replaceChildren()`),
		js(fmt.Sprintf(`(() => { const f = document.getElementById('put-link');
			f.actor_id.value = %q; f.provider_id.value = %q; f.contract_id.value = %q; f.link_name.value = 'spare';
			f.values.value = ''; f.querySelector('button').click(); })()`, echo.Key, kv.Key(), wire.ContractKeyValue)),
		wait(fmt.Sprintf(`document.querySelector('#links-table tr[data-link=%q]') !== null`, echo.Key+"|"+wire.ContractKeyValue+"|spare")),
		js(`document.getElementById('outcome').replaceChildren()`),
		js(fmt.Sprintf(`document.querySelector('#links-table tr[data-link=%q] button.delete-link-btn').click()`, echo.Key+"|"+wire.ContractKeyValue+"|spare")),
		wait(`document.querySelector('#outcome [data-ok="true"]') !== null`),
		wait(feedHas("linkdef_deleted")),
		wait(fmt.Sprintf(`document.querySelector('#links-table tr[data-link=%q]') === null`, echo.Key+"|"+wire.ContractKeyValue+"|spare")),
	)

	run("revoke the key-value provider",
		js(`document.getElementById('outcome').replaceChildren()`),
		js(`document.querySelector('#providers-table tr[data-provider^="`+kv.Key()+`/"] button.revoke-btn').click()`),
		wait(`document.querySelector('#outcome [data-ok="true"]') !== null`),
		wait(feedHas("provider_revoked")),
		wait(`document.querySelector('#providers-table tr[data-provider^="`+kv.Key()+`/"]').dataset.state === 'revoked'`),
		wait(`window.notReloaded === true`),
	)
	png := shot(t, bctx, art, "4-revoked")
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join(testenv.ModuleRoot(t), "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// What the action did is what the node did: the supervisor saw the revocation.
	st, err := u.admin.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, p := range st.Providers {
		revoked = revoked || (p.ID == kv.Key() && p.State == "revoked")
	}
	if !revoked {
		t.Errorf("the supervisor does not list %s as revoked: %+v", kv.Key(), st.Providers)
	}

	// Every body the browser received, and every live-feed message.
	rec.mu.Lock()
	finished, sse := append([]network.RequestID(nil), rec.finished...), append([]string(nil), rec.sse...)
	urls := map[network.RequestID]string{}
	for k, v := range rec.urls {
		urls[k] = v
	}
	rec.mu.Unlock()
	if len(sse) == 0 {
		t.Error("the browser received no live-feed message")
	}
	scanned := 0
	for _, id := range finished {
		res, err := chromedp.Call(bctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
		if err != nil {
			continue // a body Chrome no longer keeps (a redirect, a preflight)
		}
		body := res.Body
		if res.Base64encoded {
			if body, err = base64.StdEncoding.DecodeString(string(res.Body)); err != nil {
				t.Fatal(err)
			}
		}
		scanned++
		checkNoSecrets(t, urls[id], string(body))
	}
	for i, m := range sse {
		checkNoSecrets(t, fmt.Sprintf("live-feed message %d", i), m)
	}
	if scanned < 4 {
		t.Errorf("scanned only %d response bodies; want the page, its script and style, and /api/state", scanned)
	}
	t.Logf("scanned %d response bodies and %d live-feed messages; screenshots in %s", scanned, len(sse), art)
}

func checkNoSecrets(t *testing.T, where, body string) {
	t.Helper()
	if m := seedPattern.FindString(body); m != "" {
		t.Errorf("%s holds what looks like a seed (%s…)", where, m[:4])
	}
	for _, mk := range credsMarkers {
		if strings.Contains(body, mk) {
			t.Errorf("%s holds %q", where, mk)
		}
	}
	if strings.Contains(body, "hunter2") {
		t.Errorf("%s shows a link's password value", where)
	}
}

// shot saves a full-page screenshot as a test artifact and returns it.
func shot(t *testing.T, ctx context.Context, dir, name string) []byte {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
	return png
}

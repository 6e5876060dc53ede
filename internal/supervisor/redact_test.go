package supervisor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestRedactorRemovesASecretInEachEncoding(t *testing.T) {
	kp, _ := trust.CreateKeyPair(lattice.KindService)
	seed := kp.Seed()
	r := newRedactor(seed, "short")
	cases := map[string]string{
		"raw":          "my seed is " + seed + ".",
		"hex":          "x" + hex.EncodeToString([]byte(seed)),
		"HEX":          strings.ToUpper(hex.EncodeToString([]byte(seed))),
		"json escaped": strings.Trim(string(mustJSON("\""+seed+"\n")), `"`),
	}
	for off := range 3 {
		data := append(bytes.Repeat([]byte("p"), off), seed+"tail"...)
		for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding,
			"raw std": base64.RawStdEncoding, "raw url": base64.RawURLEncoding} {
			cases[fmt.Sprintf("base64 %s at offset %d", name, off)] = enc.EncodeToString(data)
		}
	}
	for name, line := range cases {
		t.Run(name, func(t *testing.T) {
			got := string(r.redact([]byte(line)))
			if leak := findSeeds(got, []string{seed}); leak != "" || !strings.Contains(got, redactedSecret) {
				t.Fatalf("%q -> %q (leak: %s)", line, got, leak)
			}
		})
	}
	if got := string(r.redact([]byte("a short word stays"))); got != "a short word stays" {
		t.Fatalf("ordinary text changed: %q", got)
	}
}

// findSeeds looks for any of seeds (nil: anything shaped like an nkeys
// seed) in s, raw, or hidden in a base64 (either alphabet, any alignment) or
// hex run, and names the first form found. It is written independently of
// the redactor: it decodes, where the redactor encodes.
func findSeeds(s string, seeds []string) string {
	has := func(b []byte) string {
		if seeds == nil {
			if m := anySeed.Find(b); m != nil {
				return string(m[:4]) + "…"
			}
		}
		for _, seed := range seeds {
			if bytes.Contains(b, []byte(seed)) {
				return seed[:4] + "…"
			}
		}
		return ""
	}
	if f := has([]byte(s)); f != "" {
		return "raw " + f
	}
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/_-]{20,}`).FindAllString(s, -1) {
		std := strings.NewReplacer("-", "+", "_", "/").Replace(run)
		for skip := range 4 {
			body := std[skip:]
			body = body[:len(body)/4*4]
			if b, err := base64.StdEncoding.DecodeString(body); err == nil {
				if f := has(b); f != "" {
					return "base64 " + f
				}
			}
		}
	}
	for _, run := range regexp.MustCompile(`[0-9a-fA-F]{40,}`).FindAllString(s, -1) {
		for skip := range 2 {
			body := run[skip:]
			if b, err := hex.DecodeString(body[:len(body)/2*2]); err == nil {
				if f := has(b); f != "" {
					return "hex " + f
				}
			}
		}
	}
	return ""
}

// A provider that echoes its stdin (the HostData, with its NATS user seed
// and its signing seed) puts none of it into the node's log, in any form.
func TestProviderEchoingItsHostDataLeavesNoSecretInTheLog(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echoprovider")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/echoprovider").CombinedOutput(); err != nil {
		t.Fatalf("go build echoprovider: %v\n%s", err, out)
	}
	n := startNode(t, nil)
	ref := "file://" + bin
	n.launch(ref, "default", `{"note":"configuration the provider dumps"}`)
	testenv.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(n.logs.String(), "echo done") {
			return fmt.Errorf("the provider has not finished echoing")
		}
		return nil
	})
	// The provider may have been restarted (it never connects, so it fails
	// its health checks), each start with fresh seeds: look for any seed.
	logs := n.logs.String()
	var echoed int
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "provider V") {
			continue
		}
		echoed++
		// The log is JSON: look at the line and at every string it decodes to.
		texts := []string{line}
		var rec any
		if json.Unmarshal([]byte(line), &rec) == nil {
			texts = append(texts, stringsIn(rec)...)
		}
		for _, s := range texts {
			if leak := findSeeds(s, nil); leak != "" {
				t.Fatalf("the node log carries a seed (%s):\n%s", leak, line)
			}
		}
	}
	if echoed < 10 || !strings.Contains(logs, redactedSecret) {
		t.Fatalf("the provider's echo did not reach the log (%d lines)", echoed)
	}
}

// stringsIn lists every string in a decoded JSON value, keys included.
func stringsIn(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, stringsIn(x)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, x := range v {
			out = append(append(out, k), stringsIn(x)...)
		}
		return out
	}
	return nil
}

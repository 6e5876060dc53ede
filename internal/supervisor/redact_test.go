package supervisor

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
	"github.com/latticed/latticed/internal/testing/testenv"
)

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
			if leak := testenv.FindSeeds(s, nil); leak != "" {
				t.Fatalf("the node log carries a seed (%s):\n%s", leak, line)
			}
		}
	}
	if echoed < 10 || !strings.Contains(logs, child.RedactedSecret) {
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

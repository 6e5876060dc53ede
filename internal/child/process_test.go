package child

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/metrics"
	"github.com/latticed/latticed/internal/testing/testenv"
)

func TestChildOutputIsReemittedWithItsIdentityAndWithoutSeeds(t *testing.T) {
	var buf testenv.SyncBuffer
	w := &lineLogger{log: testenv.JSONLogger(&buf), child: "provider Vx/default", stream: "stderr"}
	seed := "SUAM5TQ6JHLW4SXOHFCZ3GTBUXG2SNWELWKWD4NLUFYJUBKTA2ZYNCXOXM"
	_, _ = w.Write([]byte(`{"time":"x","level":"WARN","msg":"careful","n":3,"bytes":2745600,"f":0.25}` + "\nplain text with " + seed + "\npart"))
	_, _ = w.Write([]byte("ial line\n"))
	w.flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d records: %s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "careful" || rec["child"] != "provider Vx/default" || rec["n"] != 3.0 || rec["time"] == "x" {
		t.Errorf("JSON line re-emitted as %v", rec)
	}
	if !strings.Contains(lines[0], `"bytes":2745600,`) || !strings.Contains(lines[0], `"f":0.25`) {
		t.Errorf("numbers not re-emitted with their digits: %s", lines[0])
	}
	if strings.Contains(buf.String(), seed) || !strings.Contains(lines[1], "[redacted seed]") {
		t.Errorf("seed not redacted: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"msg":"partial line"`) {
		t.Errorf("a line split across writes: %s", lines[2])
	}
}

// A child's metrics announcement is taken only for a loopback address.
func TestChildMetricsAnnouncementOnlyOnLoopback(t *testing.T) {
	var buf testenv.SyncBuffer
	var got []string
	w := &lineLogger{log: testenv.JSONLogger(&buf), child: "provider Vx/default", stream: "stderr", onAddr: func(a string) { got = append(got, a) }}
	for _, addr := range []string{"127.0.0.1:4123", "[::1]:4124", "10.0.0.1:80", "example.com:80", "127.0.0.1:0", "127.0.0.1"} {
		_, _ = w.Write([]byte(`{"level":"INFO","msg":"provider metrics listening","` + metrics.AnnounceKey + `":"` + addr + `"}` + "\n"))
	}
	if strings.Join(got, ",") != "127.0.0.1:4123,[::1]:4124" {
		t.Errorf("addresses taken: %v", got)
	}
}

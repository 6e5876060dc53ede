package child

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/latticed/latticed/internal/testing/testenv"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

func TestRedactorRemovesASecretInEachEncoding(t *testing.T) {
	kp, _ := trust.CreateKeyPair(lattice.KindService)
	seed := kp.Seed()
	r := newRedactor(seed, "short")
	escaped, _ := json.Marshal("\"" + seed + "\n")
	cases := map[string]string{
		"raw":          "my seed is " + seed + ".",
		"hex":          "x" + hex.EncodeToString([]byte(seed)),
		"HEX":          strings.ToUpper(hex.EncodeToString([]byte(seed))),
		"json escaped": strings.Trim(string(escaped), `"`),
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
			if leak := testenv.FindSeeds(got, []string{seed}); leak != "" || !strings.Contains(got, RedactedSecret) {
				t.Fatalf("%q -> %q (leak: %s)", line, got, leak)
			}
		})
	}
	if got := string(r.redact([]byte("a short word stays"))); got != "a short word stays" {
		t.Fatalf("ordinary text changed: %q", got)
	}
}

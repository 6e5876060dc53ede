package supervisor

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/testing/testenv"
)

// The built-in providers, each under its own minted user, serve a real
// request end to end: HTTP → httpserver → kvcounter actor → keyvalue
// (JetStream KV, through the provider role's scoped JetStream permissions).
func TestBuiltinProvidersServeARequestUnderTheirOwnUsers(t *testing.T) {
	n, _, port := kvcounterNode(t)
	var body string
	for want := 1; want <= 2; want++ {
		testenv.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d: %s", resp.StatusCode, b)
			}
			return nil
		})
		if !strings.Contains(body, fmt.Sprintf(`"counter":%d`, want)) {
			t.Fatalf("request %d: %s", want, body)
		}
	}
	if strings.Contains(n.logs.String(), "Permissions Violation") {
		t.Errorf("a permission violation was logged:\n%s", n.logs.String())
	}
}

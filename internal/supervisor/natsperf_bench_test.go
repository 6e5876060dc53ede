package supervisor

import (
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/testing/cpubench"
	"github.com/latticed/latticed/lattice"
)

// BenchmarkEmbeddedRequestReply is the embedded server's own cost per
// invocation: request/reply through a real server, the requester and the
// responder in this process (as the bench's crypto floor), once through a
// plain server (StartNATS, no auth, nats' default inboxes) and once through
// the node's operator-mode server (StartOperatorNATS) with the users the
// node path has: the requester is an admin user (the bench's node client,
// `latticed ctl call`), the responder the host's RPC user serving an actor
// subject and answering through allow_responses. No signing: only NATS.
// cpu-µs/op is this process's CPU (client, responder and server) per
// request; the difference between the two is the operator mode's.
//
//	go test ./internal/supervisor -run '^$' -bench EmbeddedRequestReply -count 6 | benchstat -
func BenchmarkEmbeddedRequestReply(b *testing.B) {
	const payloadSize = 512
	actor := "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"
	subject := lattice.RPCActor(lattice.DefaultLatticePrefix, actor)
	for _, mode := range []string{"plain", "operator"} {
		for _, c := range []int{1, 16} {
			b.Run(fmt.Sprintf("server=%s/c=%d", mode, c), func(b *testing.B) {
				requester, responder := serverConns(b, mode)
				sub, err := responder.Subscribe(subject, func(m *nats.Msg) {
					if err := m.Respond(m.Data); err != nil {
						b.Error(err)
					}
				})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = sub.Unsubscribe() })
				if err := responder.Flush(); err != nil {
					b.Fatal(err)
				}
				payload := make([]byte, payloadSize)
				// Warm: the connections' buffers and the server's caches.
				for range 200 {
					if _, err := requester.Request(subject, payload, 5*time.Second); err != nil {
						b.Fatal(err)
					}
				}
				cpu0 := cpubench.Process()
				b.ResetTimer()
				var wg sync.WaitGroup
				var next sync.Mutex
				left := b.N
				for range c {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							next.Lock()
							if left == 0 {
								next.Unlock()
								return
							}
							left--
							next.Unlock()
							if _, err := requester.Request(subject, payload, 5*time.Second); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64((cpubench.Process()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// serverConns starts a server of mode ("plain" or "operator") and returns a
// requester's and a responder's connection to it, closed with b.
func serverConns(b testing.TB, mode string) (requester, responder *nats.Conn) {
	b.Helper()
	dir := b.TempDir()
	e := EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"), MaxPayload: 1 << 20}
	connect := func(url string, opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	var s *server.Server
	switch mode {
	case "plain":
		var err error
		if s, err = StartNATS(e); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Shutdown)
		return connect(s.ClientURL()), connect(s.ClientURL())
	case "operator":
		keys, err := LoadOperatorKeys(dir)
		if err != nil {
			b.Fatal(err)
		}
		s, a, err := StartOperatorNATS(e, keys, Scope{LatticePrefix: lattice.DefaultLatticePrefix})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Shutdown)
		admin, err := a.Mint(RoleAdmin, "admin", Scope{})
		if err != nil {
			b.Fatal(err)
		}
		host, err := a.Mint(RoleHostRPC, "host-rpc", Scope{LatticePrefix: lattice.DefaultLatticePrefix})
		if err != nil {
			b.Fatal(err)
		}
		return connect(s.ClientURL(), nats.UserJWTAndSeed(admin.JWT, admin.Seed)),
			connect(s.ClientURL(), nats.UserJWTAndSeed(host.JWT, host.Seed), nats.CustomInboxPrefix(host.InboxPrefix))
	}
	b.Fatalf("unknown server mode %q", mode)
	return nil, nil
}

// TestServerGoroutinesCarryProfileLabel proves that a profile can tell the
// embedded server's CPU from its process's: the goroutines serving a client
// connection (read loops, started long after StartNATS returned) carry
// ProfileLabel, operator for the node's server and embedded for a plain one.
func TestServerGoroutinesCarryProfileLabel(t *testing.T) {
	for mode, want := range map[string]string{"plain": "embedded", "operator": "operator"} {
		t.Run(mode, func(t *testing.T) {
			requester, _ := serverConns(t, mode)
			if err := requester.Flush(); err != nil {
				t.Fatal(err)
			}
			var dump strings.Builder
			if err := pprof.Lookup("goroutine").WriteTo(&dump, 1); err != nil {
				t.Fatal(err)
			}
			label := fmt.Sprintf("# labels: {%q:%q}", ProfileLabel, want)
			for _, g := range strings.Split(dump.String(), "\n\n") {
				if strings.Contains(g, "server.(*client).readLoop") && strings.Contains(g, label) {
					return
				}
			}
			t.Fatalf("no goroutine in the server's client read loop carries %s:\n%s", label, dump.String())
		})
	}
}

package natsalive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/testing/testenv"
)

// freezer is a TCP proxy to a real server that can stop passing bytes in
// both directions, as a SIGSTOPped or partitioned server looks to a client:
// the connection stays open and nothing answers.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	wg     sync.WaitGroup
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.cond = sync.NewCond(&f.mu)
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) url() string { return "nats://" + f.ln.Addr().String() }

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, s)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(c, s)
		go f.pipe(s, c)
	}
}

// pipe copies src to dst, holding what it read while frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		f.mu.Lock()
		for f.frozen {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

func (f *freezer) set(frozen bool) {
	f.mu.Lock()
	f.frozen = frozen
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (f *freezer) close() {
	f.ln.Close()
	f.set(false)
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func TestWatcherTellsASilentServer(t *testing.T) {
	s := testenv.NATS(t)
	fr := newFreezer(t, s.Addr().String())
	// nats.go's own keepalive left slow: the watcher alone must notice.
	nc, err := nats.Connect(fr.url(), nats.PingInterval(time.Hour), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	k := config.Keepalive{Interval: 100 * time.Millisecond, Misses: 2}
	w := New(k)
	w.Add("test", nc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * k.Bound()):
			t.Error("Run did not return after its context ended")
		}
	}()

	ready := func() error { return w.Check() }
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, ready)
	// A healthy connection stays ready: probes keep it fresh.
	for range 10 {
		time.Sleep(k.Interval)
		if err := w.Check(); err != nil {
			t.Fatalf("healthy connection: %v", err)
		}
	}

	fr.set(true)
	frozenAt := time.Now()
	testenv.CheckFor(t, 10*k.Bound()+5*time.Second, 20*time.Millisecond, func() error {
		if err := w.Check(); err == nil || !strings.Contains(err.Error(), "NATS test connection has not heard from its server") {
			return fmt.Errorf("Check() = %v, want the silent server named", err)
		}
		return nil
	})
	t.Logf("unready %v after the server went silent (bound %v)", time.Since(frozenAt).Round(time.Millisecond), k.Bound())
	if !nc.IsConnected() {
		t.Fatal("the client noticed by itself; the test proves nothing about the watcher")
	}

	fr.set(false)
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, ready)

	s.Shutdown()
	testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if err := w.Check(); err == nil || !strings.Contains(err.Error(), "NATS test connection is ") {
			return fmt.Errorf("Check() = %v, want the disconnected connection named", err)
		}
		return nil
	})
}

// With Options, the client itself gives a silent server up (and would try
// the next of its list) within a few keepalive intervals.
func TestOptionsDropASilentServer(t *testing.T) {
	s := testenv.NATS(t)
	fr := newFreezer(t, s.Addr().String())
	k := config.Keepalive{Interval: 100 * time.Millisecond, Misses: 2}
	dropped := make(chan error, 1)
	nc, err := nats.Connect(fr.url(), append(Options(k),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case dropped <- err:
			default:
			}
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fr.set(true)
	at := time.Now()
	select {
	case err := <-dropped:
		if err != nats.ErrStaleConnection {
			t.Errorf("disconnected with %v, want %v", err, nats.ErrStaleConnection)
		}
		t.Logf("dropped %v after the server went silent", time.Since(at).Round(time.Millisecond))
	case <-time.After(10*k.Bound() + 5*time.Second):
		t.Fatal("the connection kept a silent server")
	}
}

func TestWaitConnected(t *testing.T) {
	s := testenv.NATS(t)
	url := s.ClientURL()
	s.Shutdown()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := WaitConnected(ctx, log, map[string]*nats.Conn{"rpc": nc}); err == nil || !strings.Contains(err.Error(), "NATS rpc connection") {
		t.Fatalf("WaitConnected with no server = %v, want an error naming the connection", err)
	}
	w := New(config.DefaultKeepalive)
	w.Add("rpc", nc)
	if err := w.Check(); err == nil || !strings.Contains(err.Error(), "NATS rpc connection is RECONNECTING") {
		t.Fatalf("Check of a connection that never connected = %v", err)
	}
}

// AddReconnectHandler adds to Connect's logging of a restored connection;
// it does not replace it, as SetReconnectHandler would.
func TestAddReconnectHandlerKeepsTheLogging(t *testing.T) {
	s := testenv.NATS(t)
	var logs testenv.SyncBuffer
	restored := make(chan struct{}, 1)
	nc, err := Connect(s.ClientURL(), config.NATSConn{}, "watched", testenv.JSONLogger(&logs), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	AddReconnectHandler(nc, func(*nats.Conn) { restored <- struct{}{} })
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-restored:
	case <-time.After(10 * time.Second):
		t.Fatal("the added handler was not called when the connection was restored")
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), `"msg":"NATS reconnected","conn":"watched"`) {
			return fmt.Errorf("the reconnect was not logged: %s", logs.String())
		}
		return nil
	})
}

// AddErrorHandler adds to Connect's logging of an asynchronous error (here
// a subscription falling behind, whose messages NATS drops); it does not
// replace it, as SetErrorHandler would.
func TestAddErrorHandlerKeepsTheLogging(t *testing.T) {
	s := testenv.NATS(t)
	var logs testenv.SyncBuffer
	slow := make(chan error, 1)
	nc, err := Connect(s.ClientURL(), config.NATSConn{}, "watched", testenv.JSONLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	AddErrorHandler(nc, func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if sub != nil && sub.Subject == "slow" {
			select {
			case slow <- err:
			default:
			}
		}
	})
	release := make(chan struct{})
	defer close(release)
	sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-release })
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(1, -1); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := nc.Publish("slow", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-slow:
		if !errors.Is(err, nats.ErrSlowConsumer) {
			t.Errorf("the added handler got %v, want %v", err, nats.ErrSlowConsumer)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the added handler was not called when the subscription fell behind")
	}
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), `"msg":"NATS async error","conn":"watched","subject":"slow"`) {
			return fmt.Errorf("the error was not logged: %s", logs.String())
		}
		return nil
	})
}

package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latticed/latticed/internal/child"
)

// TestHTTPTopologyFloorChildren starts the HTTP topology floor as the bench
// does (the responder and floor-httpd: real child processes of this
// executable, on a real embedded NATS server, over real HTTP), checks that
// floor-httpd answers with the echo's JSON through the responder, that a
// floor-httpd signing with a key the responder does not accept gets no
// answer through (502), that the CPU split names both children, and that
// both are gone once stopped.
func TestHTTPTopologyFloorChildren(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f := testFloors(t, 300*time.Millisecond, &Report{}, false)
	h, err := startHTTPFloor(ctx, f.client, f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			h.stop()
		}
	})
	for pid, want := range map[int]string{h.httpd.PID(): roleFloorHTTPD, h.responder.proc.PID(): roleFloor} {
		if got := procRole(pid); got != want {
			t.Errorf("procRole(pid %d) = %q, want %q", pid, got, want)
		}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 10; i++ {
		if err := httpEchoGet(c, h.url); err != nil {
			t.Fatalf("GET %d from floor-httpd: %v", i, err)
		}
	}

	// The responder verifies: floor-httpd signing with another key gets an
	// empty answer, which it turns into a 502.
	_, other, _ := ed25519.GenerateKey(nil)
	proc, url, err := startFloorHTTPD(ctx, f.ns.ClientURL(), h.responder.subject, other)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Terminate(floorResponderStop) })
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "bad reply") {
		t.Errorf("floor-httpd signing with a key the responder does not know: %s %q, want 502 with the bad reply", resp.Status, body)
	}
	proc.Terminate(floorResponderStop)

	h.stop()
	stopped = true
	for _, p := range []*child.Process{h.httpd, h.responder.proc, proc} {
		select {
		case <-p.Done():
		default:
			t.Fatalf("stop returned before child %d was reaped", p.PID())
		}
		if err := syscall.Kill(p.PID(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child pid %d after stop: kill(0) = %v, want ESRCH", p.PID(), err)
		}
	}
	split := treeCPUByRole()
	for _, role := range []string{roleFloor, roleFloorHTTPD} {
		if _, ok := split[role]; ok {
			t.Errorf("a %s is still in the process tree after stop", role)
		}
	}
}

// TestHTTPTopologyFloorCell measures the HTTP topology floor at c=4 as a
// run does: its rows are in the report after the floors', the split counts
// CPU in the bench process and in both children, and no child is left in
// the tree afterwards.
func TestHTTPTopologyFloorCell(t *testing.T) {
	rep := &Report{}
	f := testFloors(t, 500*time.Millisecond, rep, false)
	c, err := f.httpCell(4)
	if err != nil {
		t.Fatal(err)
	}
	if c.rps <= 0 || len(c.lat) == 0 || c.cpuPerCall <= 0 {
		t.Fatalf("HTTP topology floor cell: %v req/s, %d calls, %v µs CPU per call", c.rps, len(c.lat), c.cpuPerCall)
	}
	for _, role := range []string{roleBench, roleFloorHTTPD, roleFloor} {
		if c.cpuByRole[role] <= 0 {
			t.Errorf("HTTP topology floor CPU split %v: no CPU in %q", c.cpuByRole, role)
		}
	}
	rows := map[string]Row{}
	for _, r := range rep.Rows {
		rows[r.Name] = r
	}
	for _, name := range []string{
		"throughput c=4: " + cryptoFloorName, // the floors first: the rows' ratios are to them
		"http c=4: " + httpTopoFloorName + " vs crypto floor",
		"http c=4 p50: " + httpTopoFloorName,
		"http c=4 p99: " + httpTopoFloorName,
		"CPU per call http c=4: " + httpTopoFloorName + " (all processes)",
		"CPU per call http c=4: " + httpTopoFloorName + ": " + roleFloorHTTPD,
		"CPU per call http c=4: " + httpTopoFloorName + ": " + roleFloor,
	} {
		if r, ok := rows[name]; !ok || r.Value <= 0 {
			t.Errorf("row %q: %+v (present %v), want a positive value", name, r, ok)
		}
	}
	if again, err := f.httpCell(4); err != nil || again.rps != c.rps {
		t.Errorf("httpCell(4) again = %v req/s, %v: want the first measurement, not another", again.rps, err)
	}
	split := treeCPUByRole()
	for _, role := range []string{roleFloor, roleFloorHTTPD} {
		if _, ok := split[role]; ok {
			t.Errorf("a %s is still in the process tree after the cell", role)
		}
	}
}

// TestVsHTTPTopoFloorRows checks that each process of the real HTTP path
// is compared with its counterpart in the floor (provider with floor-httpd,
// host with the responder), and that a run without the floor adds nothing.
func TestVsHTTPTopoFloorRows(t *testing.T) {
	floor := cell{rps: 1000, cpuPerCall: 300, lat: []time.Duration{time.Millisecond},
		cpuByRole: map[string]float64{roleBench: 100, roleFloorHTTPD: 100, roleFloor: 100}}
	got := cell{rps: 500, cpuPerCall: 600, lat: []time.Duration{2 * time.Millisecond},
		cpuByRole: map[string]float64{roleBench: 150, roleHTTPProvider: 200, roleHost: 250}}
	ratios := map[string]float64{}
	for _, r := range vsHTTPTopoFloorRows(64, "p", got, floor) {
		ratios[r.Name] = r.Ratio
	}
	for name, want := range map[string]float64{
		"http c=64: p vs " + httpTopoShort:                                        0.5,
		"http c=64 p50: p vs " + httpTopoShort:                                    2,
		"CPU per call http c=64: p (all processes) vs " + httpTopoShort:           2,
		"CPU per call http c=64: p: " + roleBench + " vs " + httpTopoShort:        1.5,
		"CPU per call http c=64: p: " + roleHTTPProvider + " vs " + httpTopoShort: 2,
		"CPU per call http c=64: p: " + roleHost + " vs " + httpTopoShort:         2.5,
	} {
		if r, ok := ratios[name]; !ok || r != want {
			t.Errorf("row %q: ratio %v (present %v), want %v", name, r, ok, want)
		}
	}
	if len(ratios) != 6 {
		t.Errorf("%d rows, want 6: %v", len(ratios), ratios)
	}
	if rows := vsHTTPTopoFloorRows(64, "p", got, cell{}); rows != nil {
		t.Errorf("without the floor measured: %d rows, want none", len(rows))
	}
}

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/supervisor"
)

// The two floors every throughput row is compared with (and, in the runs
// with node rows, topoFloorName: topofloor.go; in the runs with HTTP rows,
// httpTopoFloorName: httpfloor.go).
const (
	rawFloorName    = "raw NATS request/reply"
	cryptoFloorName = "NATS + Ed25519 sign/verify"
)

// cell is one measured throughput cell.
type cell struct {
	rps        float64
	cpuPerCall float64 // µs
	lat        []time.Duration
	// cpuByRole splits cpuPerCall by process (measureTree only): µs per
	// call of each role.
	cpuByRole map[string]float64
}

// floorCell is the floors at one concurrency; topo is the zero cell when
// the run does not measure the topology floor.
type floorCell struct{ raw, crypto, topo cell }

// floors measures the raw and the crypto floor once per concurrency, on an
// embedded NATS server of their own in this process, and adds their rows to
// the report when it measures them: the in-process, node and HTTP rows of a
// run are all compared with the same figures. With topology it measures the
// topology floor too, on the same server, with its responder in a child
// process.
type floors struct {
	ns             *server.Server
	client, server *nats.Conn
	dur            time.Duration
	rep            *Report
	topology       bool
	at             map[int]floorCell
	// httpAt holds the HTTP topology floor (httpfloor.go) by concurrency.
	httpAt map[int]cell
}

func newFloors(tmp string, dur time.Duration, rep *Report, topology bool) (*floors, error) {
	ns, err := supervisor.StartNATS(supervisor.EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(tmp, "floors-js"), MaxPayload: 1 << 20})
	if err != nil {
		return nil, fmt.Errorf("floors: %w", err)
	}
	f := &floors{ns: ns, dur: dur, rep: rep, topology: topology, at: map[int]floorCell{}, httpAt: map[int]cell{}}
	if f.client, err = nats.Connect(ns.ClientURL()); err == nil {
		f.server, err = nats.Connect(ns.ClientURL())
	}
	if err != nil {
		f.close()
		return nil, fmt.Errorf("floors: %w", err)
	}
	return f, nil
}

func (f *floors) close() {
	for _, nc := range []*nats.Conn{f.client, f.server} {
		if nc != nil {
			nc.Close()
		}
	}
	f.ns.Shutdown()
}

// cell measures the floors at concurrency n the first time it is asked.
func (f *floors) cell(n int) (floorCell, error) {
	if c, ok := f.at[n]; ok {
		return c, nil
	}
	progress("floors at concurrency %d", n)
	var c floorCell
	for _, p := range []struct {
		name   string
		crypto bool
		dst    *cell
	}{{rawFloorName, false, &c.raw}, {cryptoFloorName, true, &c.crypto}} {
		call, stop, err := rawPath(f.client, f.server, p.crypto)
		if err != nil {
			return c, err
		}
		got, errs := measureCell(call, make([]byte, payloadSize), n, f.dur, processCPU)
		stop()
		if errs > 0 {
			return c, fmt.Errorf("%s at concurrency %d: %d errors", p.name, n, errs)
		}
		*p.dst = got
		f.rep.Rows = append(f.rep.Rows,
			Row{Name: fmt.Sprintf("throughput c=%d: %s", n, p.name), Value: got.rps, Unit: "req/s"},
			Row{Name: fmt.Sprintf("CPU per call c=%d: %s", n, p.name), Value: got.cpuPerCall, Unit: "µs"})
		if n == 1 {
			for _, q := range []float64{0.5, 0.99, 0.999} {
				f.rep.Rows = append(f.rep.Rows, Row{Name: fmt.Sprintf("latency c=1 p%s: %s", strconv.FormatFloat(q*100, 'f', -1, 64), p.name),
					Value: float64(quantile(got.lat, q).Microseconds()), Unit: "µs"})
			}
		}
	}
	if f.topology {
		got, err := measureTopoFloor(context.Background(), f.client, f.ns.ClientURL(), n, f.dur)
		if err != nil {
			return c, err
		}
		c.topo = got
		f.rep.Rows = append(f.rep.Rows, topoFloorRows(n, got, c.crypto)...)
	}
	f.at[n] = c
	return c, nil
}

// httpCell measures the HTTP topology floor at concurrency n the first
// time it is asked, after the floors at n (its rows compare it with the
// crypto floor).
func (f *floors) httpCell(n int) (cell, error) {
	if c, ok := f.httpAt[n]; ok {
		return c, nil
	}
	fl, err := f.cell(n)
	if err != nil {
		return cell{}, err
	}
	progress("%s at concurrency %d", httpTopoShort, n)
	got, err := measureHTTPTopoFloor(context.Background(), f.client, f.ns.ClientURL(), n, f.dur)
	if err != nil {
		return cell{}, err
	}
	f.httpAt[n] = got
	// The rows of a path across processes, as the real HTTP rows have.
	f.rep.Rows = append(f.rep.Rows, throughputRows("http", n, httpTopoFloorName, got, fl)...)
	return got, nil
}

// measureCell is load with CPU per call read from cpu (this process, or
// every process of the bench's tree) and the errors apart.
func measureCell(call func([]byte) error, payload []byte, n int, d time.Duration, cpu func() time.Duration) (cell, int64) {
	rps, lat, errs, used := measureWith(call, payload, n, d, 200, cpu)
	c := cell{rps: rps, lat: lat}
	if len(lat) > 0 {
		c.cpuPerCall = float64(used.Nanoseconds()) / 1000 / float64(len(lat))
	}
	return c, errs
}

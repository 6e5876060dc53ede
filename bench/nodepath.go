package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/latticed/latticed/lattice"
)

// nodeInstances is how many instances of each actor the node rows start:
// two per core, so that at every concurrency each core has an instance to
// run while another waits on NATS.
func nodeInstances() int { return 2 * runtime.NumCPU() }

// runNodePaths is -only node: the floors, then a real node's paths at each
// concurrency (a client outside the node, and HTTP ingress).
func runNodePaths(o options) error {
	return withFloorsAndNode(o, true, append(append([]int(nil), o.conc...), o.httpConc...), func(ctx context.Context, n *node, a *echoActors, f *floors, rep *Report) error {
		if err := benchNodePaths(ctx, o, n, a, f, rep); err != nil {
			return err
		}
		return benchHTTPPath(ctx, o, n, a, f, rep)
	})
}

// runHTTPPath is -only http: the floors, then the HTTP rows of a real node
// without its node rows (a profile of the node's processes then holds the
// HTTP path alone).
func runHTTPPath(o options) error {
	return withFloorsAndNode(o, false, o.httpConc, func(ctx context.Context, n *node, a *echoActors, f *floors, rep *Report) error {
		return benchHTTPPath(ctx, o, n, a, f, rep)
	})
}

// withFloorsAndNode is onlyNodeSection with the floors (the topology floor
// too with topology, and the HTTP topology floor at each -http-concurrency)
// and a started node, both stopped when section returns. The floors are
// measured at each of concs before the node starts, so that the node's idle
// children are not in the process tree whose CPU the topology floors count.
func withFloorsAndNode(o options, topology bool, concs []int, section func(ctx context.Context, n *node, a *echoActors, f *floors, rep *Report) error) error {
	return onlyNodeSection(o, func(tmp, bin string, a *echoActors, rep *Report) error {
		f, err := newFloors(tmp, o.dur, rep, topology)
		if err != nil {
			return err
		}
		defer f.close()
		for _, c := range concs {
			if _, err := f.cell(c); err != nil {
				return err
			}
		}
		// Both sections with it have HTTP rows.
		for _, c := range o.httpConc {
			if _, err := f.httpCell(c); err != nil {
				return err
			}
		}
		progress("starting a node (supervisor + host child)")
		n, err := startNode(bin, filepath.Join(tmp, "node"))
		if err != nil {
			return err
		}
		defer n.stop()
		return section(context.Background(), n, a, f, rep)
	})
}

// benchNodePaths measures invocations from a client outside the node, as
// `latticed ctl call` makes them but back to back: its own NATS connection
// with the node's admin credentials, signed invocations to the host child,
// to the Go echo and to the tiny echo (nodeInstances each, compiled), at each
// -concurrency. The actors are stopped afterwards.
func benchNodePaths(ctx context.Context, o options, n *node, a *echoActors, f *floors, rep *Report) error {
	nc, err := natsConnect(n)
	if err != nil {
		return fmt.Errorf("node client: %w", err)
	}
	defer nc.Close()
	count := nodeInstances()
	host := n.sup.HostID()
	actors := []struct{ name, path, key string }{
		{"Go echo", a.echoPath, a.mod.PublicKey()},
		{"tiny wat echo", a.tinyPath, a.tinyKey.PublicKey()},
	}
	for _, act := range actors {
		progress("node: starting %s x%d", act.name, count)
		compiled, err := compiledCount(n.cfg.MetricsAddr)
		if err != nil {
			return err
		}
		started, err := n.ctl.StartActor(ctx, host, lattice.StartActorCommand{ActorRef: "file://" + act.path, Count: count})
		if err != nil {
			return fmt.Errorf("node: start %s: %w", act.name, err)
		}
		if err := waitCompiled(n.cfg.MetricsAddr, compiled+1); err != nil {
			return fmt.Errorf("node: %s: %w", act.name, err)
		}
		// Stopped when the rows are done, and gone before the HTTP rows
		// apply the Go echo again.
		defer func(id string) {
			if n.ctl.StopActor(ctx, host, id, 0) == nil {
				_ = n.waitInstances(ctx, id, 0)
			}
		}(started.ActorID)
		if err := n.waitInstances(ctx, started.ActorID, count); err != nil {
			return err
		}
	}
	payload := make([]byte, payloadSize)
	for _, c := range o.conc {
		fl, err := f.cell(c)
		if err != nil {
			return err
		}
		progress("node paths at concurrency %d", c)
		for _, act := range actors {
			name := fmt.Sprintf("client -> node (host child) -> %s x%d", act.name, count)
			got, errs := measureTree(latticedPath(nc, n.cluster, host, act.key), payload, c, o.dur)
			if errs > 0 {
				return fmt.Errorf("node c=%d %s: %d errors", c, act.name, errs)
			}
			rep.Rows = append(rep.Rows, throughputRows("node", c, name, got, fl)...)
			rep.Rows = append(rep.Rows, vsTopoFloorRows("node", c, name, got, fl.topo)...)
		}
	}
	return nil
}

// throughputRows are the rows of a path measured across processes:
// requests/s and p50 against the crypto floor, p99, CPU per call of every
// process of the bench's tree against the crypto floor's, and that CPU per
// call split by process (the bench process, the host child, each provider
// child).
func throughputRows(kind string, c int, name string, got cell, fl floorCell) []Row {
	p50 := quantile(got.lat, 0.5)
	rows := []Row{
		{Name: fmt.Sprintf("%s c=%d: %s vs crypto floor", kind, c, name), Value: got.rps, Unit: "req/s", Ratio: got.rps / fl.crypto.rps, RatioTo: cryptoFloorName},
		{Name: fmt.Sprintf("%s c=%d p50: %s", kind, c, name), Value: float64(p50.Microseconds()), Unit: "µs",
			Ratio: float64(p50) / float64(max(quantile(fl.crypto.lat, 0.5), time.Microsecond)), RatioTo: cryptoFloorName + " p50"},
		{Name: fmt.Sprintf("%s c=%d p99: %s", kind, c, name), Value: float64(quantile(got.lat, 0.99).Microseconds()), Unit: "µs"},
		{Name: fmt.Sprintf("CPU per call %s c=%d: %s (all processes)", kind, c, name), Value: got.cpuPerCall, Unit: "µs",
			Ratio: got.cpuPerCall / fl.crypto.cpuPerCall, RatioTo: cryptoFloorName},
	}
	return append(rows, splitRows(fmt.Sprintf("CPU per call %s c=%d: %s", kind, c, name), got)...)
}

// benchHTTPPath applies the Go echo behind the httpserver provider and runs
// the HTTP rows once its code is compiled: the host answers from
// interpreted instances meanwhile, and a compile running during a cell
// would count as the host child's CPU per call.
func benchHTTPPath(ctx context.Context, o options, n *node, a *echoActors, f *floors, rep *Report) error {
	progress("HTTP path")
	compiled, err := compiledCount(n.cfg.MetricsAddr)
	if err != nil {
		return err
	}
	url, err := applyHTTPEcho(ctx, n, a.echoPath, nodeInstances())
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if err := waitCompiled(n.cfg.MetricsAddr, compiled+1); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	inv, size, err := captureHTTPInvocation(n.nc, n.cfg.LatticePrefix, a.mod.PublicKey(), url)
	if err != nil {
		return fmt.Errorf("http: capture one invocation: %w", err)
	}
	rep.Rows = append(rep.Rows, httpInvocationRows(inv, size)...)
	return benchHTTP(url, o.httpConc, o.dur, f, rep)
}

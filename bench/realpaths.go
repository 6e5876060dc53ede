package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runRealPaths is -only realpaths: one real node, the HTTP ingress rows and
// the node path (a client with the admin creds → host child → Go echo),
// each against the crypto floor measured over the node's own NATS server in
// the same run. With LATTICED_CPUPROFILE_DIR set, the host and provider
// children write CPU profiles (internal/cpuprofile); -cpuprofile covers
// this process: the client, the supervisor and its embedded NATS server.
func runRealPaths(o options) error {
	return onlyNodeSection(o, func(tmp, bin string, a *echoActors, rep *Report) error {
		ctx := context.Background()
		n, err := startNode(bin, filepath.Join(tmp, "node"))
		if err != nil {
			return err
		}
		defer n.stop()
		url, err := applyHTTPEcho(ctx, n, a.echoPath, runtime.NumCPU()*2)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		if err := waitCompiled(n.cfg.MetricsAddr, 1); err != nil {
			return err
		}
		server, err := natsConnect(n)
		if err != nil {
			return err
		}
		defer server.Close()
		payload := make([]byte, payloadSize)
		for _, c := range o.conc {
			floor, stop, err := rawPath(n.nc, server, true)
			if err != nil {
				return err
			}
			frps, flat, ferrs, fcpu := load(floor, payload, c, o.dur)
			stop()
			rep.Rows = append(rep.Rows, Row{Name: fmt.Sprintf("node c=%d CPU per call: crypto floor (all in the bench process)", c), Value: float64(fcpu.Microseconds()) / float64(max(len(flat), 1)), Unit: "µs"})
			before := childrenCPU()
			rps, lat, errs, cpu := load(latticedPath(n.nc, n.cluster, n.sup.HostID(), a.mod.PublicKey()), payload, c, o.dur)
			rep.Rows = append(rep.Rows, cpuRows(fmt.Sprintf("node c=%d", c), cpu, before, len(lat))...)
			if ferrs > 0 || errs > 0 {
				return fmt.Errorf("node c=%d: %d errors (floor: %d)", c, errs, ferrs)
			}
			rep.Rows = append(rep.Rows,
				Row{Name: fmt.Sprintf("node c=%d: NATS + Ed25519 sign/verify", c), Value: frps, Unit: "req/s"},
				Row{Name: fmt.Sprintf("node c=%d: admin client -> host child -> Go echo", c), Value: rps, Unit: "req/s", Ratio: rps / frps, RatioTo: "crypto floor"},
				Row{Name: fmt.Sprintf("node c=%d p99: admin client -> host child -> Go echo", c), Value: float64(quantile(lat, 0.99).Microseconds()), Unit: "µs"})
		}
		for _, c := range o.httpConc {
			floor, stop, err := rawPath(n.nc, server, true)
			if err != nil {
				return err
			}
			frps, _, _, _ := load(floor, payload, c, o.dur)
			stop()
			before, cpu0 := childrenCPU(), processCPU()
			rps, lat, errs := httpLoad(url, c, o.dur)
			rep.Rows = append(rep.Rows, cpuRows(fmt.Sprintf("http c=%d", c), processCPU()-cpu0, before, len(lat))...)
			if errs > 0 {
				return fmt.Errorf("http c=%d: %d errors", c, errs)
			}
			rep.Rows = append(rep.Rows,
				Row{Name: fmt.Sprintf("http c=%d: provider httpserver -> echo actor", c), Value: rps, Unit: "req/s", Ratio: rps / frps, RatioTo: "crypto floor"},
				Row{Name: fmt.Sprintf("http c=%d p50: provider httpserver -> echo actor", c), Value: float64(quantile(lat, 0.5).Microseconds()), Unit: "µs"},
				Row{Name: fmt.Sprintf("http c=%d p99: provider httpserver -> echo actor", c), Value: float64(quantile(lat, 0.99).Microseconds()), Unit: "µs"})
		}
		return nil
	})
}

// cpuRows are the CPU per call of this process (client, supervisor and its
// embedded NATS server) and of each child process since before.
func cpuRows(prefix string, self time.Duration, before map[string]time.Duration, calls int) []Row {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(calls, 1)) }
	rows := []Row{{Name: prefix + " CPU per call: bench process (client, supervisor, NATS)", Value: per(self), Unit: "µs"}}
	for name, d := range childrenCPU() {
		rows = append(rows, Row{Name: prefix + " CPU per call: child " + name, Value: per(d - before[name]), Unit: "µs"})
	}
	return rows
}

// childrenCPU is the user+system CPU time of this process's children, by
// their latticed subcommand ("host", "provider httpserver"), from /proc.
func childrenCPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses: state is
		// field 3, ppid 4, utime 14, stime 15 (proc(5)).
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 || f[1] != strconv.Itoa(self) {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		name := strings.Join(args[1:min(len(args), 3)], " ")
		out[name] += time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
	return out
}

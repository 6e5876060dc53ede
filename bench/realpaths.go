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
		// floor is the crypto floor over the node's NATS server at
		// concurrency c: requests/s, and its row of CPU per call.
		floor := func(c int) (float64, error) {
			call, stop, err := rawPath(n.nc, server, true)
			if err != nil {
				return 0, err
			}
			rps, lat, errs, cpu := load(call, payload, c, o.dur)
			stop()
			if errs > 0 {
				return 0, fmt.Errorf("crypto floor c=%d: %d errors", c, errs)
			}
			rep.Rows = append(rep.Rows,
				Row{Name: fmt.Sprintf("c=%d: NATS + Ed25519 sign/verify (crypto floor)", c), Value: rps, Unit: "req/s"},
				Row{Name: fmt.Sprintf("c=%d CPU per call: crypto floor (all in the bench process)", c), Value: float64(cpu.Microseconds()) / float64(max(len(lat), 1)), Unit: "µs"})
			return rps, nil
		}
		echo := latticedPath(n.nc, n.cluster, n.sup.HostID(), a.mod.PublicKey())
		for _, c := range o.conc {
			frps, err := floor(c)
			if err != nil {
				return err
			}
			before := childrenCPU()
			rps, lat, errs, cpu := load(echo, payload, c, o.dur)
			if errs > 0 {
				return fmt.Errorf("node c=%d: %d errors", c, errs)
			}
			prefix := fmt.Sprintf("node c=%d", c)
			rep.Rows = append(rep.Rows, pathRows(prefix, "admin client -> host child -> Go echo", rps, frps, lat)...)
			rep.Rows = append(rep.Rows, cpuRows(prefix, cpu, before, len(lat))...)
		}
		for _, c := range o.httpConc {
			frps, err := floor(c)
			if err != nil {
				return err
			}
			before, cpu0 := childrenCPU(), processCPU()
			rps, lat, errs := httpLoad(url, c, o.dur)
			if errs > 0 {
				return fmt.Errorf("http c=%d: %d errors", c, errs)
			}
			prefix := fmt.Sprintf("http c=%d", c)
			rep.Rows = append(rep.Rows, pathRows(prefix, "provider httpserver -> echo actor", rps, frps, lat)...)
			rep.Rows = append(rep.Rows, cpuRows(prefix, processCPU()-cpu0, before, len(lat))...)
		}
		return nil
	})
}

// pathRows are a path's requests/s against the crypto floor of the same
// run, and its latency percentiles.
func pathRows(prefix, path string, rps, floor float64, lat []time.Duration) []Row {
	rows := []Row{{Name: prefix + ": " + path, Value: rps, Unit: "req/s", Ratio: rps / floor, RatioTo: "crypto floor"}}
	for _, q := range []float64{0.5, 0.99} {
		rows = append(rows, Row{Name: fmt.Sprintf("%s p%.0f: %s", prefix, q*100, path), Value: float64(quantile(lat, q).Microseconds()), Unit: "µs"})
	}
	return rows
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

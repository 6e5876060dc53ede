package main

import (
	"encoding/binary"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: one second
// over sysconf(_SC_CLK_TCK), which the kernel hands every process as AT_CLKTCK
// in its auxiliary vector (USER_HZ, 100 on every architecture Go supports).
var clockTick = func() time.Duration {
	const atClkTck = 17
	// Entries are two native words; this reads 64-bit ones only.
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil && strconv.IntSize == 64 {
		for i := 0; i+16 <= len(b); i += 16 {
			if binary.NativeEndian.Uint64(b[i:]) == atClkTck {
				if hz := binary.NativeEndian.Uint64(b[i+8:]); hz > 0 {
					return time.Second / time.Duration(hz)
				}
			}
		}
	}
	return 10 * time.Millisecond
}()

// treeCPU is the user and system CPU time so far of this process (client,
// in-process supervisor with its embedded NATS server) and every live
// descendant of it (the node's host child and provider children): the CPU
// that the rows whose work happens in other processes divide by their calls.
func treeCPU() time.Duration {
	var total time.Duration
	for _, d := range treeCPUByRole() {
		total += d
	}
	return total
}

// Roles of the processes treeCPUByRole tells apart.
const (
	roleBench = "bench process (generator, supervisor, NATS)"
	roleHost  = "host child"
	roleOther = "other child"
	// providerRoleSuffix follows a provider's name (argv[2]) in its role.
	providerRoleSuffix = " provider child"
)

// treeCPUByRole is treeCPU split by process role: this process (roleBench),
// the host child (roleHost), each provider child ("<name> provider child")
// and anything else below them (roleOther). Children are told apart by the
// arguments the supervisor starts them with (`latticed host`, `latticed
// provider <name>`), so the split needs no pid bookkeeping from the node.
func treeCPUByRole() map[string]time.Duration {
	out := map[string]time.Duration{roleBench: processCPU()}
	children := map[int][]int{}
	ticks := map[int]int64{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, t, ok := procStat(pid)
		if !ok {
			continue // gone meanwhile, or not readable
		}
		children[ppid] = append(children[ppid], pid)
		ticks[pid] = t
	}
	queue := append([]int(nil), children[os.Getpid()]...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = append(queue[1:], children[pid]...)
		out[procRole(pid)] += time.Duration(ticks[pid]) * clockTick
	}
	return out
}

// procRole names a descendant process by its command line: argv[1] is the
// latticed subcommand the supervisor ran it with, or one of the bench's own
// hidden subcommands (the floors' children: benchChildren).
func procRole(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return roleOther
	}
	return roleOf(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"))
}

// roleOf is procRole on an argument vector.
func roleOf(argv []string) string {
	switch {
	case len(argv) >= 2 && argv[1] == "host":
		return roleHost
	case len(argv) >= 3 && argv[1] == "provider":
		return argv[2] + providerRoleSuffix
	case len(argv) >= 2 && argv[1] == floorResponderCmd:
		return roleFloor
	case len(argv) >= 2 && argv[1] == floorHTTPDCmd:
		return roleFloorHTTPD
	}
	return roleOther
}

// perCallByRole is the CPU per call, in µs, of each role between two
// treeCPUByRole samples over calls calls. A role only in the later sample
// (a child started meanwhile) counts from zero.
func perCallByRole(before, after map[string]time.Duration, calls int) map[string]float64 {
	out := make(map[string]float64, len(after))
	for role, d := range after {
		out[role] = float64((d - before[role]).Nanoseconds()) / 1000 / float64(calls)
	}
	return out
}

// rolesInOrder lists the roles of a split: the bench process, the host
// child, then the others by name, so that rows keep their order run to run.
func rolesInOrder(split map[string]float64) []string {
	rank := func(r string) int {
		switch r {
		case roleBench:
			return 0
		case roleHost:
			return 1
		case roleOther:
			return 3
		}
		return 2
	}
	roles := make([]string, 0, len(split))
	for r := range split {
		roles = append(roles, r)
	}
	sort.Slice(roles, func(i, j int) bool {
		if a, b := rank(roles[i]), rank(roles[j]); a != b {
			return a < b
		}
		return roles[i] < roles[j]
	})
	return roles
}

// splitRows are got's CPU per call by process, one row a role named
// "<prefix>: <role>": the split says which process the CPU goes to; its
// ratio is the role's share of all processes' CPU per call.
func splitRows(prefix string, got cell) []Row {
	var rows []Row
	for _, role := range rolesInOrder(got.cpuByRole) {
		v := got.cpuByRole[role]
		rows = append(rows, Row{Name: prefix + ": " + role, Value: v, Unit: "µs", Ratio: v / got.cpuPerCall, RatioTo: "all processes"})
	}
	return rows
}

// measureTree is measureCell with the CPU of every process of the bench's
// tree, also split per role (cell.cpuByRole).
func measureTree(call func([]byte) error, payload []byte, n int, d time.Duration) (cell, int64) {
	var samples []map[string]time.Duration // measureWith reads its clock twice: before and after
	c, errs := measureCell(call, payload, n, d, func() time.Duration {
		s := treeCPUByRole()
		samples = append(samples, s)
		var total time.Duration
		for _, v := range s {
			total += v
		}
		return total
	})
	if len(samples) == 2 && len(c.lat) > 0 {
		c.cpuByRole = perCallByRole(samples[0], samples[1], len(c.lat))
	}
	return c, errs
}

// procStat reads the parent pid and utime+stime (in clock ticks) of pid from
// /proc/<pid>/stat. The command name in parentheses may hold spaces, so the
// fields are counted from its closing parenthesis.
func procStat(pid int) (ppid int, ticks int64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return ppid, utime + stime, true
}

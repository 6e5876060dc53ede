package main

import (
	"encoding/binary"
	"os"
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
	total := processCPU()
	children := map[int][]int{}
	ticks := map[int]int64{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return total
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
		total += time.Duration(ticks[pid]) * clockTick
	}
	return total
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

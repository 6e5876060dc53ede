// Package cpubench reports the CPU time a benchmark's process spends per
// operation. On a machine whose cores other work shares, ns/op measures the
// wait for a core as much as the work; CPU time per operation does not.
package cpubench

import (
	"syscall"
	"testing"
	"time"
)

// Process is this process's user+system CPU time so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Measure runs f as b's measured loop and reports, besides ns/op, the
// process's CPU time per operation as "cpu-ns/op": the loop's own work and
// whatever it causes meanwhile (the garbage collector's, for one).
func Measure(b *testing.B, f func()) {
	b.Helper()
	start := Process()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64((Process()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

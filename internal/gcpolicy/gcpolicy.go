// Package gcpolicy sets the garbage collector of a process whose live heap
// is small but whose allocation rate is high (a provider child: each HTTP
// request allocates a few KiB that die with it): the heap may grow by a
// fixed headroom before the next collection instead of by what GOGC=100
// counts (the live heap, stacks and globals), so that the collector runs
// less often while the heap stays bounded (docs/operations.md, "Memory").
//
// Why: with a few MiB live, GOGC=100 collects every few MiB allocated,
// hundreds of times a second under HTTP load, and each cycle marks the heap
// and every goroutine's stack and makes the allocating goroutines assist
// (~9 µs of the httpserver provider's ~90 µs of CPU per request at c=64).
// A raised GOGC alone would grow the heap with what it holds (GOGC=400:
// five times), and a fixed memory limit would make the collector run
// back to back once a provider legitimately holds more (64 MiB request
// bodies by default, many at a time). A goal of live + max(scanned,
// headroom) costs at most the headroom more than GOGC=100 and never
// collects more often than it.
package gcpolicy

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// EnvGOGC is the Go runtime's own GOGC variable: when it is set the operator
// chose, and Start leaves the collector alone.
const EnvGOGC = "GOGC"

// ProviderHeadroom is how far a provider process's heap may grow before a
// collection while what GOGC=100 counts is smaller. Measured on the
// httpserver provider at HTTP c=64 (docs/operations.md, "Memory"): GC work
// per request ~9.5 µs at GOGC=100, ~2 µs with 16 MiB, ~1 µs with 32 MiB;
// peak RSS (VmHWM) 32–35, 42–47 and 60–64 MB. 16 MiB takes most of the
// gain for less than half the memory.
const ProviderHeadroom = 16 << 20

// basePercent is the collector's default, GOGC=100: the floor of the
// percent Start sets, so that it never collects more often than the
// default would.
const basePercent = 100

// The runtime metrics GOGC is a percentage of: the heap the last collection
// marked, and the stacks and globals it scans (the runtime's pacer grows
// the heap by GOGC% of all three, so a few MiB of goroutine stacks count as
// much as the heap).
var base = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// minHeap is the runtime's minimum heap goal at GOGC=100 (4 MiB), which it
// scales by GOGC: a percent from a scan smaller than this would put the goal
// far above live + headroom.
const minHeap = 4 << 20

// Percent is the GOGC that puts the next collection at about
// live + max(scanned, headroom), where scanned is what GOGC is a percentage
// of (base), and at least headroom (the runtime's minimum heap, scaled):
// 100 once scanned reaches headroom.
func Percent(scanned, headroom uint64) int {
	if scanned >= headroom {
		return basePercent
	}
	return int(headroom * basePercent / max(scanned, minHeap))
}

// Start keeps the collector's percent at Percent(what GOGC counts, headroom),
// adjusted after every collection, until ctx ends; the first collection
// after that restores GOGC=100. It does nothing and returns false when GOGC is set (lookup
// reads the environment) or headroom is 0. A GOMEMLIMIT the process has
// still applies on top: the runtime collects at whichever goal comes first.
func Start(ctx context.Context, headroom uint64, lookup func(string) (string, bool)) bool {
	if v, ok := lookup(EnvGOGC); (ok && v != "") || headroom == 0 {
		return false
	}
	t := &tuner{ctx: ctx, headroom: headroom, sample: make([]metrics.Sample, len(base))}
	for i, name := range base {
		t.sample[i].Name = name
	}
	t.adjust()
	t.arm()
	return true
}

// tuner re-reads the live heap after each collection. It owns no
// goroutine: a cleanup attached to an unreachable object runs once the
// collection that found it ends (on the runtime's cleanup goroutine), and
// attaches the next one, until ctx ends.
type tuner struct {
	ctx      context.Context
	headroom uint64
	sample   []metrics.Sample // used by one cleanup at a time
}

// sentinel is the object whose collection marks a cycle's end; 16 bytes
// with a pointer so that the tiny allocator does not batch it with others
// (a batched object may be freed late).
type sentinel struct {
	_ *byte
	_ uint64
}

func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		if t.ctx.Err() != nil {
			debug.SetGCPercent(basePercent)
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

func (t *tuner) adjust() {
	metrics.Read(t.sample)
	var scanned uint64
	for _, s := range t.sample {
		if s.Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metrics: keep the percent
		}
		scanned += s.Value.Uint64()
	}
	debug.SetGCPercent(Percent(scanned, t.headroom))
}

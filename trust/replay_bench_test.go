package trust

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Replay guard cost, measured the way an operator sees it: heap the guard
// holds per id the protection must remember (rate × retention), at a steady
// rate after the store has filled, with UUID-sized ids allocated per call as
// the decoder allocates them.
//
//	go test ./trust -run '^$' -bench ReplayGuard -benchtime 1x -benchmem

// replayID is an invocation id of the usual size (a UUID string), freshly
// allocated like the one an invocation decoder produces.
func replayID(i int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i, i>>16&0xffff, i&0xfff, i>>4&0xfff, i*2654435761)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkReplayGuardBytesPerID fills a guard with a steady stream of ids for
// three retention periods and reports the heap it holds divided by the ids a
// retention period must remember.
func BenchmarkReplayGuardBytesPerID(b *testing.B) {
	const window = time.Minute
	const perRetention = 500_000 // ids arriving within one retention period
	for b.Loop() {
		before := heapInUse()
		g := NewReplayGuard(window, DefaultReplayCapacity)
		t0 := time.Unix(1_800_000_000, 0)
		step := window / perRetention
		for i := range 3 * perRetention {
			if !g.Remember(replayID(i), t0.Add(time.Duration(i)*step)) {
				b.Fatalf("id %d refused", i)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/perRetention, "B/id")
		runtime.KeepAlive(g)
	}
}

// BenchmarkReplayGuardRemember is the time one new id costs at a steady
// 100,000 ids/s (the store holds ~6M ids once warm); the allocation is the
// id itself, as the decoder would make it.
func BenchmarkReplayGuardRemember(b *testing.B) {
	const window = time.Minute
	g := NewReplayGuard(window, DefaultReplayCapacity)
	t0 := time.Unix(1_800_000_000, 0)
	buf := []byte("6f1c2d3e-0000-4000-8000-")
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		id := string(strconv.AppendInt(buf, int64(i), 10))
		if !g.Remember(id, t0.Add(time.Duration(i)*10*time.Microsecond)) {
			b.Fatalf("id %d refused", i)
		}
		i++
	}
}

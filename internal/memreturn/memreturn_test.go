package memreturn

import (
	"context"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"
)

func TestCgroupMemoryMax(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  int64
		found bool
		err   string
	}{
		{"v2 in a container (own namespace)", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30, true, ""},
		{"v2 under systemd", map[string]string{
			"proc/self/cgroup": "0::/system.slice/latticed.service\n",
			"sys/fs/cgroup/system.slice/latticed.service/memory.max": "536870912\n"}, 512 << 20, true, ""},
		{"v2 unlimited", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "max\n"}, 0, false, ""},
		{"v1 limited", map[string]string{
			"proc/self/cgroup": "12:cpu,cpuacct:/\n5:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "268435456"}, 256 << 20, true, ""},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup": "5:memory:/\n", "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false, ""},
		{"no /proc", map[string]string{}, 0, false, ""},
		{"no limit file", map[string]string{"proc/self/cgroup": "0::/user.slice\n"}, 0, false, ""},
		{"garbage", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "lots\n"}, 0, false, "not a number of bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			got, found, err := cgroupMemoryMax(fsys)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || found != tc.found {
				t.Fatalf("got %d %v %v, want %d %v", got, found, err, tc.want, tc.found)
			}
		})
	}
}

func TestSetLimitFromCgroup(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	fsys := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")},
	}
	env := func(set bool) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if set && k == EnvGoMemLimit {
				return "900MiB", true
			}
			return "", false
		}
	}
	limit, reason, err := SetLimitFromCgroup(fsys, env(true))
	if err != nil || limit != 0 || !strings.Contains(reason, EnvGoMemLimit) || debug.SetMemoryLimit(-1) != prev {
		t.Fatalf("with GOMEMLIMIT set: %d %q %v; the operator's choice must stand", limit, reason, err)
	}
	limit, _, err = SetLimitFromCgroup(fsys, env(false))
	if err != nil || limit != 768<<20 || debug.SetMemoryLimit(-1) != 768<<20 {
		t.Fatalf("limit %d (runtime %d) %v, want 768 MiB", limit, debug.SetMemoryLimit(-1), err)
	}
}

// The returner frees once per burst of releases that crosses the threshold,
// not per release, and not more often than its interval.
func TestReturnerPacesReturns(t *testing.T) {
	var frees atomic.Int32
	r := New(10, 20*time.Millisecond, 2*time.Second)
	r.free = func() { frees.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	r.Released(5)
	time.Sleep(100 * time.Millisecond) // below the threshold: nothing to do
	if n := frees.Load(); n != 0 {
		t.Fatalf("%d returns below the threshold", n)
	}
	for range 20 { // a scale-down closing instances one by one
		r.Released(5)
	}
	waitFor(t, func() bool { return frees.Load() == 1 }, "the first return")
	r.Released(50)
	time.Sleep(100 * time.Millisecond) // within the interval of the first return
	if n := frees.Load(); n != 1 {
		t.Fatalf("%d returns within one interval, want 1", n)
	}
	waitFor(t, func() bool { return frees.Load() == 2 }, "the return after the interval")
	if r.Returns() != 2 {
		t.Fatalf("Returns() = %d, want 2", r.Returns())
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

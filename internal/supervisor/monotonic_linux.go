package supervisor

import "golang.org/x/sys/unix"

// monotonicMicros is CLOCK_MONOTONIC in microseconds, the clock systemd uses.
func monotonicMicros() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

//go:build !linux

package supervisor

import "time"

var processStart = time.Now()

// monotonicMicros approximates CLOCK_MONOTONIC where systemd does not run.
func monotonicMicros() int64 { return time.Since(processStart).Microseconds() }

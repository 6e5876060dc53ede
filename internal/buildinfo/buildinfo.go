// Package buildinfo holds the version and commit stamped into the binary at
// link time:
//
//	go build -ldflags '-X github.com/latticed/latticed/internal/buildinfo.Version=v1.2.3
//	                   -X github.com/latticed/latticed/internal/buildinfo.Commit=0123abcd'
//
// `make build` (and `make dist`, `make image`, which run it) set both. It is
// a leaf package of its own because -X needs one fixed import path, and the
// command, the host's control replies, metrics and telemetry all report it.
package buildinfo

import "runtime/debug"

// Set by the linker (-X). Unstamped builds report "dev" and, when the Go
// toolchain recorded it, the VCS revision (else "unknown").
var (
	Version = "dev"
	Commit  = ""
)

// GetCommit is Commit, else the VCS revision Go embedded at build time, else "unknown".
func GetCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

//go:build !linux

package child

import "syscall"

// childProcAttr puts a child in its own process group. Only Linux has a
// parent-death signal; elsewhere children may outlive a killed supervisor.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

package child

import "syscall"

// childProcAttr puts a child in its own process group (so the supervisor
// can signal it and everything it forked at once, and a terminal's ^C
// reaches only the supervisor, which stops children in order) and has the
// kernel kill it if the supervisor dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

package admin

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer refuses admin connections from other users (root excepted).
// The socket's 0600 mode already keeps them out; this holds even if the
// mode was loosened.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if uid := os.Getuid(); int(cred.Uid) != uid && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d is not %d", cred.Uid, uid)
	}
	return nil
}

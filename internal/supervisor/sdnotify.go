package supervisor

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// sd_notify states (systemd's sd_notify(3)); the unit is Type=notify.
const (
	notifyReady    = "READY=1"
	notifyStopping = "STOPPING=1"
)

// notifyReloading is RELOADING=1 with the monotonic timestamp systemd ≥ 253
// asks for (older versions ignore the field).
func notifyReloading() string {
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicMicros())
}

// notify tells systemd the node's state when it runs under a Type=notify unit
// (NOTIFY_SOCKET in the environment it was started with); elsewhere it does
// nothing. Failures are logged, never fatal: systemd's supervision is an
// extra, the node works without it.
func (s *Supervisor) notify(state string) {
	path := envValue(s.opts.Environ, "NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if strings.HasPrefix(path, "@") { // abstract socket
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, err = conn.Write([]byte(state))
		_ = conn.Close()
	}
	if err != nil {
		s.log.Warn("sd_notify failed", "state", strings.SplitN(state, "\n", 2)[0], "err", err)
	}
}

func envValue(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], name+"="); ok {
			return v
		}
	}
	return ""
}

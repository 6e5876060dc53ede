package memreturn

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// EnvGoMemLimit is the Go runtime's own soft memory limit variable; when it
// is set the operator chose, and the cgroup is not consulted.
const EnvGoMemLimit = "GOMEMLIMIT"

// LimitShare is the part of the cgroup's memory limit the process sets as its
// soft limit: the rest is for memory outside the Go heap (compiled wasm code,
// thread stacks) and, in a container, the node's other processes. 3/4 is the
// 768 MiB that docs/operations.md recommends for a 1 GiB limit.
const LimitShare = 0.75

// SetLimitFromCgroup sets the Go runtime's soft memory limit to LimitShare of
// the memory limit of the cgroup this process runs in, unless GOMEMLIMIT is
// set (lookup reads the environment) or there is no limit. root is the file
// system holding /proc and /sys (os.DirFS("/") in production). It returns the
// limit it set (0 for none), and why none was set.
func SetLimitFromCgroup(root fs.FS, lookup func(string) (string, bool)) (limit int64, reason string, err error) {
	if v, ok := lookup(EnvGoMemLimit); ok && v != "" {
		return 0, EnvGoMemLimit + " is set", nil
	}
	maxBytes, found, err := cgroupMemoryMax(root)
	if err != nil {
		return 0, "", err
	}
	if !found {
		return 0, "no cgroup memory limit", nil
	}
	limit = int64(float64(maxBytes) * LimitShare)
	debug.SetMemoryLimit(limit)
	return limit, "", nil
}

// noLimit is what cgroup v1 reports for an unlimited group (a page-rounded
// MaxInt64); anything this large means no limit.
const noLimit = math.MaxInt64 / 2

// cgroupMemoryMax reads the memory limit of this process's cgroup: cgroup v2
// (memory.max in the unified hierarchy) or v1 (memory.limit_in_bytes of the
// memory controller). Inside a container with its own cgroup namespace the
// path in /proc/self/cgroup is "/", and the limit is at the mount's root.
func cgroupMemoryMax(root fs.FS) (int64, bool, error) {
	data, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, false, nil // not Linux, or no /proc: nothing to follow
	}
	var candidates []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		p := strings.TrimPrefix(path.Clean(parts[2]), "/")
		switch {
		case parts[0] == "0" && parts[1] == "":
			candidates = append(candidates, path.Join("sys/fs/cgroup", p, "memory.max"), "sys/fs/cgroup/memory.max")
		case hasController(parts[1], "memory"):
			candidates = append(candidates, path.Join("sys/fs/cgroup/memory", p, "memory.limit_in_bytes"), "sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, c := range candidates {
		b, err := fs.ReadFile(root, c)
		if err != nil {
			continue // this layout does not apply here
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("cgroup memory limit in /%s: %q is not a number of bytes: %w", c, s, err)
		}
		if n <= 0 || n >= noLimit {
			return 0, false, nil
		}
		return n, true, nil
	}
	return 0, false, nil
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

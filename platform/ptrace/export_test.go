package ptrace

import "github.com/ringbox/ringbox/platform"

// stubPID returns the pid of the stub process behind as.
func stubPID(as platform.AddressSpace) int { return int(as.(*addressSpace).pid) }

// stubTID returns the tid of c's stub thread, or 0.
func stubTID(c platform.Context) int {
	if t := c.(*context).thread; t != nil {
		return int(t.tid)
	}
	return 0
}

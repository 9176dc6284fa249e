package ptrace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the x86-64 kernel's struct sigaction, the argument of
// rt_sigaction(2) (Linux: arch/x86/include/asm/signal.h with
// SA_RESTORER; the mask is one 64-bit word).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// saNoCldStop is SA_NOCLDSTOP (Linux: include/uapi/asm-generic/signal-defs.h).
const (
	saNoCldStop = 0x1
	sigIgn      = 1 // SIG_IGN
)

// quietTraceeStops adds SA_NOCLDSTOP to ringbox's SIGCHLD action.
//
// Every ptrace-stop of a stub thread notifies its tracer's process with
// SIGCHLD unless the action for SIGCHLD is SIG_IGN or has SA_NOCLDSTOP
// (Linux: kernel/signal.c:do_notify_parent_cldstop()). A C tracer leaves
// SIGCHLD at SIG_DFL and the kernel drops the signal at once; the Go
// runtime installs a handler for every signal, so each Switch would also
// pay for a signal frame, the runtime's handler and rt_sigreturn. With
// SA_NOCLDSTOP the handler stays for exits (os/exec and friends wait with
// wait4 and pidfds, not SIGCHLD) and stops cost nothing. Should the
// runtime reinstall the handler (signal.Notify(SIGCHLD)), the flag is
// lost and only speed suffers.
func quietTraceeStops() error {
	var act kernelSigaction
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGCHLD), 0,
		uintptr(unsafe.Pointer(&act)), unsafe.Sizeof(act.mask), 0, 0); e != 0 {
		return fmt.Errorf("rt_sigaction(SIGCHLD) read: %w", e)
	}
	if act.flags&saNoCldStop != 0 || act.handler == sigIgn {
		return nil
	}
	act.flags |= saNoCldStop
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGCHLD),
		uintptr(unsafe.Pointer(&act)), 0, unsafe.Sizeof(act.mask), 0, 0); e != 0 {
		return fmt.Errorf("rt_sigaction(SIGCHLD) write: %w", e)
	}
	return nil
}

package kernel

import (
	"golang.org/x/sys/unix"
)

func init() {
	register(unix.SYS_PROCESS_VM_READV, "process_vm_readv", sysProcessVMReadv, argInt, argHex, argInt, argHex, argInt, argHex)
	register(unix.SYS_PROCESS_VM_WRITEV, "process_vm_writev", sysProcessVMWritev, argInt, argHex, argInt, argHex, argInt, argHex)
}

func sysProcessVMReadv(t *Task, a *syscallArgs) (uint64, error) {
	return t.processVM(a, false)
}

func sysProcessVMWritev(t *Task, a *syscallArgs) (uint64, error) {
	return t.processVM(a, true)
}

// processVM implements process_vm_readv(2) and process_vm_writev(2):
// copies between the caller's memory and another process's, honouring
// page protections, with ptrace's attach check (Linux:
// mm/process_vm_access.c). A partial transfer returns the bytes moved;
// an error is returned only when nothing moved.
func (t *Task) processVM(a *syscallArgs, write bool) (uint64, error) {
	pid := int32(a.int(0))
	if a.u(5) != 0 {
		return 0, unix.EINVAL
	}
	local, _, err := readIovecs(t, a.u(1), a.int(2))
	if err != nil {
		return 0, err
	}
	remote, _, err := readIovecs(t, a.u(3), a.int(4))
	if err != nil {
		return 0, err
	}
	target := t.k.taskByTID(pid)
	if target == nil || target.mm == nil {
		return 0, unix.ESRCH
	}
	if err := t.ptraceMayAccess(target, ptraceModeAttach|ptraceModeRealCreds); err != nil {
		return 0, err
	}
	mm := target.mm
	var done uint64
	li, loff := 0, uint64(0)
	buf := make([]byte, 4096)
	for _, rv := range remote {
		roff := uint64(0)
		for roff < rv.len {
			for li < len(local) && loff == local[li].len {
				li, loff = li+1, 0
			}
			if li >= len(local) {
				return done, nil
			}
			n := min(rv.len-roff, local[li].len-loff, uint64(len(buf)))
			var moved int
			var cerr error
			if write {
				if cerr = t.CopyIn(local[li].base+loff, buf[:n]); cerr == nil {
					moved, cerr = mm.CopyOut(rv.base+roff, buf[:n])
				}
			} else {
				moved, cerr = mm.CopyIn(rv.base+roff, buf[:n])
				if moved > 0 {
					if err := t.CopyOut(local[li].base+loff, buf[:moved]); err != nil {
						cerr = err
						moved = 0
					}
				}
			}
			done += uint64(moved)
			roff += uint64(moved)
			loff += uint64(moved)
			if cerr != nil || uint64(moved) < n {
				if done == 0 {
					if cerr == nil {
						cerr = unix.EFAULT
					}
					return 0, cerr
				}
				// A fault in the remote range ends the transfer of this
				// iovec; Linux moves on to the next remote iovec.
				break
			}
		}
	}
	return done, nil
}

package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// Restartable sequences (rseq(2); Linux: kernel/rseq.c,
// include/uapi/linux/rseq.h). A registered thread's struct rseq always
// holds the vCPU it runs on; a critical section it is inside when it
// leaves user mode for anything but a system call (preemption, a fault,
// an exception) or before a signal handler runs is aborted: its
// instruction pointer moves to the section's abort handler.
//
// The cpu_id is written just before user code runs, by the platform's
// entry hook (platform.EntryNotifier); a platform without one does not
// offer rseq (ENOSYS, which the C libraries accept).

// struct rseq and struct rseq_cs offsets.
const (
	rseqCPUIDStartOff = 0
	rseqCPUIDOff      = 4
	rseqCSOff         = 8
	rseqNodeIDOff     = 20
	rseqMMCIDOff      = 24
	rseqOrigSize      = 32
	rseqAlign         = 32

	rseqCSSize            = 32
	rseqCSStartOff        = 8
	rseqCSPostCommitOff   = 16
	rseqCSAbortOff        = 24
	rseqFlagUnregister    = 1
	rseqCPUUninitialized  = 0xffffffff // RSEQ_CPU_ID_UNINITIALIZED (-1)
	rseqSigSize           = 4
	rseqMaxRegisteredSize = 1 << 12
)

// rseqState is a task's registration. Task goroutine only.
type rseqState struct {
	addr   uint64
	length uint32
	sig    uint32
	// cpu is the vCPU last written to the area, -1 for none.
	cpu int
	// check: the task left user mode in the middle of its code; a
	// critical section in progress must be aborted before it resumes.
	check bool
}

// rseqSupported reports whether the platform can keep cpu_id exact.
func (t *Task) rseqSupported() bool {
	_, ok := t.ctx.(platform.EntryNotifier)
	return ok
}

// installRseqHook gives the platform the entry hook (at task creation).
func (t *Task) installRseqHook() {
	if en, ok := t.ctx.(platform.EntryNotifier); ok {
		en.SetEntryHook(t.rseqOnEntry)
	}
}

// sysRseq implements rseq(2).
func sysRseq(t *Task, a *syscallArgs) (uint64, error) {
	addr, length, flags, sig := a.u(0), uint32(a.u(1)), a.int(2), uint32(a.u(3))
	if flags&^rseqFlagUnregister != 0 {
		return 0, unix.EINVAL
	}
	r := &t.rseq
	if flags&rseqFlagUnregister != 0 {
		if r.addr == 0 || addr != r.addr || length != r.length {
			return 0, unix.EINVAL
		}
		if sig != r.sig {
			return 0, unix.EPERM
		}
		var b [rseqOrigSize]byte
		binary.LittleEndian.PutUint32(b[rseqCPUIDOff:], rseqCPUUninitialized)
		t.CopyOut(addr, b[:rseqCSOff])
		*r = rseqState{}
		return 0, nil
	}
	if r.addr != 0 {
		if addr != r.addr || length != r.length {
			return 0, unix.EINVAL
		}
		if sig != r.sig {
			return 0, unix.EPERM
		}
		return 0, unix.EBUSY
	}
	if length < rseqOrigSize || length > rseqMaxRegisteredSize || addr%rseqAlign != 0 {
		return 0, unix.EINVAL
	}
	if !userRangeOK(addr, uint64(length)) {
		return 0, unix.EFAULT
	}
	if !t.rseqSupported() {
		return 0, unix.ENOSYS
	}
	*r = rseqState{addr: addr, length: length, sig: sig, cpu: -1}
	if err := t.rseqPrepare(); err != nil {
		*r = rseqState{}
		return 0, unix.EFAULT
	}
	return 0, nil
}

// rseqCPU is the cpu_id a task about to run on the vCPU of its last event
// would see.
func (t *Task) rseqCPU() int { return max(t.lastCPU, 0) }

// rseqPrepare makes sure the area is present and private before user code
// runs, writing the expected cpu_id: the entry hook then only has to
// store into a present page.
func (t *Task) rseqPrepare() error {
	r := &t.rseq
	if r.addr == 0 {
		return nil
	}
	cpu := t.rseqCPU()
	var b [rseqMMCIDOff + 4]byte
	if err := t.CopyIn(r.addr, b[:]); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[rseqCPUIDStartOff:], uint32(cpu))
	binary.LittleEndian.PutUint32(b[rseqCPUIDOff:], uint32(cpu))
	binary.LittleEndian.PutUint32(b[rseqNodeIDOff:], 0)
	binary.LittleEndian.PutUint32(b[rseqMMCIDOff:], uint32(cpu))
	if err := t.CopyOut(r.addr, b[:]); err != nil {
		return err
	}
	r.cpu = cpu
	return nil
}

// rseqOnEntry is the platform's entry hook: it stores the vCPU user code
// is about to run on.
func (t *Task) rseqOnEntry(cpu int) {
	r := &t.rseq
	if r.addr == 0 || cpu == r.cpu || cpu < 0 {
		return
	}
	ok := t.mm.storeU32Present(r.addr+rseqCPUIDStartOff, uint32(cpu)) &&
		t.mm.storeU32Present(r.addr+rseqCPUIDOff, uint32(cpu)) &&
		t.mm.storeU32Present(r.addr+rseqMMCIDOff, uint32(cpu))
	if ok {
		r.cpu = cpu
	} else {
		// TODO(ringbox): the area vanished between rseqPrepare and the
		// entry (another thread unmapped it); Linux would fault it in,
		// and the program then gets SIGSEGV.
		r.cpu = -1
	}
}

// rseqFixup aborts a critical section the task is inside (Linux:
// kernel/rseq.c:rseq_ip_fixup()). It returns false when the program's
// rseq data is invalid: Linux kills it with SIGSEGV.
func (t *Task) rseqFixup() bool {
	r := &t.rseq
	r.check = false
	if r.addr == 0 {
		return true
	}
	var pb [8]byte
	if err := t.CopyIn(r.addr+rseqCSOff, pb[:]); err != nil {
		return false
	}
	cs := binary.LittleEndian.Uint64(pb[:])
	if cs == 0 {
		return true
	}
	var b [rseqCSSize]byte
	if err := t.CopyIn(cs, b[:]); err != nil {
		return false
	}
	version := binary.LittleEndian.Uint32(b[0:])
	start := binary.LittleEndian.Uint64(b[rseqCSStartOff:])
	postCommit := binary.LittleEndian.Uint64(b[rseqCSPostCommitOff:])
	abort := binary.LittleEndian.Uint64(b[rseqCSAbortOff:])
	if version != 0 || start+postCommit < start || start+postCommit > arch.MaxUserAddress ||
		(abort-start < postCommit) {
		return false
	}
	clear(pb[:])
	rip := t.st.Regs.Rip
	if rip-start >= postCommit {
		// Outside the section: just clear rseq_cs.
		return t.CopyOut(r.addr+rseqCSOff, pb[:]) == nil
	}
	var sb [rseqSigSize]byte
	if abort < rseqSigSize || t.CopyIn(abort-rseqSigSize, sb[:]) != nil || binary.LittleEndian.Uint32(sb[:]) != r.sig {
		return false
	}
	t.st.Regs.Rip = abort
	return t.CopyOut(r.addr+rseqCSOff, pb[:]) == nil
}

// rseqFork is the child's registration after clone: threads register
// their own, a forked process keeps its parent's (Linux: rseq_fork()).
func (t *Task) rseqFork(child *Task, flags uint64) {
	if flags&unix.CLONE_VM != 0 {
		return
	}
	// The fork made the parent's area copy-on-write: rewrite it (and so
	// make it private again) before the parent runs on.
	t.rseq.cpu = -1
	child.rseq = t.rseq
	child.rseq.cpu = -1
	child.rseq.check = false
}

package kernel

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/kernel/seccomp"
)

// seccomp(2) for the tasks of the sandbox: the filters each task carries,
// what their verdicts do at system-call entry, and the calls that install
// them. The BPF itself is package seccomp.
//
// Linux: kernel/seccomp.c. As there, a task's filters form a chain from
// the newest to the oldest; a chain is never changed once built, so that
// children created by fork and clone share their parent's by pointer, and
// every filter of the chain runs on every system call.

// seccomp modes (include/uapi/linux/seccomp.h) and operations.
const (
	seccompModeDisabled = 0
	seccompModeStrict   = 1
	seccompModeFilter   = 2

	seccompSetModeStrict  = 0
	seccompSetModeFilter  = 1
	seccompGetActionAvail = 2
	seccompGetNotifSizes  = 3

	seccompFlagTsync        = 1 << 0
	seccompFlagLog          = 1 << 1
	seccompFlagSpecAllow    = 1 << 2
	seccompFlagNewListener  = 1 << 3
	seccompFlagTsyncESRCH   = 1 << 4
	seccompFlagWaitKillable = 1 << 5

	// sysSYS_SECCOMP is SIGSYS's si_code for a seccomp trap.
	sysSECCOMP = 1
	// maxErrno is MAX_ERRNO: SECCOMP_RET_ERRNO data above it is capped.
	maxErrno = 4095
)

// seccompFilter is one installed filter and, through prev, the filters
// installed before it.
type seccompFilter struct {
	prog *seccomp.Filter
	prev *seccompFilter
	// log: SECCOMP_FILTER_FLAG_LOG, log every action but ALLOW.
	log bool
	// count is the number of filters in the chain from here.
	count int
	// pathInsns is the chain's instruction count as Linux limits it
	// (seccomp.MaxPathInstructions).
	pathInsns int
	// notify is the user-notification state of a filter installed with
	// a listener, or nil.
	notify *seccompNotify
	// users counts the tasks whose chain includes the filter; a
	// listener reports POLLHUP at zero.
	users atomic.Int64
}

// adopt counts a new task using the chain from f.
func (f *seccompFilter) adopt() {
	for ; f != nil; f = f.prev {
		f.users.Add(1)
	}
}

// drop ends a task's use of the chain from f and wakes the listeners of
// filters nobody uses any more (Linux: __seccomp_filter_orphan()).
func (f *seccompFilter) drop() {
	for ; f != nil; f = f.prev {
		if f.users.Add(-1) == 0 && f.notify != nil {
			f.notify.q.Notify()
		}
	}
}

// isAncestorOf reports whether f is c or one of the filters c was built
// on (kernel/seccomp.c:is_ancestor()).
func (f *seccompFilter) isAncestorOf(c *seccompFilter) bool {
	if f == nil {
		return true
	}
	for ; c != nil; c = c.prev {
		if c == f {
			return true
		}
	}
	return false
}

// seccompState is a task's seccomp mode and filters. The task reads them
// on every system call without a lock; they change under the thread
// group's mu, by the task itself or by a sibling's TSYNC, which stores the
// filter before the mode.
type seccompState struct {
	mode   atomic.Int32
	filter atomic.Pointer[seccompFilter]
	// mu serializes changes of filter with release; released is set
	// when the task is gone.
	mu       sync.Mutex
	released bool
}

// replace gives the task the chain from f (counting the use) and ends
// its use of the old one; a released task keeps none.
func (s *seccompState) replace(f *seccompFilter) {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return
	}
	f.adopt()
	old := s.filter.Swap(f)
	s.mu.Unlock()
	old.drop()
}

// inheritTo copies the state into a new task's (kernel/fork.c:
// copy_seccomp()).
func (s *seccompState) inheritTo(c *seccompState) {
	f := s.filter.Load()
	f.adopt()
	c.filter.Store(f)
	c.mode.Store(s.mode.Load())
}

// release ends the task's use of its filters, at its exit.
//
// Divergence: Linux releases them when the task is reaped
// (release_task()), so a listener sees POLLHUP only after the wait.
func (s *seccompState) release() {
	s.mu.Lock()
	s.released = true
	f := s.filter.Swap(nil)
	s.mu.Unlock()
	f.drop()
}

// filterCount returns the number of filters, for /proc/<pid>/status.
func (s *seccompState) filterCount() int {
	if f := s.filter.Load(); f != nil {
		return f.count
	}
	return 0
}

// seccompData builds struct seccomp_data from the registers at the system
// call: the number as orig_rax holds it and the address after the syscall
// instruction (kernel/seccomp.c:populate_seccomp_data()).
func seccompData(r *arch.Registers) seccomp.Data {
	return seccomp.Data{
		Nr:                 int32(r.OrigRax),
		Arch:               seccomp.AuditArchX86_64,
		InstructionPointer: r.Rip,
		Args:               r.SyscallArgs(),
	}
}

// run runs every filter of the chain from f and returns the verdict that
// takes precedence and the filter that gave it (kernel/seccomp.c:
// seccomp_run_filters(): among equal actions the newest filter's data
// wins).
func (f *seccompFilter) run(d *seccomp.Data) (uint32, *seccompFilter) {
	ret := uint32(seccomp.RetAllow)
	var match *seccompFilter
	for ; f != nil; f = f.prev {
		if v := f.prog.Run(d); match == nil || seccomp.Precedes(v, ret) {
			ret, match = v, f
		}
	}
	return ret, match
}

// seccompVerdict is what seccompEnter decided for a system call.
type seccompVerdict int

const (
	// seccompRun: the call runs.
	seccompRun seccompVerdict = iota
	// seccompSkip: the call is not made; RAX holds its result.
	seccompSkip
	// seccompKill: the task exits.
	seccompKill
)

// seccompEnter applies the task's seccomp mode to the system call in its
// registers, after the syscall-enter stop (Linux >= 4.8: the tracer's
// changes are filtered too; kernel/entry/common.c:syscall_trace_enter()).
func (t *Task) seccompEnter() seccompVerdict {
	switch t.sc.mode.Load() {
	case seccompModeDisabled:
		return seccompRun
	case seccompModeStrict:
		if t.seccompSuspended() {
			return seccompRun
		}
		return t.seccompStrict()
	}
	if t.seccompSuspended() {
		return seccompRun
	}
	return t.seccompFilterCall(false)
}

// seccompSuspended reports PTRACE_O_SUSPEND_SECCOMP on the task.
func (t *Task) seccompSuspended() bool {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	return t.pt.tracer != nil && t.pt.options&unix.PTRACE_O_SUSPEND_SECCOMP != 0
}

// seccompStrict is SECCOMP_MODE_STRICT: read, write, exit and
// rt_sigreturn, anything else kills the thread with SIGKILL
// (kernel/seccomp.c:__secure_computing_strict()).
func (t *Task) seccompStrict() seccompVerdict {
	switch t.st.Regs.OrigRax {
	case unix.SYS_READ, unix.SYS_WRITE, unix.SYS_EXIT, unix.SYS_RT_SIGRETURN:
		return seccompRun
	}
	t.log.Info("seccomp strict mode: killed by a disallowed system call",
		zap.Uint64("nr", t.st.Regs.OrigRax), zap.String("name", SyscallName(t.st.Regs.OrigRax)))
	t.exitStatus = ExitStatus{Signal: unix.SIGKILL}
	return seccompKill
}

// seccompFilterCall runs the filters and carries out their verdict
// (kernel/seccomp.c:__seccomp_filter()). recheck is set when the call is
// filtered again after a tracer's PTRACE_EVENT_SECCOMP stop, where
// SECCOMP_RET_TRACE allows it.
func (t *Task) seccompFilterCall(recheck bool) seccompVerdict {
	r := &t.st.Regs
	d := seccompData(r)
	ret, match := t.sc.filter.Load().run(&d)
	action, data := ret&seccomp.RetActionFull, ret&seccomp.RetData
	if match != nil && match.log && action != seccomp.RetAllow {
		t.log.Info("seccomp filter verdict", zap.String("syscall", SyscallName(r.OrigRax)), zap.Uint32("ret", ret))
	}
	switch action {
	case seccomp.RetAllow, seccomp.RetLog:
		if action == seccomp.RetLog {
			t.log.Info("seccomp SECCOMP_RET_LOG", zap.String("syscall", SyscallName(r.OrigRax)))
		}
		return seccompRun
	case seccomp.RetErrno:
		r.Rax = negErrno(unix.Errno(min(data, maxErrno)))
		t.syscallReturned = true
		return seccompSkip
	case seccomp.RetTrap:
		// The registers show the call as made (syscall_rollback():
		// RAX holds the number again), and SIGSYS names it.
		r.Rax = r.OrigRax
		info := &arch.SignalInfo{Signo: int32(unix.SIGSYS), Errno: int32(data), Code: sysSECCOMP}
		info.SetSigsys(r.Rip, int32(r.OrigRax), seccomp.AuditArchX86_64)
		t.forceSignalInfo(info)
		return seccompSkip
	case seccomp.RetUserNotif:
		return t.seccompUserNotif(match, &d)
	case seccomp.RetTrace:
		if recheck {
			return seccompRun
		}
		if !t.ptraceEvent(unix.PTRACE_EVENT_SECCOMP, unix.PTRACE_O_TRACESECCOMP, uint64(data)) {
			// No tracer asked for the event.
			r.Rax = negErrno(unix.ENOSYS)
			return seccompSkip
		}
		if t.killed.Load() {
			return seccompSkip
		}
		if int64(r.OrigRax) < 0 {
			// The tracer skipped the call; RAX is its result.
			return seccompSkip
		}
		// The tracer may have changed the call: filter it again.
		if v := t.seccompFilterCall(true); v != seccompRun {
			return v
		}
		return seccompRun
	}
	// KILL_THREAD, KILL_PROCESS and unknown actions.
	t.log.Info("seccomp filter killed the task", zap.String("syscall", SyscallName(r.OrigRax)), zap.Uint32("ret", ret))
	r.Rax = r.OrigRax
	t.tg.mu.Lock()
	last := len(t.tg.tasks) == 1
	t.tg.mu.Unlock()
	if action == seccomp.RetKillThread && !last {
		t.exitStatus = ExitStatus{Signal: unix.SIGSYS}
		return seccompKill
	}
	// SIGSYS with its default action forced: the whole group dies, as
	// from a core dump (ringbox writes none).
	t.groupExit(ExitStatus{Signal: unix.SIGSYS})
	return seccompKill
}

// seccompSetMode implements SECCOMP_SET_MODE_STRICT and
// SECCOMP_SET_MODE_FILTER (kernel/seccomp.c:seccomp_set_mode_strict() and
// seccomp_set_mode_filter()).
func (t *Task) seccompSetMode(op int, flags, uargs uint64) (uint64, error) {
	if op == seccompSetModeStrict {
		if flags != 0 || uargs != 0 {
			return 0, unix.EINVAL
		}
		tg := t.tg
		tg.mu.Lock()
		defer tg.mu.Unlock()
		if m := t.sc.mode.Load(); m != seccompModeDisabled && m != seccompModeStrict {
			return 0, unix.EINVAL
		}
		t.sc.mode.Store(seccompModeStrict)
		return 0, nil
	}

	const known = seccompFlagTsync | seccompFlagLog | seccompFlagSpecAllow | seccompFlagNewListener |
		seccompFlagTsyncESRCH | seccompFlagWaitKillable
	if flags&^known != 0 {
		return 0, unix.EINVAL
	}
	if flags&seccompFlagTsync != 0 && flags&seccompFlagNewListener != 0 && flags&seccompFlagTsyncESRCH == 0 {
		return 0, unix.EINVAL
	}
	if flags&seccompFlagWaitKillable != 0 && flags&seccompFlagNewListener == 0 {
		return 0, unix.EINVAL
	}
	prog, err := t.copyInFilter(uargs)
	if err != nil {
		return 0, err
	}
	f := &seccompFilter{prog: prog, log: flags&seccompFlagLog != 0, count: 1, pathInsns: prog.Len()}
	var listener *seccompListener
	if flags&seccompFlagNewListener != 0 {
		f.notify = &seccompNotify{killable: flags&seccompFlagWaitKillable != 0}
		listener = &seccompListener{f: f}
		listener.initRefs()
		listener.flags.Store(unix.O_RDWR)
	}
	ret, err := t.seccompAttach(f, flags)
	if err != nil || listener == nil {
		return ret, err
	}
	// The descriptor is installed once the filter is (Linux reserves
	// the number first: an EMFILE there leaves no filter behind, here
	// the filter stays; a corner a program cannot rely on).
	fd, err := t.fdt.newFD(listener, 0, true, t.fileLimit())
	if err != nil {
		listener.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

// seccompAttach installs f on the task, and with TSYNC on its whole
// thread group (kernel/seccomp.c:seccomp_attach_filter()).
func (t *Task) seccompAttach(f *seccompFilter, flags uint64) (uint64, error) {
	tg := t.tg
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if m := t.sc.mode.Load(); m != seccompModeDisabled && m != seccompModeFilter {
		return 0, unix.EINVAL
	}
	prev := t.sc.filter.Load()
	if f.notify != nil {
		// One listener per chain (has_duplicate_listener()).
		for p := prev; p != nil; p = p.prev {
			if p.notify != nil {
				return 0, unix.EBUSY
			}
		}
	}
	f.prev = prev
	if prev != nil {
		f.count += prev.count
		f.pathInsns += prev.pathInsns + seccomp.PathPenalty
	}
	if f.pathInsns > seccomp.MaxPathInstructions {
		return 0, unix.ENOMEM
	}
	if flags&seccompFlagTsync != 0 {
		// Every other thread must have no filter or an ancestor of
		// ours (kernel/seccomp.c:seccomp_can_sync_threads()).
		for _, o := range tg.tasks {
			if o == t || o.killed.Load() {
				continue
			}
			m := o.sc.mode.Load()
			if m == seccompModeDisabled || m == seccompModeFilter && o.sc.filter.Load().isAncestorOf(prev) {
				continue
			}
			if flags&seccompFlagTsyncESRCH != 0 {
				return 0, unix.ESRCH
			}
			return uint64(o.tid), nil
		}
	}
	t.sc.replace(f)
	t.sc.mode.Store(seccompModeFilter)
	if flags&seccompFlagTsync != 0 {
		// kernel/seccomp.c:seccomp_sync_threads().
		nnp := t.noNewPrivs.Load()
		for _, o := range tg.tasks {
			if o == t || o.killed.Load() {
				continue
			}
			o.sc.replace(f)
			if nnp {
				o.noNewPrivs.Store(true)
			}
			o.sc.mode.Store(seccompModeFilter)
		}
	}
	return 0, nil
}

// copyInFilter reads and checks the struct sock_fprog at addr, in Linux's
// order: the length (EINVAL), the right to install (EACCES without
// no_new_privs or CAP_SYS_ADMIN), the instructions (EFAULT), their checks
// (EINVAL) (kernel/seccomp.c:seccomp_prepare_user_filter()).
func (t *Task) copyInFilter(addr uint64) (*seccomp.Filter, error) {
	var hdr [16]byte // struct sock_fprog: u16 len, pad, pointer
	if err := t.CopyIn(addr, hdr[:]); err != nil {
		return nil, unix.EFAULT
	}
	n := int(binary.LittleEndian.Uint16(hdr[0:]))
	ptr := binary.LittleEndian.Uint64(hdr[8:])
	if n == 0 || n > seccomp.MaxInstructions {
		return nil, unix.EINVAL
	}
	if !t.noNewPrivs.Load() && !t.creds.has(capSysAdmin) {
		return nil, unix.EACCES
	}
	b := make([]byte, n*seccomp.InstructionSize)
	if err := t.CopyIn(ptr, b); err != nil {
		return nil, unix.EFAULT
	}
	f, err := seccomp.NewFilter(seccomp.DecodeInstructions(b))
	if errors.Is(err, seccomp.ErrInvalid) {
		return nil, unix.EINVAL
	}
	return f, err
}

// sysSeccomp implements seccomp(2).
func sysSeccomp(t *Task, a *syscallArgs) (uint64, error) {
	op, flags, uargs := a.u(0), a.u(1), a.u(2)
	switch op {
	case seccompSetModeStrict, seccompSetModeFilter:
		return t.seccompSetMode(int(op), flags, uargs)
	case seccompGetActionAvail:
		if flags != 0 {
			return 0, unix.EINVAL
		}
		var b [4]byte
		if err := t.CopyIn(uargs, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		if !seccomp.KnownAction(binary.LittleEndian.Uint32(b[:])) {
			return 0, unix.EOPNOTSUPP
		}
		return 0, nil
	case seccompGetNotifSizes:
		if flags != 0 {
			return 0, unix.EINVAL
		}
		// struct seccomp_notif_sizes: the sizes of struct
		// seccomp_notif, seccomp_notif_resp and seccomp_data.
		var b [6]byte
		binary.LittleEndian.PutUint16(b[0:], 80)
		binary.LittleEndian.PutUint16(b[2:], 24)
		binary.LittleEndian.PutUint16(b[4:], seccomp.DataSize)
		if err := t.CopyOut(uargs, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	}
	return 0, unix.EINVAL
}

func init() {
	register(unix.SYS_SECCOMP, "seccomp", sysSeccomp, argInt, argHex, argHex)
}

// checkPtraceOptions refuses PTRACE_O_SUSPEND_SECCOMP to a tracer without
// CAP_SYS_ADMIN or under seccomp itself (kernel/ptrace.c:
// check_ptrace_options()).
func (t *Task) checkPtraceOptions(opts uint64) error {
	if opts&unix.PTRACE_O_SUSPEND_SECCOMP == 0 {
		return nil
	}
	if !t.creds.has(capSysAdmin) || t.sc.mode.Load() != seccompModeDisabled {
		return unix.EPERM
	}
	return nil
}

// nthSeccompFilter returns the filter at index off of target's chain,
// counted from the oldest (kernel/seccomp.c:get_nth_filter()).
func nthSeccompFilter(target *Task, off uint64) (*seccompFilter, error) {
	if target.sc.mode.Load() != seccompModeFilter {
		return nil, unix.EINVAL
	}
	f := target.sc.filter.Load()
	if off >= uint64(f.count) {
		return nil, unix.ENOENT
	}
	for n := uint64(f.count) - 1; n > off; n-- {
		f = f.prev
	}
	return f, nil
}

// seccompGetFilter implements PTRACE_SECCOMP_GET_FILTER: the number of
// instructions of filter off, and the instructions at data unless it is
// NULL (kernel/seccomp.c:seccomp_get_filter()).
func (t *Task) seccompGetFilter(target *Task, off, data uint64) (uint64, error) {
	if !t.creds.has(capSysAdmin) || t.sc.mode.Load() != seccompModeDisabled {
		return 0, unix.EACCES
	}
	f, err := nthSeccompFilter(target, off)
	if err != nil {
		return 0, err
	}
	if data != 0 {
		if err := t.CopyOut(data, seccomp.EncodeInstructions(f.prog.Program())); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uint64(f.prog.Len()), nil
}

// seccompGetMetadata implements PTRACE_SECCOMP_GET_METADATA: data is a
// struct seccomp_metadata of size bytes whose filter_off selects the
// filter; its flags are written back (kernel/seccomp.c:
// seccomp_get_metadata()).
func (t *Task) seccompGetMetadata(target *Task, size, data uint64) (uint64, error) {
	if !t.creds.has(capSysAdmin) || t.sc.mode.Load() != seccompModeDisabled {
		return 0, unix.EACCES
	}
	size = min(size, 16)
	if size < 8 {
		return 0, unix.EINVAL
	}
	var md [16]byte
	if err := t.CopyIn(data, md[:8]); err != nil {
		return 0, unix.EFAULT
	}
	f, err := nthSeccompFilter(target, binary.LittleEndian.Uint64(md[:8]))
	if err != nil {
		return 0, err
	}
	if f.log {
		binary.LittleEndian.PutUint64(md[8:], seccompFlagLog)
	}
	if err := t.CopyOut(data, md[:size]); err != nil {
		return 0, unix.EFAULT
	}
	return size, nil
}

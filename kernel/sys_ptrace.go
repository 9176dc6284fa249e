package kernel

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

func init() {
	register(unix.SYS_PTRACE, "ptrace", sysPtrace, argHex, argInt, argHex, argHex)
}

// Requests missing from golang.org/x/sys/unix.
const (
	ptraceGetSigmask = 0x420a
	ptraceSetSigmask = 0x420b
)

// sysPtrace implements ptrace(2) (Linux: kernel/ptrace.c:SYSCALL_DEFINE4
// (ptrace) and arch/x86/kernel/ptrace.c:arch_ptrace()).
func sysPtrace(t *Task, a *syscallArgs) (uint64, error) {
	req := int(int64(a.u(0)))
	pid := int32(a.int(1))
	addr, data := a.u(2), a.u(3)
	switch req {
	case unix.PTRACE_TRACEME:
		return 0, t.ptraceTraceme()
	case unix.PTRACE_ATTACH, unix.PTRACE_SEIZE:
		return 0, t.ptraceAttach(pid, req == unix.PTRACE_SEIZE, addr, data)
	}
	target := t.k.taskByTID(pid)
	if target == nil {
		return 0, unix.ESRCH
	}
	switch req {
	case unix.PTRACE_KILL:
		return 0, t.ptraceKill(target)
	case unix.PTRACE_INTERRUPT:
		return 0, t.ptraceInterrupt(target)
	}
	// Every other request needs a tracee of the caller in a ptrace-stop
	// (Linux: ptrace_check_attach()).
	k := t.k
	k.mu.Lock()
	stopped := target.pt.tracer == t && target.pt.stop != nil
	k.mu.Unlock()
	if !stopped {
		return 0, unix.ESRCH
	}
	return t.ptraceRequest(target, req, addr, data)
}

// ptraceTraceme implements PTRACE_TRACEME: the parent becomes the tracer.
func (t *Task) ptraceTraceme() error {
	k := t.k
	k.mu.Lock()
	if t.pt.tracer != nil {
		k.mu.Unlock()
		return unix.EPERM
	}
	parentTG := t.tg.parent
	var parent *Task
	if parentTG != nil {
		parentTG.mu.Lock()
		parent = parentTG.tasks[parentTG.tgid]
		if parent == nil {
			for _, p := range parentTG.tasks {
				parent = p
				break
			}
		}
		parentTG.mu.Unlock()
	}
	k.mu.Unlock()
	if parent == nil {
		// The first process's parent is outside the sandbox.
		return unix.EPERM
	}
	if err := t.yamaTraceme(parent); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.pt.tracer != nil {
		return unix.EPERM
	}
	t.attachLocked(parent, false, 0)
	return nil
}

// ptraceAttach implements PTRACE_ATTACH and PTRACE_SEIZE (Linux:
// kernel/ptrace.c:ptrace_attach()).
func (t *Task) ptraceAttach(pid int32, seize bool, addr, data uint64) error {
	if seize {
		if addr != 0 {
			return unix.EIO
		}
		if data&^uint64(ptraceOptionsMask) != 0 {
			return unix.EIO
		}
		if err := t.checkPtraceOptions(data); err != nil {
			return err
		}
	}
	target := t.k.taskByTID(pid)
	if target == nil {
		t.k.mu.Lock()
		g := t.k.groups[pid]
		zombie := g != nil && (g.zombie || g.exitDeferred)
		t.k.mu.Unlock()
		if zombie {
			// "the tracee is a zombie" (Linux: ptrace_attach()
			// checks exit_state).
			return unix.EPERM
		}
		return unix.ESRCH
	}
	if target.tg == t.tg {
		return unix.EPERM
	}
	if err := t.ptraceMayAccess(target, ptraceModeAttach|ptraceModeRealCreds); err != nil {
		return err
	}
	k := t.k
	k.mu.Lock()
	if target.pt.tracer != nil || target.pt.exitZombie || k.tasks[target.tid] != target {
		k.mu.Unlock()
		return unix.EPERM
	}
	target.attachLocked(t, seize, uint32(data))
	k.mu.Unlock()
	if !seize {
		// "Send a SIGSTOP to the tracee" - ptrace(2) PTRACE_ATTACH.
		target.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGSTOP), Code: arch.SI_USER})
	}
	// A tracee in a group stop turns it into a ptrace-stop the tracer
	// can wait for.
	target.wakeInterrupt()
	return nil
}

// ptraceKill implements PTRACE_KILL: SIGKILL to the tracee, stopped or
// not (Linux 6.x: kernel/ptrace.c ptrace_request() sends SIGKILL).
func (t *Task) ptraceKill(target *Task) error {
	k := t.k
	k.mu.Lock()
	isTracee := target.pt.tracer == t
	k.mu.Unlock()
	if !isTracee {
		return unix.ESRCH
	}
	target.tg.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGKILL), Code: arch.SI_KERNEL})
	return nil
}

// ptraceInterrupt implements PTRACE_INTERRUPT for seized tracees.
func (t *Task) ptraceInterrupt(target *Task) error {
	k := t.k
	k.mu.Lock()
	if target.pt.tracer != t {
		k.mu.Unlock()
		return unix.ESRCH
	}
	if !target.pt.seized {
		k.mu.Unlock()
		return unix.EIO
	}
	// A tracee already in a ptrace-stop traps again after its resume
	// (Linux: JOBCTL_TRAP_STOP stays pending).
	target.pt.interrupt = true
	target.ptInterrupt.Store(true)
	k.mu.Unlock()
	target.wakeInterrupt()
	return nil
}

// validResumeSignal is the check of ptrace_resume(): "if (!valid_signal(data)) return -EIO".
func validResumeSignal(data uint64) bool { return data <= numSignals }

// resume sends a resume request to a stopped tracee.
func (t *Task) resume(target *Task, r ptraceResume) error {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if target.pt.tracer != t || target.pt.stop == nil {
		return unix.ESRCH
	}
	// A listening tracee is no longer in a ptrace-stop (requests on it
	// are ESRCH) but stays stopped.
	target.pt.listening = r.listen
	target.pt.stop = nil
	target.pt.report = nil
	select {
	case <-target.pt.resumeCh:
	default:
	}
	target.pt.resumeCh <- r
	return nil
}

// ptraceRequest serves the requests on a stopped tracee.
func (t *Task) ptraceRequest(target *Task, req int, addr, data uint64) (uint64, error) {
	st := &target.st
	switch req {
	case unix.PTRACE_PEEKTEXT, unix.PTRACE_PEEKDATA:
		var b [8]byte
		if n, _ := target.mm.CopyInForce(addr, b[:]); n != len(b) {
			return 0, unix.EIO
		}
		// The syscall stores the word at data; the C library's wrapper
		// returns it (ptrace(2) "C library/kernel differences").
		return 0, t.CopyOut(data, b[:])
	case unix.PTRACE_POKETEXT, unix.PTRACE_POKEDATA:
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], data)
		if n, _ := target.mm.CopyOutForce(addr, b[:]); n != len(b) {
			return 0, unix.EIO
		}
		return 0, nil
	case unix.PTRACE_PEEKUSR:
		v, err := arch.PeekUser(st, addr)
		if err != nil {
			return 0, unix.EIO
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		return 0, t.CopyOut(data, b[:])
	case unix.PTRACE_POKEUSR:
		if err := arch.PokeUser(st, addr, data); err != nil {
			return 0, errnoOr(err, unix.EIO)
		}
		return 0, nil
	case unix.PTRACE_GETREGS:
		b := make([]byte, arch.RegistersSize)
		arch.EncodeRegisters(&st.Regs, b)
		return 0, t.CopyOut(data, b)
	case unix.PTRACE_SETREGS:
		b := make([]byte, arch.RegistersSize)
		if err := t.CopyIn(data, b); err != nil {
			return 0, err
		}
		if err := arch.SetRegset(st, &t.k.xsave, unix.NT_PRSTATUS, b); err != nil {
			return 0, errnoOr(err, unix.EIO)
		}
		return 0, nil
	case unix.PTRACE_GETFPREGS:
		b, err := arch.GetRegset(st, &t.k.xsave, unix.NT_PRFPREG)
		if err != nil {
			return 0, err
		}
		return 0, t.CopyOut(data, b)
	case unix.PTRACE_SETFPREGS:
		b := make([]byte, arch.FXSaveSize)
		if err := t.CopyIn(data, b); err != nil {
			return 0, err
		}
		return 0, arch.SetRegset(st, &t.k.xsave, unix.NT_PRFPREG, b)
	case unix.PTRACE_GETREGSET, unix.PTRACE_SETREGSET:
		return 0, t.ptraceRegset(target, req == unix.PTRACE_SETREGSET, int(addr), data)
	case unix.PTRACE_GETSIGINFO:
		info := t.stopSiginfo(target)
		if info == nil {
			return 0, unix.EINVAL
		}
		return 0, t.CopyOut(data, info.Bytes())
	case unix.PTRACE_SETSIGINFO:
		b := make([]byte, arch.SignalInfoSize)
		if err := t.CopyIn(data, b); err != nil {
			return 0, err
		}
		return 0, t.setStopSiginfo(target, b)
	case ptraceGetSigmask:
		if addr != 8 {
			return 0, unix.EINVAL
		}
		h := target.sigLock()
		m := target.sigMask
		h.mu.Unlock()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(m))
		return 0, t.CopyOut(data, b[:])
	case ptraceSetSigmask:
		if addr != 8 {
			return 0, unix.EINVAL
		}
		var b [8]byte
		if err := t.CopyIn(data, b[:]); err != nil {
			return 0, err
		}
		h := target.sigLock()
		target.sigMask = SignalSet(binary.LittleEndian.Uint64(b[:])) &^ unblockable
		h.mu.Unlock()
		return 0, nil
	case unix.PTRACE_PEEKSIGINFO:
		return t.ptracePeekSiginfo(target, addr, data)
	case unix.PTRACE_SETOPTIONS:
		if data&^uint64(ptraceOptionsMask) != 0 {
			return 0, unix.EINVAL
		}
		if err := t.checkPtraceOptions(data); err != nil {
			return 0, err
		}
		t.k.mu.Lock()
		target.pt.options = uint32(data)
		t.k.mu.Unlock()
		return 0, nil
	case unix.PTRACE_GETEVENTMSG:
		t.k.mu.Lock()
		msg := target.pt.eventMsg
		t.k.mu.Unlock()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], msg)
		return 0, t.CopyOut(data, b[:])
	case unix.PTRACE_CONT, unix.PTRACE_SYSCALL, unix.PTRACE_SINGLESTEP, unix.PTRACE_SYSEMU, unix.PTRACE_SYSEMU_SINGLESTEP:
		if !validResumeSignal(data) {
			return 0, unix.EIO
		}
		mode := map[int]ptraceMode{
			unix.PTRACE_CONT:              ptraceModeCont,
			unix.PTRACE_SYSCALL:           ptraceModeSyscall,
			unix.PTRACE_SINGLESTEP:        ptraceModeStep,
			unix.PTRACE_SYSEMU:            ptraceModeSysemu,
			unix.PTRACE_SYSEMU_SINGLESTEP: ptraceModeSysemuStep,
		}[req]
		return 0, t.resume(target, ptraceResume{mode: mode, sig: unix.Signal(data)})
	case unix.PTRACE_DETACH:
		if !validResumeSignal(data) {
			return 0, unix.EIO
		}
		k := t.k
		k.mu.Lock()
		defer k.mu.Unlock()
		if target.pt.tracer != t {
			return 0, unix.ESRCH
		}
		target.detachLocked(unix.Signal(data))
		return 0, nil
	case unix.PTRACE_LISTEN:
		k := t.k
		k.mu.Lock()
		// Only from a PTRACE_EVENT_STOP (Linux: ptrace_request()
		// checks si_code >> 8).
		ok := target.pt.seized && target.pt.stop != nil && target.pt.stop.code>>8 == unix.PTRACE_EVENT_STOP
		k.mu.Unlock()
		if !ok {
			return 0, unix.EIO
		}
		return 0, t.resume(target, ptraceResume{listen: true})
	case unix.PTRACE_ARCH_PRCTL:
		return t.archPrctl(&target.st.Regs, int(data), addr)
	case unix.PTRACE_GET_SYSCALL_INFO:
		return t.ptraceGetSyscallInfo(target, addr, data)
	case unix.PTRACE_SECCOMP_GET_FILTER:
		return t.seccompGetFilter(target, addr, data)
	case unix.PTRACE_SECCOMP_GET_METADATA:
		return t.seccompGetMetadata(target, addr, data)
	}
	return 0, unix.EIO
}

// ptraceRegset serves PTRACE_GETREGSET/SETREGSET: data points at an
// iovec; a short buffer transfers a prefix and the kernel writes back the
// length used (ptrace(2)).
func (t *Task) ptraceRegset(target *Task, set bool, note int, data uint64) error {
	var iov [16]byte
	if err := t.CopyIn(data, iov[:]); err != nil {
		return err
	}
	base := binary.LittleEndian.Uint64(iov[0:])
	xl := &t.k.xsave
	n, err := arch.RegsetLen(xl, note, binary.LittleEndian.Uint64(iov[8:]))
	if err != nil {
		return err
	}
	if set {
		b := make([]byte, n)
		if err := t.CopyIn(base, b); err != nil {
			return err
		}
		if err := arch.SetRegset(&target.st, xl, note, b); err != nil {
			return err
		}
	} else {
		full, err := arch.GetRegset(&target.st, xl, note)
		if err != nil {
			return err
		}
		if err := t.CopyOut(base, full[:n]); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint64(iov[8:], n)
	return t.CopyOut(data+8, iov[8:])
}

// stopSiginfo returns the siginfo of the tracee's stop, as
// PTRACE_GETSIGINFO shows it: the signal's for a signal-delivery stop,
// a synthesized SIGTRAP one for other stops (Linux: ptrace_stop() sets
// last_siginfo for every stop).
func (t *Task) stopSiginfo(target *Task) *arch.SignalInfo {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	s := target.pt.stop
	if s == nil {
		return nil
	}
	if s.info != nil {
		c := *s.info
		return &c
	}
	if s.kind == StopGroup && !target.pt.seized {
		// A group-stop of a non-seized tracee has no siginfo.
		return nil
	}
	info := &arch.SignalInfo{Signo: int32(s.code & 0x7f), Code: int32(s.code)}
	info.SetPid(target.tid)
	info.SetUid(target.creds.RealUID)
	return info
}

// setStopSiginfo replaces the siginfo of a signal-delivery stop.
func (t *Task) setStopSiginfo(target *Task, b []byte) error {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	s := target.pt.stop
	if s == nil {
		return unix.EINVAL
	}
	if s.info == nil {
		s.info = &arch.SignalInfo{}
	}
	s.info.Decode(b)
	return nil
}

// ptracePeekSiginfo implements PTRACE_PEEKSIGINFO: copy queued siginfos
// without dequeuing them.
func (t *Task) ptracePeekSiginfo(target *Task, addr, data uint64) (uint64, error) {
	var ab [16]byte
	if err := t.CopyIn(addr, ab[:]); err != nil {
		return 0, err
	}
	off := binary.LittleEndian.Uint64(ab[0:])
	flags := binary.LittleEndian.Uint32(ab[8:])
	nr := int32(binary.LittleEndian.Uint32(ab[12:]))
	if flags&^unix.PTRACE_PEEKSIGINFO_SHARED != 0 || nr < 0 {
		return 0, unix.EINVAL
	}
	if nr == 0 {
		return 0, nil
	}
	h := target.sigLock()
	q := &target.pending
	if flags&unix.PTRACE_PEEKSIGINFO_SHARED != 0 {
		q = &target.tg.pending
	}
	var all []*arch.SignalInfo
	for sig := unix.Signal(1); sig <= numSignals; sig++ {
		for _, info := range q.infos[sig-1] {
			c := *info
			all = append(all, &c)
		}
	}
	h.mu.Unlock()
	var n uint64
	for i := off; i < uint64(len(all)) && n < uint64(nr); i++ {
		if err := t.CopyOut(data+n*arch.SignalInfoSize, all[i].Bytes()); err != nil {
			if n == 0 {
				return 0, err
			}
			break
		}
		n++
	}
	return n, nil
}

// ptraceGetSyscallInfo implements PTRACE_GET_SYSCALL_INFO: addr is the
// user buffer's size, data the buffer; the result is the size of the whole
// structure for the stop (Linux: kernel/ptrace.c:ptrace_get_syscall_info()).
func (t *Task) ptraceGetSyscallInfo(target *Task, size, data uint64) (uint64, error) {
	t.k.mu.Lock()
	kind := StopSignalDelivery
	if s := target.pt.stop; s != nil && s.code == int(unix.SIGTRAP)|0x80 {
		// Linux tells syscall stops by their SIGTRAP|0x80 code, which
		// only PTRACE_O_TRACESYSGOOD gives.
		kind = s.kind
	}
	t.k.mu.Unlock()
	op := uint8(unix.PTRACE_SYSCALL_INFO_NONE)
	var retData uint32
	t.k.mu.Lock()
	if s := target.pt.stop; s != nil && s.code == int(unix.SIGTRAP)|unix.PTRACE_EVENT_SECCOMP<<8 {
		// kernel/ptrace.c:ptrace_get_syscall_info_seccomp(): the
		// event message is the filter's SECCOMP_RET_DATA.
		op, retData = unix.PTRACE_SYSCALL_INFO_SECCOMP, uint32(target.pt.eventMsg)
	}
	t.k.mu.Unlock()
	switch kind {
	case StopSyscallEnter:
		op = unix.PTRACE_SYSCALL_INFO_ENTRY
	case StopSyscallExit:
		op = unix.PTRACE_SYSCALL_INFO_EXIT
	}
	info := arch.NewSyscallInfo(op, &target.st.Regs, retData)
	b := info.Encode()
	full := uint64(info.Size())
	n := min(size, full, uint64(len(b)))
	if n > 0 {
		if err := t.CopyOut(data, b[:n]); err != nil {
			return 0, err
		}
	}
	return full, nil
}

// errnoOr returns err's errno, or def when err carries none.
func errnoOr(err error, def unix.Errno) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return def
}

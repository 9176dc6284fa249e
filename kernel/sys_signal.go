package kernel

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

func init() {
	register(unix.SYS_KILL, "kill", sysKill, argInt, argSignal)
	register(unix.SYS_TKILL, "tkill", sysTkill, argInt, argSignal)
	register(unix.SYS_TGKILL, "tgkill", sysTgkill, argInt, argInt, argSignal)
	register(unix.SYS_RT_SIGQUEUEINFO, "rt_sigqueueinfo", sysRtSigqueueinfo, argInt, argSignal, argHex)
	register(unix.SYS_RT_TGSIGQUEUEINFO, "rt_tgsigqueueinfo", sysRtTgsigqueueinfo, argInt, argInt, argSignal, argHex)
	register(unix.SYS_RT_SIGPENDING, "rt_sigpending", sysRtSigpending, argHex, argInt)
	register(unix.SYS_RT_SIGSUSPEND, "rt_sigsuspend", sysRtSigsuspend, argHex, argInt)
	register(unix.SYS_RT_SIGTIMEDWAIT, "rt_sigtimedwait", sysRtSigtimedwait, argHex, argHex, argHex, argInt)
	register(unix.SYS_SIGALTSTACK, "sigaltstack", sysSigaltstack, argHex, argHex)
	register(unix.SYS_PAUSE, "pause", sysPause)
	register(unix.SYS_RT_SIGRETURN, "rt_sigreturn", sysRtSigreturn)
	register(unix.SYS_RESTART_SYSCALL, "restart_syscall", sysRestartSyscall)
}

// mayKill implements the permission check of kill(2): a privileged sender,
// or matching user IDs (Linux: kernel/signal.c:kill_ok_by_cred()); SIGCONT
// within a session is always allowed.
func (t *Task) mayKill(target *ThreadGroup, sig unix.Signal) bool {
	if t.tg == target || t.creds.has(capKill) {
		return true
	}
	target.mu.Lock()
	var tc Credentials
	found := false
	for _, o := range target.tasks {
		tc, found = o.creds, true
		break
	}
	target.mu.Unlock()
	if !found {
		return true // a zombie: the signal is dropped anyway
	}
	c := t.creds
	if c.EffectiveUID == tc.RealUID || c.EffectiveUID == tc.SavedUID || c.RealUID == tc.RealUID || c.RealUID == tc.SavedUID {
		return true
	}
	if sig == unix.SIGCONT {
		t.k.mu.Lock()
		same := t.tg.sid == target.sid
		t.k.mu.Unlock()
		return same
	}
	return false
}

// userSignalInfo is the siginfo of a signal sent by t with kill or tkill.
func (t *Task) userSignalInfo(sig unix.Signal, code int32) *arch.SignalInfo {
	info := &arch.SignalInfo{Signo: int32(sig), Code: code}
	info.SetPid(t.tg.tgid)
	info.SetUid(t.creds.RealUID)
	return info
}

func validSignal(sig int) bool { return sig >= 0 && sig <= numSignals }

// sysKill implements kill(2).
func sysKill(t *Task, a *syscallArgs) (uint64, error) {
	pid, sig := int32(a.int(0)), a.int(1)
	if !validSignal(sig) {
		return 0, unix.EINVAL
	}
	k := t.k
	var targets []*ThreadGroup
	k.mu.Lock()
	switch {
	case pid > 0:
		if g := k.groups[pid]; g != nil {
			targets = append(targets, g)
		}
	case pid == -1:
		for _, g := range k.groups {
			if g != k.init && g != t.tg && !g.zombie {
				targets = append(targets, g)
			}
		}
	default:
		pg := -pid
		if pid == 0 {
			pg = t.tg.pgid
		}
		for _, g := range k.groups {
			if g.pgid == pg {
				targets = append(targets, g)
			}
		}
	}
	k.mu.Unlock()
	if len(targets) == 0 {
		return 0, unix.ESRCH
	}
	var sent bool
	for _, g := range targets {
		if !t.mayKill(g, unix.Signal(sig)) {
			continue
		}
		sent = true
		if sig != 0 {
			g.SendSignal(t.userSignalInfo(unix.Signal(sig), arch.SI_USER))
		}
	}
	if !sent {
		return 0, unix.EPERM
	}
	return 0, nil
}

// signalThread sends sig to thread tid (of group tgid when tgid > 0).
func (t *Task) signalThread(tgid, tid int32, info *arch.SignalInfo) error {
	if tid <= 0 || tgid == 0 || tgid < -1 {
		return unix.EINVAL
	}
	target := t.k.taskByTID(tid)
	if target == nil || (tgid > 0 && target.tg.tgid != tgid) {
		return unix.ESRCH
	}
	if !t.mayKill(target.tg, unix.Signal(info.Signo)) {
		return unix.EPERM
	}
	if info.Signo == 0 {
		return nil
	}
	return target.SendSignal(info)
}

func sysTkill(t *Task, a *syscallArgs) (uint64, error) {
	sig := a.int(1)
	if !validSignal(sig) {
		return 0, unix.EINVAL
	}
	return 0, t.signalThread(-1, int32(a.int(0)), t.userSignalInfo(unix.Signal(sig), arch.SI_TKILL))
}

func sysTgkill(t *Task, a *syscallArgs) (uint64, error) {
	sig := a.int(2)
	if !validSignal(sig) {
		return 0, unix.EINVAL
	}
	if a.int(0) <= 0 {
		return 0, unix.EINVAL
	}
	return 0, t.signalThread(int32(a.int(0)), int32(a.int(1)), t.userSignalInfo(unix.Signal(sig), arch.SI_TKILL))
}

// copyInQueueInfo reads the siginfo of rt_(tg)sigqueueinfo: a process may
// not pose as the kernel or as kill/tkill when signalling another process
// (Linux: kernel/signal.c:do_rt_sigqueueinfo()).
func (t *Task) copyInQueueInfo(addr uint64, sig int, self bool) (*arch.SignalInfo, error) {
	b := make([]byte, arch.SignalInfoSize)
	if err := t.CopyIn(addr, b); err != nil {
		return nil, err
	}
	info := &arch.SignalInfo{}
	info.Decode(b)
	if !self && (info.Code >= 0 || info.Code == arch.SI_TKILL) {
		return nil, unix.EPERM
	}
	info.Signo = int32(sig)
	return info, nil
}

func sysRtSigqueueinfo(t *Task, a *syscallArgs) (uint64, error) {
	pid, sig := int32(a.int(0)), a.int(1)
	if !validSignal(sig) {
		return 0, unix.EINVAL
	}
	info, err := t.copyInQueueInfo(a.u(2), sig, pid == t.tg.tgid)
	if err != nil {
		return 0, err
	}
	t.k.mu.Lock()
	g := t.k.groups[pid]
	t.k.mu.Unlock()
	if g == nil || pid <= 0 {
		return 0, unix.ESRCH
	}
	if !t.mayKill(g, unix.Signal(sig)) {
		return 0, unix.EPERM
	}
	if sig == 0 {
		return 0, nil
	}
	return 0, g.SendSignal(info)
}

func sysRtTgsigqueueinfo(t *Task, a *syscallArgs) (uint64, error) {
	tgid, tid, sig := int32(a.int(0)), int32(a.int(1)), a.int(2)
	if !validSignal(sig) {
		return 0, unix.EINVAL
	}
	if tgid <= 0 || tid <= 0 {
		return 0, unix.EINVAL
	}
	info, err := t.copyInQueueInfo(a.u(3), sig, tgid == t.tg.tgid)
	if err != nil {
		return 0, err
	}
	return 0, t.signalThread(tgid, tid, info)
}

func sysRtSigpending(t *Task, a *syscallArgs) (uint64, error) {
	if a.u(1) > 8 {
		return 0, unix.EINVAL
	}
	h := t.sigLock()
	set := (t.pending.set | t.tg.pending.set) & t.sigMask
	h.mu.Unlock()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(set))
	return 0, t.CopyOut(a.u(0), b[:a.u(1)])
}

// copyInSigset reads a sigset_t of the given size (which must be 8).
func (t *Task) copyInSigset(addr, size uint64) (SignalSet, error) {
	if size != 8 {
		return 0, unix.EINVAL
	}
	var b [8]byte
	if err := t.CopyIn(addr, b[:]); err != nil {
		return 0, err
	}
	return SignalSet(binary.LittleEndian.Uint64(b[:])), nil
}

// sysRtSigsuspend implements rt_sigsuspend(2): the mask is swapped until a
// handler runs; the handler's frame saves the old mask.
func sysRtSigsuspend(t *Task, a *syscallArgs) (uint64, error) {
	mask, err := t.copyInSigset(a.u(0), a.u(1))
	if err != nil {
		return 0, err
	}
	h := t.sigLock()
	t.savedMask = t.sigMask
	t.restoreMask = true
	t.setSigMaskLocked(mask)
	h.mu.Unlock()
	for {
		if err := t.Block(nil); err != nil && t.interrupted() {
			return 0, ERESTARTNOHAND
		}
	}
}

func sysPause(t *Task, _ *syscallArgs) (uint64, error) {
	for {
		if err := t.Block(nil); err != nil && t.interrupted() {
			return 0, ERESTARTNOHAND
		}
	}
}

// sysRtSigtimedwait implements rt_sigtimedwait(2): the signals of set
// are taken without running their handlers.
func sysRtSigtimedwait(t *Task, a *syscallArgs) (uint64, error) {
	set, err := t.copyInSigset(a.u(0), a.u(3))
	if err != nil {
		return 0, err
	}
	set &^= unblockable
	var timeout time.Duration = -1
	if a.u(2) != 0 {
		ts, err := t.copyInTimespec(a.u(2))
		if err != nil {
			return 0, err
		}
		if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
			return 0, unix.EINVAL
		}
		timeout = time.Duration(ts.Sec)*time.Second + time.Duration(ts.Nsec)
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	h := t.sigLock()
	real := t.sigMask
	// Linux: the waited-for signals are unblocked during the wait so
	// that they wake the task; it then dequeues them itself.
	t.realBlocked = real
	t.sigMask &^= set
	h.mu.Unlock()
	defer func() {
		h := t.sigLock()
		t.realBlocked = 0
		t.setSigMaskLocked(real)
		h.mu.Unlock()
	}()
	for {
		h := t.sigLock()
		info := t.dequeueSignalLocked(^set)
		h.mu.Unlock()
		if info != nil {
			if a.u(1) != 0 {
				if err := t.CopyOut(a.u(1), info.Bytes()); err != nil {
					return 0, err
				}
			}
			return uint64(info.Signo), nil
		}
		if timeout == 0 {
			return 0, unix.EAGAIN
		}
		err := t.BlockUntil(nil, deadline)
		switch err {
		case ErrTimedOut:
			return 0, unix.EAGAIN
		case ErrInterrupted:
			h := t.sigLock()
			other := t.killed.Load() || (t.pending.set|t.tg.pending.set)&^(t.sigMask|set) != 0
			mine := (t.pending.set|t.tg.pending.set)&set != 0
			h.mu.Unlock()
			if !mine && other {
				return 0, unix.EINTR
			}
		}
	}
}

// minSigStkSz is MINSIGSTKSZ (Linux: arch/x86/include/uapi/asm/signal.h).
const minSigStkSz = 2048

func sysSigaltstack(t *Task, a *syscallArgs) (uint64, error) {
	onStack := t.altStack.Contains(t.st.Regs.Rsp)
	if a.u(1) != 0 {
		old := t.altStack
		if old.Flags&arch.SS_DISABLE != 0 || old.Size == 0 {
			old = arch.SignalStack{Flags: arch.SS_DISABLE}
		} else if onStack {
			old.Flags = arch.SS_ONSTACK | old.Flags&arch.SS_AUTODISARM
		} else {
			old.Flags &= arch.SS_AUTODISARM
		}
		var b [24]byte
		binary.LittleEndian.PutUint64(b[0:], old.Sp)
		binary.LittleEndian.PutUint32(b[8:], old.Flags)
		binary.LittleEndian.PutUint64(b[16:], old.Size)
		if err := t.CopyOut(a.u(1), b[:]); err != nil {
			return 0, err
		}
	}
	if a.u(0) == 0 {
		return 0, nil
	}
	var b [24]byte
	if err := t.CopyIn(a.u(0), b[:]); err != nil {
		return 0, err
	}
	ns := arch.SignalStack{
		Sp:    binary.LittleEndian.Uint64(b[0:]),
		Flags: binary.LittleEndian.Uint32(b[8:]),
		Size:  binary.LittleEndian.Uint64(b[16:]),
	}
	if onStack {
		return 0, unix.EPERM
	}
	mode := ns.Flags &^ arch.SS_AUTODISARM
	switch mode {
	case arch.SS_DISABLE:
		ns = arch.SignalStack{Flags: arch.SS_DISABLE}
	case 0, arch.SS_ONSTACK:
		if ns.Size < minSigStkSz {
			return 0, unix.ENOMEM
		}
		ns.Flags &= arch.SS_AUTODISARM
	default:
		return 0, unix.EINVAL
	}
	t.altStack = ns
	return 0, nil
}

// sysRtSigreturn restores the context saved by a signal frame (Linux:
// arch/x86/kernel/signal_64.c: SYSCALL_DEFINE0(rt_sigreturn)).
func sysRtSigreturn(t *Task, _ *syscallArgs) (uint64, error) {
	frame := t.st.Regs.Rsp - 8
	buf := make([]byte, arch.SigFrameSize)
	if err := t.CopyIn(frame, buf); err != nil {
		t.forceSignal(unix.SIGSEGV, siKernel, 0)
		return 0, errNoReturnValue
	}
	p, err := arch.ParseSigFrame(buf, &t.st.Regs)
	if err != nil {
		t.forceSignal(unix.SIGSEGV, siKernel, 0)
		return 0, errNoReturnValue
	}
	if p.FPState != 0 {
		img := make([]byte, arch.FXSaveSize)
		if err := t.CopyIn(p.FPState, img); err != nil {
			t.forceSignal(unix.SIGSEGV, siKernel, 0)
			return 0, errNoReturnValue
		}
		fp, need, _ := arch.ParseFPState(img, t.k.platform.FPStateSize())
		if need > 0 {
			img = make([]byte, need)
			if err := t.CopyIn(p.FPState, img); err != nil {
				t.forceSignal(unix.SIGSEGV, siKernel, 0)
				return 0, errNoReturnValue
			}
			fp, _, _ = arch.ParseFPState(img, t.k.platform.FPStateSize())
		}
		t.st.SetFP(fp)
	} else {
		t.st.SetFP(arch.NewFPState(t.k.platform.FPStateSize()))
	}
	t.st.Regs = p.Regs
	h := t.sigLock()
	t.setSigMaskLocked(SignalSet(p.Mask))
	h.mu.Unlock()
	// restore_altstack(): errors are ignored, as Linux does.
	if ns := p.Stack; !t.altStack.Contains(t.st.Regs.Rsp) {
		mode := ns.Flags &^ (arch.SS_AUTODISARM | arch.SS_ONSTACK)
		if mode == arch.SS_DISABLE {
			t.altStack = arch.SignalStack{Flags: arch.SS_DISABLE}
		} else if mode == 0 && ns.Size >= minSigStkSz {
			ns.Flags &= arch.SS_AUTODISARM
			t.altStack = ns
		}
	}
	return 0, errNoReturnValue
}

func sysRestartSyscall(t *Task, _ *syscallArgs) (uint64, error) {
	fn := t.restart
	t.restart = nil
	if fn == nil {
		return 0, unix.EINTR
	}
	return fn(t)
}

// copyInTimespec reads a struct timespec.
func (t *Task) copyInTimespec(addr uint64) (unix.Timespec, error) {
	var b [16]byte
	if err := t.CopyIn(addr, b[:]); err != nil {
		return unix.Timespec{}, err
	}
	return unix.Timespec{
		Sec:  int64(binary.LittleEndian.Uint64(b[0:])),
		Nsec: int64(binary.LittleEndian.Uint64(b[8:])),
	}, nil
}

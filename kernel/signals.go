package kernel

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// Signal numbers run from 1 to 64 (Linux: _NSIG).
const (
	numSignals = 64
	// sigRTMin is the first real-time signal: from it on, signals queue.
	sigRTMin = 32
)

// si_code values used by the kernel (Linux: include/uapi/asm-generic/siginfo.h).
const (
	siKernel   = arch.SI_KERNEL
	segvMaperr = arch.SEGV_MAPERR
	segvAccerr = arch.SEGV_ACCERR
	busAdraln  = 1
	illIllopn  = 2
	fpeIntDiv  = 1
	trapTrace  = arch.TRAP_TRACE
)

// sigaction flags (Linux: arch/x86/include/uapi/asm/signal.h).
const (
	saNoCldStop = 0x00000001
	saNoCldWait = 0x00000002
	saSigInfo   = 0x00000004
	saOnStack   = 0x08000000
	saRestart   = 0x10000000
	saNoDefer   = 0x40000000
	saResetHand = 0x80000000
	saRestorer  = 0x04000000
)

// SignalSet is a set of signals, bit N-1 for signal N (sigset_t).
type SignalSet uint64

// SignalSetOf returns the set holding sig.
func SignalSetOf(sig unix.Signal) SignalSet { return 1 << (uint(sig) - 1) }

// Has reports whether sig is in the set.
func (s SignalSet) Has(sig unix.Signal) bool { return s&SignalSetOf(sig) != 0 }

// unblockable are the signals that can be neither blocked nor caught.
const unblockable = SignalSet(1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1))

// synchronousSignals are dequeued first (Linux: kernel/signal.c
// SYNCHRONOUS_MASK), so that a fault's signal is not overtaken.
const synchronousSignals = SignalSet(1<<(unix.SIGSEGV-1) | 1<<(unix.SIGBUS-1) | 1<<(unix.SIGILL-1) |
	1<<(unix.SIGTRAP-1) | 1<<(unix.SIGFPE-1) | 1<<(unix.SIGSYS-1))

// stopSignals are the signals whose default action stops the group.
const stopSignals = SignalSet(1<<(unix.SIGSTOP-1) | 1<<(unix.SIGTSTP-1) | 1<<(unix.SIGTTIN-1) | 1<<(unix.SIGTTOU-1))

// SigAction is struct k_sigaction as rt_sigaction(2) exchanges it on
// x86-64: handler, flags, restorer, mask.
type SigAction struct {
	Handler  uint64
	Flags    uint64
	Restorer uint64
	Mask     SignalSet
}

const sigActionSize = 32

// Special handler values.
const (
	sigDFL = 0
	sigIGN = 1
)

// SignalHandlers is the table of signal actions of a thread group (shared
// between groups with CLONE_SIGHAND). Its mutex is the "siglock": it also
// protects the signal state of every task using the table (pending
// queues, masks) and of their thread groups.
type SignalHandlers struct {
	mu sync.Mutex
	// actions is indexed by signal number - 1. Protected by mu.
	actions [numSignals]SigAction
}

func newSignalHandlers() *SignalHandlers { return &SignalHandlers{} }

// copy returns a private copy (fork without CLONE_SIGHAND).
func (h *SignalHandlers) copy() *SignalHandlers {
	h.mu.Lock()
	defer h.mu.Unlock()
	return &SignalHandlers{actions: h.actions}
}

// resetForExec sets caught signals back to SIG_DFL; ignored ones stay
// ignored (execve(2)).
//
// Preconditions: h.mu is held.
func (h *SignalHandlers) resetForExecLocked() {
	for i := range h.actions {
		a := &h.actions[i]
		if a.Handler != sigIGN {
			*a = SigAction{}
		} else {
			a.Flags, a.Restorer, a.Mask = 0, 0, 0
		}
	}
}

// defaultAction is what SIG_DFL does (signal(7)).
type defaultAction int

const (
	actTerm defaultAction = iota
	actCore
	actStop
	actCont
	actIgnore
)

func defaultActionOf(sig unix.Signal) defaultAction {
	switch sig {
	case unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGBUS, unix.SIGFPE,
		unix.SIGSEGV, unix.SIGSYS, unix.SIGXCPU, unix.SIGXFSZ:
		return actCore
	case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return actStop
	case unix.SIGCONT:
		return actCont
	case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH:
		return actIgnore
	}
	return actTerm
}

// pendingQueue holds pending signals (Linux: struct sigpending). A
// standard signal is pending at most once; real-time signals queue.
type pendingQueue struct {
	set   SignalSet
	infos [numSignals][]*arch.SignalInfo
}

// add queues info; it reports false when a standard signal was already
// pending (the new one merges into it).
func (q *pendingQueue) add(info *arch.SignalInfo) bool {
	sig := unix.Signal(info.Signo)
	if sig < sigRTMin && q.set.Has(sig) {
		return false
	}
	q.infos[sig-1] = append(q.infos[sig-1], info)
	q.set |= SignalSetOf(sig)
	return true
}

// next returns the signal to deliver among those not in mask, or 0
// (Linux: kernel/signal.c:next_signal()).
func (q *pendingQueue) next(mask SignalSet) unix.Signal {
	avail := q.set &^ mask
	if avail == 0 {
		return 0
	}
	if s := avail & synchronousSignals; s != 0 {
		avail = s
	}
	for sig := unix.Signal(1); sig <= numSignals; sig++ {
		if avail.Has(sig) {
			return sig
		}
	}
	return 0
}

// take removes and returns the first queued instance of sig.
func (q *pendingQueue) take(sig unix.Signal) *arch.SignalInfo {
	l := q.infos[sig-1]
	if len(l) == 0 {
		return nil
	}
	info := l[0]
	l[0] = nil
	q.infos[sig-1] = l[1:]
	if len(q.infos[sig-1]) == 0 {
		q.infos[sig-1] = nil
		q.set &^= SignalSetOf(sig)
	}
	return info
}

// discard drops every pending instance of the signals in s.
func (q *pendingQueue) discard(s SignalSet) {
	for sig := unix.Signal(1); sig <= numSignals; sig++ {
		if s.Has(sig) && q.set.Has(sig) {
			q.infos[sig-1] = nil
		}
	}
	q.set &^= s
}

// sysRtSigaction implements rt_sigaction(2).
func sysRtSigaction(t *Task, a *syscallArgs) (uint64, error) {
	sig := unix.Signal(a.int(0))
	if a.u(3) != 8 {
		return 0, unix.EINVAL
	}
	if sig < 1 || sig > numSignals {
		return 0, unix.EINVAL
	}
	var newAct SigAction
	if a.u(1) != 0 {
		var b [sigActionSize]byte
		if err := t.CopyIn(a.u(1), b[:]); err != nil {
			return 0, err
		}
		newAct = SigAction{
			Handler:  binary.LittleEndian.Uint64(b[0:]),
			Flags:    binary.LittleEndian.Uint64(b[8:]),
			Restorer: binary.LittleEndian.Uint64(b[16:]),
			Mask:     SignalSet(binary.LittleEndian.Uint64(b[24:])) &^ unblockable,
		}
		if sig == unix.SIGKILL || sig == unix.SIGSTOP {
			return 0, unix.EINVAL
		}
	}
	h := t.sigLock()
	old := h.actions[sig-1]
	if a.u(1) != 0 {
		h.actions[sig-1] = newAct
		// POSIX: setting SIG_IGN (or SIG_DFL for a signal whose default
		// is to ignore) discards the pending instances (Linux:
		// kernel/signal.c:do_sigaction()).
		if newAct.Handler == sigIGN || (newAct.Handler == sigDFL && defaultActionOf(sig) == actIgnore) {
			t.tg.discardPendingLocked(SignalSetOf(sig))
		}
	}
	h.mu.Unlock()
	if a.u(2) != 0 {
		var b [sigActionSize]byte
		binary.LittleEndian.PutUint64(b[0:], old.Handler)
		binary.LittleEndian.PutUint64(b[8:], old.Flags)
		binary.LittleEndian.PutUint64(b[16:], old.Restorer)
		binary.LittleEndian.PutUint64(b[24:], uint64(old.Mask))
		if err := t.CopyOut(a.u(2), b[:]); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// sysRtSigprocmask implements rt_sigprocmask(2).
func sysRtSigprocmask(t *Task, a *syscallArgs) (uint64, error) {
	how := a.int(0)
	if a.u(3) != 8 {
		return 0, unix.EINVAL
	}
	var set SignalSet
	if a.u(1) != 0 {
		var b [8]byte
		if err := t.CopyIn(a.u(1), b[:]); err != nil {
			return 0, err
		}
		set = SignalSet(binary.LittleEndian.Uint64(b[:]))
		if how != unix.SIG_BLOCK && how != unix.SIG_UNBLOCK && how != unix.SIG_SETMASK {
			return 0, unix.EINVAL
		}
	}
	h := t.sigLock()
	old := t.sigMask
	if a.u(1) != 0 {
		switch how {
		case unix.SIG_BLOCK:
			t.setSigMaskLocked(t.sigMask | set)
		case unix.SIG_UNBLOCK:
			t.setSigMaskLocked(t.sigMask &^ set)
		case unix.SIG_SETMASK:
			t.setSigMaskLocked(set)
		}
	}
	h.mu.Unlock()
	if a.u(2) != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(old))
		if err := t.CopyOut(a.u(2), b[:]); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

package kernel

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// Signal numbers run from 1 to 64 (Linux: _NSIG).
const numSignals = 64

// si_code values (Linux: include/uapi/asm-generic/siginfo.h).
const (
	siKernel   = 0x80
	segvMaperr = 1
	segvAccerr = 2
	busAdraln  = 1
	illIllopn  = 2
	fpeIntDiv  = 1
	trapTrace  = 2
)

// SignalSet is a set of signals, bit N-1 for signal N (sigset_t).
type SignalSet uint64

// SignalSetOf returns the set holding sig.
func SignalSetOf(sig unix.Signal) SignalSet { return 1 << (uint(sig) - 1) }

// unblockable are the signals that can be neither blocked nor caught.
const unblockable = SignalSet(1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1))

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
// between groups with CLONE_SIGHAND).
type SignalHandlers struct {
	mu sync.Mutex
	// actions is indexed by signal number - 1. Protected by mu.
	actions [numSignals]SigAction
}

func newSignalHandlers() *SignalHandlers { return &SignalHandlers{} }

// action returns the action for sig.
func (h *SignalHandlers) action(sig unix.Signal) SigAction {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.actions[sig-1]
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

// forceSignal delivers a synchronous signal caused by the task's own
// instruction (Linux: kernel/signal.c:force_sig_info(), which unblocks
// and un-ignores the signal).
//
// TODO(ringbox): user handlers and signal frames come with the process
// model; until then a forced signal always takes its default action, even
// when the program installed a handler (Linux would run the handler).
func (t *Task) forceSignal(sig unix.Signal, code int32, addr uint64) taskRunState {
	if c := t.k.cpu(t.lastCPU); c != nil {
		c.signals.Add(1)
	}
	t.log.Debug("fatal signal", zapSignal(sig), zapInt32("code", code), zapHex("addr", addr))
	st := ExitStatus{Signal: sig}
	if defaultActionOf(sig) == actCore {
		// RLIMIT_CORE is 0 by default and ringbox writes no core files;
		// Linux reports the core flag only when a dump was written.
		st.CoreDump = false
	}
	t.tg.exitGroup(st)
	return exiting{}
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
	h := t.tg.handlers
	h.mu.Lock()
	old := h.actions[sig-1]
	if a.u(1) != 0 {
		h.actions[sig-1] = newAct
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
	t.mu.Lock()
	old := t.sigMask
	if a.u(1) != 0 {
		switch how {
		case unix.SIG_BLOCK:
			t.sigMask |= set
		case unix.SIG_UNBLOCK:
			t.sigMask &^= set
		case unix.SIG_SETMASK:
			t.sigMask = set
		}
		t.sigMask &^= unblockable
	}
	t.mu.Unlock()
	if a.u(2) != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(old))
		if err := t.CopyOut(a.u(2), b[:]); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// hasDeliverableSignal reports whether a signal the task does not block is
// pending for it or its thread group.
//
// TODO(ringbox): signal queues come with the process model; until then
// nothing is ever pending.
func (t *Task) hasDeliverableSignal() bool { return false }

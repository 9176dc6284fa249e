package kernel

import (
	"golang.org/x/sys/unix"
)

// Ptrace access modes (Linux: include/linux/ptrace.h).
type ptraceAccessMode int

const (
	// ptraceModeRead: reading another process's state (/proc, kcmp).
	ptraceModeRead ptraceAccessMode = 1 << iota
	// ptraceModeAttach: attaching, or writing its memory.
	ptraceModeAttach
	// ptraceModeFSCreds uses the caller's filesystem IDs (/proc files).
	ptraceModeFSCreds
	// ptraceModeRealCreds uses the caller's real IDs (ptrace(2) itself).
	ptraceModeRealCreds
)

// YAMA ptrace scopes (Documentation/admin-guide/LSM/Yama.rst).
const (
	yamaScopeDisabled   = 0
	yamaScopeRelational = 1
	yamaScopeCapability = 2
	yamaScopeNoAttach   = 3
)

// ptracerAny is PR_SET_PTRACER_ANY.
const ptracerAny = -1

// PtraceScope returns the sandbox's YAMA ptrace scope.
func (k *Kernel) PtraceScope() int { return int(k.ptraceScope.Load()) }

// SetPtraceScope changes the YAMA ptrace scope; 3 is sticky as in Linux
// ("Once set, this sysctl value cannot be changed").
func (k *Kernel) SetPtraceScope(s int) error {
	if s < 0 || s > 3 {
		return unix.EINVAL
	}
	if k.ptraceScope.Load() == yamaScopeNoAttach && s != yamaScopeNoAttach {
		return unix.EINVAL
	}
	k.ptraceScope.Store(int32(s))
	return nil
}

// hasCapSysPtrace reports CAP_SYS_PTRACE in the effective set.
//
// TODO(ringbox): user namespaces: every check is against the sandbox's
// one namespace.
func (t *Task) hasCapSysPtrace() bool { return t.creds.has(capSysPtrace) }

// ptraceMayAccess implements ptrace(2)'s "Ptrace access mode checking"
// (Linux: kernel/ptrace.c:__ptrace_may_access(), then the YAMA hook
// security/yama/yama_lsm.c:yama_ptrace_access_check() for attaches).
func (t *Task) ptraceMayAccess(target *Task, mode ptraceAccessMode) error {
	// "If the calling thread and the target thread are in the same
	// thread group, access is always allowed."
	if t.tg == target.tg {
		return nil
	}
	c := t.creds
	uid, gid := c.FSUID, c.FSGID
	if mode&ptraceModeRealCreds != 0 {
		uid, gid = c.RealUID, c.RealGID
	}
	tc := target.creds
	sameIDs := uid == tc.RealUID && uid == tc.EffectiveUID && uid == tc.SavedUID &&
		gid == tc.RealGID && gid == tc.EffectiveGID && gid == tc.SavedGID
	if !sameIDs && !t.hasCapSysPtrace() {
		return unix.EPERM
	}
	// "Deny access if the target process is not dumpable."
	if target.tg.dumpable.Load() != 1 && !t.hasCapSysPtrace() {
		return unix.EPERM
	}
	if mode&ptraceModeAttach != 0 {
		return t.yamaCheck(target)
	}
	return nil
}

// yamaCheck is YAMA's attach check.
func (t *Task) yamaCheck(target *Task) error {
	switch t.k.PtraceScope() {
	case yamaScopeDisabled:
		return nil
	case yamaScopeRelational:
		if t.hasCapSysPtrace() {
			return nil
		}
		k := t.k
		k.mu.Lock()
		defer k.mu.Unlock()
		if isDescendantLocked(t.tg, target.tg) || ptracerExceptionLocked(t.tg, target.tg) {
			return nil
		}
		return unix.EPERM
	case yamaScopeCapability:
		if t.hasCapSysPtrace() {
			return nil
		}
		return unix.EPERM
	}
	return unix.EPERM
}

// isDescendantLocked reports whether child's process is parent's or one
// of its descendants (YAMA: task_is_descendant()).
//
// Preconditions: k.mu is held.
func isDescendantLocked(parent, child *ThreadGroup) bool {
	for g := child; g != nil; g = g.parent {
		if g == parent {
			return true
		}
	}
	return false
}

// ptracerExceptionLocked reports whether tracee declared tracer (or any
// process) its ptracer with PR_SET_PTRACER; the declared tracer may also
// be an ancestor of the real one (YAMA: ptracer_exception_found()).
//
// Preconditions: k.mu is held.
func ptracerExceptionLocked(tracer, tracee *ThreadGroup) bool {
	ex := tracee.ptracerException
	if ex == 0 {
		return false
	}
	if ex == ptracerAny {
		return true
	}
	allowed := tracer.k.groups[ex]
	return allowed != nil && isDescendantLocked(allowed, tracer)
}

// yamaTraceme is YAMA's check for PTRACE_TRACEME: scope 2 needs the
// parent to hold CAP_SYS_PTRACE, scope 3 forbids it.
func (t *Task) yamaTraceme(parent *Task) error {
	switch t.k.PtraceScope() {
	case yamaScopeCapability:
		if parent == nil || !parent.hasCapSysPtrace() {
			return unix.EPERM
		}
	case yamaScopeNoAttach:
		return unix.EPERM
	}
	return nil
}

// setPtracer implements PR_SET_PTRACER: the exception lives in the
// calling process, is not inherited by children, survives exec, and goes
// when the named tracer exits (YAMA: yama_task_prctl()).
func (t *Task) setPtracer(arg int64) error {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case arg == 0:
		t.tg.ptracerException = 0
	case arg == ptracerAny || arg == 0xffffffff:
		t.tg.ptracerException = ptracerAny
	default:
		tr := k.tasks[int32(arg)]
		if tr == nil || int64(int32(arg)) != arg {
			return unix.EINVAL
		}
		t.tg.ptracerException = tr.tg.tgid
	}
	return nil
}

// clearPtracerExceptionsLocked drops the exceptions naming a process that
// exits.
//
// Preconditions: k.mu is held.
func (k *Kernel) clearPtracerExceptionsLocked(dead *ThreadGroup) {
	for _, g := range k.groups {
		if g.ptracerException == dead.tgid {
			g.ptracerException = 0
		}
	}
}

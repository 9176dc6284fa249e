package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

func init() {
	register(unix.SYS_WAIT4, "wait4", sysWait4, argInt, argHex, argHex, argHex)
	register(unix.SYS_WAITID, "waitid", sysWaitid, argInt, argInt, argHex, argHex, argHex)
}

// wait options (Linux: include/uapi/linux/wait.h).
const (
	wNoHang     = 0x1
	wUntraced   = 0x2 // WSTOPPED
	wExited     = 0x4
	wContinued  = 0x8
	wNoWait     = 0x1000000
	wNoThread   = 0x20000000
	wAll        = 0x40000000
	wClone      = 0x80000000
	pAll        = 0
	pPID        = 1
	pPGID       = 2
	pPIDFD      = 3
	waitidFlags = wNoHang | wUntraced | wExited | wContinued | wNoWait | wNoThread | wAll | wClone
)

// waitRequest selects children and events (Linux: kernel/exit.c struct
// wait_opts).
type waitRequest struct {
	idType  int
	id      int32
	options uint32
}

// waitResult is what a wait reports.
type waitResult struct {
	pid    int32
	uid    uint32
	code   int32 // CLD_*
	status int32 // si_status
	wstat  uint32
	// releaseZombie is a traced task whose exit the tracer just reaped;
	// its real parent is told next.
	releaseZombie *Task
}

// eligibleLocked reports whether child c matches the request (Linux:
// eligible_pid() and eligible_child()).
//
// Preconditions: k.mu is held.
func (r *waitRequest) eligibleLocked(t *Task, c *ThreadGroup) bool {
	switch r.idType {
	case pPID:
		if c.tgid != r.id {
			return false
		}
	case pPGID:
		if c.pgid != r.id {
			return false
		}
	}
	if r.options&wAll != 0 {
		return true
	}
	// A "clone" child is one that reports with a signal other than
	// SIGCHLD; __WCLONE selects only those, the default only the others.
	isClone := c.exitSignal != unix.SIGCHLD
	return isClone == (r.options&wClone != 0)
}

// doWait waits for a child event (Linux: kernel/exit.c:do_wait()).
func (t *Task) doWait(r waitRequest) (*waitResult, error) {
	w := NewWaiter()
	t.tg.childWaiters.Add(w)
	defer t.tg.childWaiters.Remove(w)
	for {
		res, found, err := t.waitOnceLocked(r)
		if err != nil || res != nil {
			return res, err
		}
		if !found {
			return nil, unix.ECHILD
		}
		if r.options&wNoHang != 0 {
			return nil, nil
		}
		if err := t.Block(w.C); err != nil {
			return nil, ERESTARTSYS
		}
	}
}

// waitOnceLocked scans the tracees and children once. found reports
// whether any matched the selection at all.
func (t *Task) waitOnceLocked(r waitRequest) (res *waitResult, found bool, err error) {
	k := t.k
	k.mu.Lock()
	if res, f := t.waitTraceesLocked(r); res != nil || f {
		found = f
		if res != nil {
			k.mu.Unlock()
			if res.releaseZombie != nil {
				res.releaseZombie.ptraceReleaseZombie()
			}
			return res, true, nil
		}
	}
	defer k.mu.Unlock()
	groups := []*ThreadGroup{t.tg}
	for _, g := range groups {
		for c := range g.children {
			if !r.eligibleLocked(t, c) {
				continue
			}
			if r.options&wNoThread != 0 && c.creatorTID != t.tid {
				// Linux keeps the parent per thread; a reparented
				// child counts as the reaper's leader's.
				continue
			}
			found = true
			if res := t.waitConsiderLocked(r, c); res != nil {
				return res, true, nil
			}
		}
	}
	return nil, found, nil
}

// waitConsiderLocked reports c's event if it has one the request wants,
// consuming it unless WNOWAIT.
//
// Preconditions: k.mu is held.
func (t *Task) waitConsiderLocked(r waitRequest, c *ThreadGroup) *waitResult {
	nowait := r.options&wNoWait != 0
	switch {
	case c.zombie && r.options&wExited != 0:
		c.mu.Lock()
		st := c.status
		c.mu.Unlock()
		res := &waitResult{pid: c.tgid, uid: c.lastUID, code: cldCode(st), status: cldStatus(st), wstat: waitStatus(st)}
		if !nowait {
			u, s := c.CPUTime()
			t.tg.cutime.Add(int64(u) + c.cutime.Load())
			t.tg.cstime.Add(int64(s) + c.cstime.Load())
			// A traced leader whose tracer is this parent: the one
			// report covers both.
			if l := c.leader; l != nil && l.pt.exitZombie {
				l.pt.exitZombie = false
				l.pt.report = nil
				if l.pt.tracer != nil {
					delete(l.pt.tracer.pt.tracees, l)
					l.pt.tracer = nil
					l.isTraced.Store(false)
				}
			}
			c.reapLocked()
		}
		return res
	case c.stopReport != 0 && r.options&wUntraced != 0:
		sig := c.stopReport
		res := &waitResult{pid: c.tgid, uid: c.uid(), code: arch.CLD_STOPPED, status: int32(sig), wstat: uint32(sig)<<8 | 0x7f}
		if !nowait {
			c.stopReport = 0
		}
		return res
	case c.contReport && r.options&wContinued != 0:
		res := &waitResult{pid: c.tgid, uid: c.uid(), code: arch.CLD_CONTINUED, status: int32(unix.SIGCONT), wstat: 0xffff}
		if !nowait {
			c.contReport = false
		}
		return res
	}
	return nil
}

// sysWait4 implements wait4(2).
func sysWait4(t *Task, a *syscallArgs) (uint64, error) {
	pid := int32(a.int(0))
	opts := uint32(a.u(2))
	if opts&^(wNoHang|wUntraced|wContinued|wNoThread|wAll|wClone) != 0 {
		return 0, unix.EINVAL
	}
	r := waitRequest{options: opts | wExited}
	switch {
	case pid == -1:
		r.idType = pAll
	case pid == 0:
		r.idType, r.id = pPGID, t.pgid()
	case pid < -1:
		if pid == -2147483648 {
			return 0, unix.ESRCH
		}
		r.idType, r.id = pPGID, -pid
	default:
		r.idType, r.id = pPID, pid
	}
	res, err := t.doWait(r)
	if err != nil {
		return 0, err
	}
	if res == nil {
		return 0, nil
	}
	if a.u(1) != 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], res.wstat)
		if err := t.CopyOut(a.u(1), b[:]); err != nil {
			return 0, err
		}
	}
	if a.u(3) != 0 {
		if err := t.CopyOut(a.u(3), make([]byte, rusageSize)); err != nil {
			return 0, err
		}
	}
	return uint64(res.pid), nil
}

// rusageSize is sizeof(struct rusage).
const rusageSize = 144

// sysWaitid implements waitid(2).
func sysWaitid(t *Task, a *syscallArgs) (uint64, error) {
	idType, id, opts := a.int(0), int32(a.int(1)), uint32(a.u(3))
	if opts&^waitidFlags != 0 || opts&(wExited|wUntraced|wContinued) == 0 {
		return 0, unix.EINVAL
	}
	r := waitRequest{idType: idType, id: id, options: opts}
	switch idType {
	case pAll:
	case pPID:
		if id <= 0 {
			return 0, unix.EINVAL
		}
	case pPGID:
		if id < 0 {
			return 0, unix.EINVAL
		}
		if id == 0 {
			r.id = t.pgid()
		}
	case pPIDFD:
		// The pidfd's group, as P_PID; a nonblocking pidfd adds
		// WNOHANG (Linux: kernel/exit.c:kernel_waitid()).
		if id < 0 {
			return 0, unix.EINVAL
		}
		tg, nonblock, err := t.pidfdTarget(int(id), unix.EINVAL)
		if err != nil {
			return 0, err
		}
		r.idType, r.id = pPID, tg.tgid
		if nonblock {
			r.options |= wNoHang
		}
	default:
		return 0, unix.EINVAL
	}
	res, err := t.doWait(r)
	if err != nil {
		return 0, err
	}
	if res == nil && r.options&^opts&wNoHang != 0 {
		// Nothing yet, and only the pidfd asked not to wait.
		return 0, unix.EAGAIN
	}
	if a.u(2) != 0 {
		var info arch.SignalInfo
		if res != nil {
			info.Signo = int32(unix.SIGCHLD)
			info.Code = res.code
			info.SetPid(res.pid)
			info.SetUid(res.uid)
			info.SetStatus(res.status)
		}
		if err := t.CopyOut(a.u(2), info.Bytes()); err != nil {
			return 0, err
		}
	}
	if a.u(4) != 0 {
		if err := t.CopyOut(a.u(4), make([]byte, rusageSize)); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// pgid returns the task's process group.
func (t *Task) pgid() int32 {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.tg.pgid
}

// waitTraceesLocked looks for a stop or exit of a task traced by the
// caller's thread group (Linux: kernel/exit.c:ptrace_do_wait()). Ptrace
// stops are reported without WUNTRACED.
//
// Preconditions: k.mu is held.
func (t *Task) waitTraceesLocked(r waitRequest) (*waitResult, bool) {
	found := false
	t.tg.mu.Lock()
	tracers := make([]*Task, 0, len(t.tg.tasks))
	for _, th := range t.tg.tasks {
		if r.options&wNoThread != 0 && th != t {
			continue
		}
		tracers = append(tracers, th)
	}
	t.tg.mu.Unlock()
	for _, tr := range tracers {
		for te := range tr.pt.tracees {
			if !r.eligibleTraceeLocked(te) {
				continue
			}
			// A traced child of this same process is also found by the
			// children scan; its group exit is reported there.
			if te.pt.exitZombie && te.tid == te.tg.tgid && te.tg.parent == t.tg {
				found = true
				continue
			}
			found = true
			rep := te.pt.report
			if rep == nil {
				continue
			}
			if rep.exited && r.options&wExited == 0 {
				continue
			}
			res := &waitResult{pid: te.tid, uid: te.creds.RealUID, code: rep.code, status: rep.status, wstat: rep.wstat}
			if r.options&wNoWait != 0 {
				return res, true
			}
			te.pt.report = nil
			if rep.exited {
				delete(tr.pt.tracees, te)
				te.pt.tracer = nil
				te.isTraced.Store(false)
				res.releaseZombie = te
			}
			return res, true
		}
	}
	return nil, found
}

// eligibleTraceeLocked applies the pid and clone selection to a tracee.
// Threads other than a leader count as "clone" children (their exit
// signal is none), so they need __WALL or __WCLONE.
//
// Preconditions: k.mu is held.
func (r *waitRequest) eligibleTraceeLocked(te *Task) bool {
	switch r.idType {
	case pPID:
		if te.tid != r.id {
			return false
		}
	case pPGID:
		if te.tg.pgid != r.id {
			return false
		}
	}
	if r.options&wAll != 0 {
		return true
	}
	isClone := te.tid != te.tg.tgid || te.tg.exitSignal != unix.SIGCHLD
	return isClone == (r.options&wClone != 0)
}

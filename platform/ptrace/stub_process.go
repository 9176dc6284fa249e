package ptrace

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// The stub process of an address space is started, served and reaped by
// one control goroutine locked to its OS thread for the stub's life: that
// thread is the stub leader's tracer (PTRACE_TRACEME ties the child to the
// thread that forked it), and only it may inject into the leader.

// nobody is the uid and gid of stubs started by root: a stub then has no
// capabilities and shares no credentials with ringbox.
const nobody = 65534

// cloneFlags create a stub thread: a thread of the stub process sharing
// everything, like pthread_create() - clone(2).
const cloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_THREAD | unix.CLONE_SYSVSEM

// controlRequest is work for the control thread; it gets the stub leader.
type controlRequest struct {
	fn   func(leader *tracee) error
	done chan error
}

// control runs on its own goroutine: it starts the stub, reports the
// outcome on started, serves requests until Release, then kills and reaps
// the stub.
func (a *addressSpace) control(started chan<- error) {
	// Never unlocked while a stub lives: if this goroutine died locked,
	// the runtime would end the thread and PR_SET_PDEATHSIG would take
	// the stub with it, which is the safe outcome.
	runtime.LockOSThread()
	leader, err := a.startStub()
	if err != nil {
		runtime.UnlockOSThread()
		close(a.done)
		started <- err
		return
	}
	started <- nil
	for {
		select {
		case req := <-a.reqs:
			req.done <- req.fn(leader)
		case <-a.quit:
			a.killAndReap()
			runtime.UnlockOSThread()
			close(a.done)
			return
		}
	}
}

// call runs fn on the control thread and returns its error.
func (a *addressSpace) call(fn func(leader *tracee) error) error {
	req := controlRequest{fn: fn, done: make(chan error, 1)}
	select {
	case a.reqs <- req:
		return <-req.done
	case <-a.done:
		return errReleased
	}
}

// errReleased is returned by operations on a released address space.
var errReleased = errors.New("ptrace: address space released")

// startStub execs the stub with PTRACE_TRACEME and walls it in. On error
// nothing is left running.
func (a *addressSpace) startStub() (*tracee, error) {
	sys := &syscall.SysProcAttr{
		Ptrace:    true,
		Pdeathsig: syscall.SIGKILL,
		// Its own session: no controlling terminal, so ^C at the
		// terminal signals ringbox, not the stubs.
		Setsid: true,
	}
	if os.Getuid() == 0 {
		sys.Credential = &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}
	}
	attr := &syscall.ProcAttr{
		Env: []string{},
		// The memory file becomes fd 0 (stubFD); Go closes 1 and 2
		// and every other descriptor of ringbox is close-on-exec (a
		// stray one is closed by close_range below).
		Files: []uintptr{uintptr(a.p.mf.FD())},
		Sys:   sys,
	}
	path := fmt.Sprintf("/proc/self/fd/%d", a.p.stubFD)
	pid, err := syscall.ForkExec(path, []string{"ringbox-stub"}, attr)
	if err != nil {
		return nil, fmt.Errorf("start stub process: %w", err)
	}
	a.pid = tid(pid)
	leader := &tracee{tid: tid(pid)}
	if err := a.setupStub(leader); err != nil {
		a.killAndReap()
		return nil, fmt.Errorf("set up stub process %d: %w", pid, err)
	}
	a.p.log.Debug("stub started", zap.Int("pid", pid))
	return leader, nil
}

// setupStub takes the stub from its post-exec stop to serving: ptrace
// options set, descriptors closed, every mapping but its own two pages
// removed, no_new_privs and the seccomp filter in place.
func (a *addressSpace) setupStub(l *tracee) error {
	// "If the PTRACE_O_TRACEEXEC option is not in effect, all successful
	// calls to execve(2) by the traced process will cause it to be sent a
	// SIGTRAP signal" - ptrace(2).
	ws, _, err := wait4(l.tid, 0)
	if err != nil {
		return fmt.Errorf("wait for exec stop: %w", err)
	}
	if !ws.Stopped() || ws.StopSignal() != unix.SIGTRAP {
		return fmt.Errorf("after exec: %s, want a SIGTRAP stop", describeStatus(ws))
	}
	if err := ptraceRaw(unix.PTRACE_SETOPTIONS, l.tid, 0, unix.PTRACE_O_EXITKILL|unix.PTRACE_O_TRACESYSGOOD); err != nil {
		return fmt.Errorf("PTRACE_SETOPTIONS: %w", err)
	}
	if err := ptraceGetRegs(l.tid, &l.regs); err != nil {
		return err
	}
	steps := []struct {
		what string
		nr   uintptr
		args []uint64
	}{
		{"close_range", unix.SYS_CLOSE_RANGE, []uint64{stubFD + 1, uint64(^uint32(0)), 0}},
		// The host put the stub's stack, vdso and vvar in the lower
		// half; the program's address space is ringbox's to fill.
		{"munmap below the stub", unix.SYS_MUNMAP, []uint64{0, stubStart}},
		{"munmap above the stub", unix.SYS_MUNMAP, []uint64{stubEnd, arch.MaxUserAddress - stubEnd}},
		// A seccomp kill is a SIGSYS, whose default action dumps core.
		{"setrlimit(RLIMIT_CORE)", unix.SYS_SETRLIMIT, []uint64{unix.RLIMIT_CORE, stubData + dataOffNoCore}},
		// seccomp(2): without CAP_SYS_ADMIN a filter needs no_new_privs.
		{"prctl(PR_SET_NO_NEW_PRIVS)", unix.SYS_PRCTL, []uint64{unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0}},
		{"seccomp", unix.SYS_SECCOMP, []uint64{unix.SECCOMP_SET_MODE_FILTER, 0, stubData + dataOffFprog}},
	}
	for _, s := range steps {
		if _, err := injectResult(l.inject(stubInjectSyscall, s.nr, s.args...)); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// cloneThread makes a new stub thread, idling in the wait loop, untraced.
// It runs on the control thread.
func (a *addressSpace) cloneThread(l *tracee) (tid, error) {
	r, err := injectResult(l.inject(stubCloneSyscall, unix.SYS_CLONE, cloneFlags, stubThreadStack, 0, 0, 0))
	if err != nil {
		return 0, fmt.Errorf("clone stub thread in stub %d: %w", a.pid, err)
	}
	return tid(r), nil
}

// killAndReap SIGKILLs the stub and reaps all its threads, whoever traces
// them: wait4 with __WALL from any thread of ringbox collects the tracees
// of every other thread. It runs on the control thread (the leader's
// tracer and parent).
func (a *addressSpace) killAndReap() {
	if a.pid <= 0 {
		// kill(0) or kill(-1) would hit ringbox's process group or every
		// process of the user: never signal a non-positive pid.
		a.p.log.Error("stub has no pid; nothing to kill", zap.Int("pid", int(a.pid)))
		return
	}
	if err := unix.Kill(int(a.pid), unix.SIGKILL); err != nil && err != unix.ESRCH {
		a.p.log.Error("kill stub", zap.Int("pid", int(a.pid)), zap.Error(err))
	}
	a.mu.Lock()
	var tids []tid
	for _, t := range a.tids {
		tids = append(tids, t)
	}
	for t := range a.threads {
		t.reaped = true
	}
	a.tids = nil
	a.mu.Unlock()
	// The leader can only be reaped once every other thread has been
	// (Linux: kernel/exit.c:delay_group_leader()).
	for _, t := range append(tids, a.pid) {
		reapThread(t, a.p.log)
	}
}

// reapThread waits for a killed thread until it is gone; ECHILD means it
// was already reaped (or, untraced and not a leader, reaped itself).
func reapThread(t tid, log *zap.Logger) {
	for {
		ws, _, err := wait4(t, 0)
		if err == unix.ECHILD {
			return
		}
		if err != nil {
			log.Error("reap stub thread", zap.Int("tid", int(t)), zap.Error(err))
			return
		}
		if ws.Exited() || ws.Signaled() {
			return
		}
	}
}

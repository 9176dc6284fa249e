package kernel

import (
	"encoding/binary"
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/boot/loader"
)

func init() {
	register(unix.SYS_EXECVE, "execve", sysExecve, argPath, argHex, argHex)
	register(unix.SYS_EXECVEAT, "execveat", sysExecveat, argFD, argPath, argHex, argHex, argHex)
}

// Limits of execve's arguments (Linux: include/uapi/linux/binfmts.h).
const maxArgStrings = 0x7fffffff

func sysExecve(t *Task, a *syscallArgs) (uint64, error) {
	return t.execve(unix.AT_FDCWD, a.u(0), a.u(1), a.u(2), 0)
}

func sysExecveat(t *Task, a *syscallArgs) (uint64, error) {
	return t.execve(a.int(0), a.u(1), a.u(2), a.u(3), a.int(4))
}

// copyInStrings reads a NULL-terminated array of string pointers.
func (t *Task) copyInStrings(addr uint64) ([]string, error) {
	var out []string
	if addr == 0 {
		return nil, nil
	}
	var total int
	for i := 0; ; i++ {
		if i >= maxArgStrings {
			return nil, unix.E2BIG
		}
		var b [8]byte
		if err := t.CopyIn(addr+uint64(8*i), b[:]); err != nil {
			return nil, err
		}
		p := binary.LittleEndian.Uint64(b[:])
		if p == 0 {
			return out, nil
		}
		s, err := t.CopyInString(p, loader.MaxArgStrlen-1)
		if err != nil {
			if errors.Is(err, unix.ENAMETOOLONG) {
				return nil, unix.E2BIG
			}
			return nil, err
		}
		total += len(s) + 1
		if total > 32<<20 {
			return nil, unix.E2BIG
		}
		out = append(out, s)
	}
}

// execve replaces the calling process's program (Linux: fs/exec.c).
//
// TODO(ringbox): until the sandbox has its own root filesystem, paths are
// looked up read-only on the host (relative to ringbox's working
// directory), and /proc/self/exe names the running program.
func (t *Task) execve(dirfd int, pathAddr, argvAddr, envpAddr uint64, flags int) (uint64, error) {
	if flags&^(unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW) != 0 {
		return 0, unix.EINVAL
	}
	path, err := t.CopyInString(pathAddr, unix.PathMax-1)
	if err != nil {
		return 0, err
	}
	emptyPath := path == ""
	if emptyPath && flags&unix.AT_EMPTY_PATH == 0 {
		return 0, unix.ENOENT
	}
	if !emptyPath && dirfd != unix.AT_FDCWD && path[0] != '/' {
		// TODO(ringbox): directory descriptors come with the filesystem.
		return 0, unix.EBADF
	}
	argv, err := t.copyInStrings(argvAddr)
	if err != nil {
		return 0, err
	}
	envv, err := t.copyInStrings(envpAddr)
	if err != nil {
		return 0, err
	}
	var exe *executable
	if emptyPath {
		// execveat(fd, "", AT_EMPTY_PATH): the program in fd.
		exe, err = t.loadExecutableFD(dirfd)
	} else {
		hostPath := path
		switch path {
		case "/proc/self/exe", "/proc/thread-self/exe", procPath(t.tg.tgid, "exe"):
			hostPath = t.tg.exe
		}
		if exe, err = t.k.loadExecutable(hostPath); err == nil {
			exe.name = path
		}
	}
	if err != nil {
		return 0, execErrno(err)
	}
	oldTID := t.tid
	if err := t.deThread(); err != nil {
		exe.release()
		return 0, err
	}
	t.tg.execTimers()
	// The point of no return: from here a failure kills the process
	// (Linux: a failed exec after de_thread() is fatal).
	t.execReleaseOld()
	if err := t.execImage(exe, argv, envv); err != nil {
		if errors.Is(err, unix.E2BIG) {
			t.tg.exitGroup(ExitStatus{Signal: unix.SIGSEGV})
			return 0, errTaskExit
		}
		t.tg.exitGroup(ExitStatus{Signal: unix.SIGKILL})
		return 0, errTaskExit
	}
	t.execResetState()
	t.k.mu.Lock()
	t.tg.execed = true
	opts, seized, traced := t.pt.options, t.pt.seized, t.pt.tracer != nil
	t.k.mu.Unlock()
	// ptrace: PTRACE_EVENT_EXEC with the former thread ID, or, for a
	// tracee attached without PTRACE_SEIZE, a SIGTRAP (ptrace(2)
	// "execve(2) under ptrace").
	if traced {
		if opts&unix.PTRACE_O_TRACEEXEC != 0 {
			t.ptraceEvent(unix.PTRACE_EVENT_EXEC, unix.PTRACE_O_TRACEEXEC, uint64(oldTID))
		} else if !seized {
			info := &arch.SignalInfo{Signo: int32(unix.SIGTRAP), Code: arch.SI_USER}
			info.SetPid(t.tg.tgid)
			info.SetUid(t.creds.RealUID)
			t.SendSignal(info)
		}
	}
	return 0, errNoReturnValue
}

// execErrno maps a loading failure to execve's errno.
func execErrno(err error) error {
	var errno unix.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return unix.ENOENT
	case errors.Is(err, loader.ErrNotELF), errors.Is(err, loader.ErrWrongArch),
		errors.Is(err, loader.ErrBadELF), errors.Is(err, loader.ErrDynamic):
		return unix.ENOEXEC
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, ErrNotExecutable):
		return unix.EACCES
	}
	return unix.EIO
}

// deThread kills the other threads of the group and waits until they are
// gone; a non-leader takes over the leader's TID (Linux: fs/exec.c:
// de_thread()).
func (t *Task) deThread() error {
	tg := t.tg
	tg.mu.Lock()
	if tg.exiting || tg.execing != nil {
		tg.mu.Unlock()
		return ERESTARTNOINTR
	}
	if len(tg.tasks) == 1 {
		tg.mu.Unlock()
		return nil
	}
	tg.execing = t
	var others []*Task
	for _, o := range tg.tasks {
		if o != t {
			others = append(others, o)
		}
	}
	tg.mu.Unlock()
	for _, o := range others {
		o.sendKill()
	}
	w := NewWaiter()
	tg.threadsGone.Add(w)
	defer tg.threadsGone.Remove(w)
	for {
		tg.mu.Lock()
		n := len(tg.tasks)
		tg.mu.Unlock()
		if n == 1 {
			break
		}
		// Only SIGKILL can interrupt this (the killed threads die
		// promptly).
		select {
		case <-w.C:
		case <-t.interruptCh:
			if t.killed.Load() {
				tg.mu.Lock()
				tg.execing = nil
				tg.mu.Unlock()
				return errTaskExit
			}
		}
	}
	k := t.k
	k.mu.Lock()
	tg.mu.Lock()
	tg.execing = nil
	if t.tid != tg.tgid {
		// Take the leader's identity: the process keeps its PID.
		delete(k.tasks, t.tid)
		delete(tg.tasks, t.tid)
		t.tid = tg.tgid
		k.tasks[t.tid] = t
		tg.tasks[t.tid] = t
	}
	tg.mu.Unlock()
	k.mu.Unlock()
	return nil
}

// execReleaseOld does what Linux's exec_mm_release() does for the old
// program: robust futexes, clear_child_tid, and the vfork parent.
func (t *Task) execReleaseOld() {
	if t.mm != nil {
		t.exitRobustList()
		if t.clearChildTID != 0 {
			var zero [4]byte
			if err := t.CopyOut(t.clearChildTID, zero[:]); err == nil {
				t.k.futexWake(t, t.clearChildTID, 1)
			}
		}
	}
	t.robustList, t.robustLen, t.clearChildTID = 0, 0, 0
	t.vforkRelease()
}

// execResetState applies the rest of execve(2)'s effects: caught signals
// reset, alternate stack cleared, close-on-exec descriptors closed.
func (t *Task) execResetState() {
	tg := t.tg
	old := tg.handlers.Load()
	// Unshare a table shared with another process (CLONE_SIGHAND).
	nh := old.copy()
	nh.mu.Lock()
	nh.resetForExecLocked()
	nh.mu.Unlock()
	old.mu.Lock()
	tg.handlers.Store(nh)
	old.mu.Unlock()
	t.altStack = arch.SignalStack{Flags: arch.SS_DISABLE}
	// Capabilities across execve without file capabilities (Linux:
	// security/commoncap.c:cap_bprm_creds_from_file()): root gets the
	// full permitted set, effective if its euid is 0; others none.
	c := &t.creds
	c.CapPermitted, c.CapEffective = 0, 0
	c.rootCaps()
	nfdt := t.fdt.Unshare()
	t.fdtMu.Lock()
	t.fdt = nfdt
	t.fdtMu.Unlock()
	t.fdt.CloseOnExec()
	t.restart = nil
	t.rseq = rseqState{}
}

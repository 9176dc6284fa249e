package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

func init() {
	register(unix.SYS_CLONE, "clone", sysClone, argHex, argHex, argHex, argHex, argHex)
	register(unix.SYS_CLONE3, "clone3", sysClone3, argHex, argInt)
	register(unix.SYS_FORK, "fork", sysFork)
	register(unix.SYS_VFORK, "vfork", sysVfork)
}

// cloneArgs are clone's parameters after decoding (Linux: struct
// kernel_clone_args).
type cloneArgs struct {
	flags      uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	parentTID  uint64
	childTID   uint64
	tls        uint64
	// pidfd is where CLONE_PIDFD stores the pidfd's number.
	pidfd uint64
}

// clone3-only flags (Linux: include/uapi/linux/sched.h).
const (
	cloneClearSighand = 0x100000000
	cloneIntoCgroup   = 0x200000000
)

// Namespace flags ringbox does not implement yet.
const cloneNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

func sysClone(t *Task, a *syscallArgs) (uint64, error) {
	flags := a.u(0)
	// clone() stores the pidfd at parent_tid, so the two cannot go
	// together (Linux: kernel/fork.c:SYSCALL_DEFINE5(clone)).
	if flags&unix.CLONE_PIDFD != 0 && flags&unix.CLONE_PARENT_SETTID != 0 {
		return 0, unix.EINVAL
	}
	// x86-64 argument order: flags, newsp, parent_tid, child_tid, tls.
	return t.clone(cloneArgs{
		flags:      flags &^ 0xff,
		exitSignal: flags & 0xff,
		stack:      a.u(1),
		parentTID:  a.u(2),
		childTID:   a.u(3),
		tls:        a.u(4),
		pidfd:      a.u(2),
	})
}

func sysFork(t *Task, _ *syscallArgs) (uint64, error) {
	return t.clone(cloneArgs{exitSignal: uint64(unix.SIGCHLD)})
}

func sysVfork(t *Task, _ *syscallArgs) (uint64, error) {
	return t.clone(cloneArgs{flags: unix.CLONE_VM | unix.CLONE_VFORK, exitSignal: uint64(unix.SIGCHLD)})
}

// clone3's struct clone_args sizes (Linux: CLONE_ARGS_SIZE_VER0..2).
const (
	cloneArgsSizeVer0 = 64
	cloneArgsSizeMax  = 88
)

func sysClone3(t *Task, a *syscallArgs) (uint64, error) {
	size := a.u(1)
	if size > pageSize {
		return 0, unix.E2BIG
	}
	if size < cloneArgsSizeVer0 {
		return 0, unix.EINVAL
	}
	buf := make([]byte, size)
	if err := t.CopyIn(a.u(0), buf); err != nil {
		return 0, err
	}
	// A larger struct than ringbox knows must have zero tail bytes
	// (Linux: copy_struct_from_user()).
	for _, b := range buf[min(size, cloneArgsSizeMax):] {
		if b != 0 {
			return 0, unix.E2BIG
		}
	}
	get := func(i int) uint64 {
		if uint64(8*i+8) > size {
			return 0
		}
		return binary.LittleEndian.Uint64(buf[8*i:])
	}
	// struct clone_args: flags, pidfd, child_tid, parent_tid,
	// exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup
	// (Linux: include/uapi/linux/sched.h).
	ca := cloneArgs{
		flags:      get(0),
		childTID:   get(2),
		parentTID:  get(3),
		exitSignal: get(4),
		stack:      get(5),
		stackSize:  get(6),
		tls:        get(7),
		pidfd:      get(1),
	}
	if get(8) != 0 || get(9) != 0 || get(10) != 0 {
		// set_tid, set_tid_size, cgroup: not supported.
		return 0, unix.EINVAL
	}
	// Linux: clone3_args_valid(): only the legacy flags (the low 32
	// bits, less CSIGNAL) and CLONE_CLEAR_SIGHAND/CLONE_INTO_CGROUP.
	if ca.flags&^(0xffffffff|cloneClearSighand|cloneIntoCgroup) != 0 || ca.flags&0xff != 0 || ca.exitSignal&^0xff != 0 {
		return 0, unix.EINVAL
	}
	if ca.flags&cloneIntoCgroup != 0 {
		// TODO(ringbox): cgroups.
		return 0, unix.EINVAL
	}
	if ca.flags&cloneClearSighand != 0 && ca.flags&unix.CLONE_SIGHAND != 0 {
		return 0, unix.EINVAL
	}
	if (ca.stack == 0) != (ca.stackSize == 0) {
		return 0, unix.EINVAL
	}
	if ca.stack != 0 {
		ca.stack += ca.stackSize
	}
	return t.clone(ca)
}

// clone creates a task (Linux: kernel/fork.c:copy_process()).
func (t *Task) clone(ca cloneArgs) (uint64, error) {
	f := ca.flags
	// Flag validation, in copy_process()'s order.
	if f&(unix.CLONE_NEWNS|unix.CLONE_FS) == unix.CLONE_NEWNS|unix.CLONE_FS ||
		f&(unix.CLONE_NEWUSER|unix.CLONE_FS) == unix.CLONE_NEWUSER|unix.CLONE_FS {
		return 0, unix.EINVAL
	}
	if f&unix.CLONE_THREAD != 0 && f&unix.CLONE_SIGHAND == 0 {
		return 0, unix.EINVAL
	}
	if f&unix.CLONE_SIGHAND != 0 && f&unix.CLONE_VM == 0 {
		return 0, unix.EINVAL
	}
	if f&cloneNamespaces != 0 {
		// TODO(ringbox): namespaces inside the sandbox.
		return 0, unix.EINVAL
	}
	if f&unix.CLONE_PIDFD != 0 && f&unix.CLONE_THREAD != 0 {
		// TODO(ringbox): Linux 6.9+ makes this a pidfd of the new
		// thread (PIDFD_THREAD); ringbox keeps the older EINVAL.
		return 0, unix.EINVAL
	}
	sig := unix.Signal(ca.exitSignal)
	if sig > numSignals {
		return 0, unix.EINVAL
	}
	k := t.k
	if f&unix.CLONE_PARENT != 0 && t.tg == k.initGroup() {
		// Init may not create siblings: they would have no parent to
		// reap them (Linux: copy_process(), SIGNAL_UNKILLABLE).
		return 0, unix.EINVAL
	}
	if ca.stack != 0 && !userRangeOK(ca.stack, 0) {
		return 0, unix.EINVAL
	}

	ctx, err := k.platform.NewContext()
	if err != nil {
		return 0, unix.EAGAIN
	}
	k.mu.Lock()
	tid, err := k.allocTIDLocked()
	k.mu.Unlock()
	if err != nil {
		ctx.Release()
		return 0, err
	}

	// The address space.
	var mm *MemoryManager
	if f&unix.CLONE_VM != 0 {
		mm = t.mm
		mm.incUsers()
	} else {
		if mm, err = t.mm.Fork(); err != nil {
			ctx.Release()
			return 0, unix.ENOMEM
		}
	}

	var tg *ThreadGroup
	if f&unix.CLONE_THREAD != 0 {
		tg = t.tg
	} else {
		h := t.tg.handlers.Load()
		if f&unix.CLONE_SIGHAND == 0 {
			h = h.copy()
			if f&cloneClearSighand != 0 {
				// Caught signals back to SIG_DFL, ignored ones stay
				// (Linux: copy_sighand()).
				h.mu.Lock()
				h.resetForExecLocked()
				h.mu.Unlock()
			}
		}
		tg = k.newThreadGroup(tid, h, t.tg.limits.copy())
		tg.exe = t.tg.exe
		tg.exitSignal = sig
		tg.dumpable.Store(t.tg.dumpable.Load())
		tg.personality.Store(t.tg.personality.Load())
	}
	nt := k.newTaskStruct(tid, tg, ctx)
	if f&unix.CLONE_THREAD == 0 {
		tg.leader = nt
	}
	nt.mm = mm
	nt.creds = t.creds
	nt.creds.Groups = append([]uint32(nil), t.creds.Groups...)
	nt.name = t.name
	nt.noNewPrivs.Store(t.noNewPrivs.Load())
	t.sc.inheritTo(&nt.sc)
	t.rseqFork(nt, f)
	// The scheduling policy is inherited unless SCHED_RESET_ON_FORK.
	if p := t.schedPolicy.Load(); p&schedResetOnFork == 0 {
		nt.schedPolicy.Store(p)
		nt.schedPrio.Store(t.schedPrio.Load())
	}
	nt.affinityMask = t.affinity(len(t.cpuMaskBytes(8)))
	nt.applyAffinity()
	nt.pdeathSignal.Store(0)
	nt.fs = t.fs
	if f&unix.CLONE_FS == 0 {
		nt.fs = t.fs.fork()
	}
	if f&unix.CLONE_FILES != 0 {
		t.fdt.IncRef()
		nt.fdt = t.fdt
	} else {
		nt.fdt = t.fdt.Fork()
	}

	// Registers: the child returns 0 from the call.
	nt.st.Regs = t.st.Regs
	nt.st.Regs.Rax = 0
	if ca.stack != 0 {
		nt.st.Regs.Rsp = ca.stack
	}
	if f&unix.CLONE_SETTLS != 0 {
		if ca.tls >= arch.MaxUserAddress {
			nt.release()
			return 0, unix.EPERM
		}
		nt.st.Regs.FsBase = ca.tls
	}
	if !t.st.FPValid {
		if err := t.ctx.PullFPState(&t.st); err != nil {
			nt.release()
			return 0, unix.EAGAIN
		}
	}
	nt.st.SetFP(t.st.FP.Clone())
	// The child keeps DR6 and DR7 but no breakpoints (Linux:
	// copy_thread() -> flush_ptrace_hw_breakpoint()).
	nt.st.DebugRegs = arch.ForkDebugRegs(t.st.DebugRegs)
	nt.st.DebugDirty = true

	// Signals: the mask is inherited, nothing is pending; the alternate
	// stack is kept unless the child shares the memory without vfork
	// (Linux: copy_process() clears sas_ss_sp for CLONE_VM without
	// CLONE_VFORK).
	h := t.sigLock()
	nt.sigMask = t.sigMask
	h.mu.Unlock()
	if f&(unix.CLONE_VM|unix.CLONE_VFORK) != unix.CLONE_VM {
		nt.altStack = t.altStack
	} else {
		nt.altStack = arch.SignalStack{Flags: arch.SS_DISABLE}
	}

	if f&unix.CLONE_CHILD_CLEARTID != 0 {
		nt.clearChildTID = ca.childTID
	}
	if f&unix.CLONE_CHILD_SETTID != 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(tid))
		nt.CopyOut(ca.childTID, b[:])
	}
	if f&unix.CLONE_PARENT_SETTID != 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(tid))
		if err := t.CopyOut(ca.parentTID, b[:]); err != nil {
			nt.release()
			return 0, err
		}
	}
	pidfd := -1
	if f&unix.CLONE_PIDFD != 0 {
		if pidfd, err = t.installClonePidfd(tg, ca.pidfd); err != nil {
			nt.release()
			return 0, err
		}
	}
	var vforkDone chan struct{}
	if f&unix.CLONE_VFORK != 0 {
		vforkDone = make(chan struct{})
		nt.vforkDone = vforkDone
	}

	// Link it into the process tree and the thread group.
	k.mu.Lock()
	if f&unix.CLONE_THREAD == 0 {
		parent := t.tg
		if f&unix.CLONE_PARENT != 0 {
			parent = t.tg.parent
			tg.exitSignal = t.tg.exitSignal
		}
		tg.parent = parent
		tg.creatorTID = t.tid
		if parent != nil {
			parent.children[tg] = struct{}{}
		}
		tg.pgid, tg.sid = t.tg.pgid, t.tg.sid
		k.groups[tid] = tg
	}
	t.tg.mu.Lock()
	dying := t.tg.exiting || t.killed.Load()
	if !dying {
		tg.tasks[tid] = nt
		k.tasks[tid] = nt
	}
	t.tg.mu.Unlock()
	if dying {
		if f&unix.CLONE_THREAD == 0 {
			delete(k.groups, tid)
			if tg.parent != nil {
				delete(tg.parent.children, tg)
			}
		}
		k.mu.Unlock()
		t.undoClonePidfd(pidfd)
		nt.release()
		// The caller is being killed; its return value does not matter.
		return 0, unix.EINTR
	}
	// ptrace: the child is traced too when the parent's tracer asked for
	// this kind of event, or with CLONE_PTRACE (Linux: kernel/fork.c:
	// kernel_clone() and ptrace_init_task()).
	event, option := cloneEvent(f, sig)
	var tracer *Task
	if f&unix.CLONE_UNTRACED == 0 && t.pt.tracer != nil &&
		(t.pt.options&option != 0 || f&unix.CLONE_PTRACE != 0) {
		tracer = t.pt.tracer
		nt.attachLocked(tracer, t.pt.seized, t.pt.options)
		if t.pt.seized {
			// A seized child starts in PTRACE_EVENT_STOP.
			nt.pt.interrupt = true
			nt.ptInterrupt.Store(true)
		}
	}
	k.mu.Unlock()
	if tracer != nil && !t.pt.seized {
		// A non-seized child starts with SIGSTOP pending.
		nt.pending.add(&arch.SignalInfo{Signo: int32(unix.SIGSTOP), Code: arch.SI_USER})
	}
	if f&unix.CLONE_THREAD != 0 {
		// A new thread joins a pending group stop.
		hh := t.sigLock()
		if t.tg.groupStopPending {
			t.tg.groupStopRemaining++
		}
		hh.mu.Unlock()
	}
	nt.semUndo = t.cloneSemUndo(f)
	nt.start()
	t.ptraceEvent(event, option, uint64(tid))

	if vforkDone != nil {
		// The parent sleeps until the child execs or exits; only a fatal
		// signal ends the wait early (Linux: wait_for_vfork_done()).
	wait:
		for {
			select {
			case <-vforkDone:
				break wait
			case <-t.interruptCh:
				if t.killed.Load() {
					break wait
				}
			}
		}
		t.ptraceEvent(unix.PTRACE_EVENT_VFORK_DONE, unix.PTRACE_O_TRACEVFORKDONE, uint64(tid))
	}
	return uint64(tid), nil
}

// cloneEvent is the ptrace event a clone reports and the option that
// enables it (Linux: kernel/fork.c:kernel_clone()).
func cloneEvent(flags uint64, exitSignal unix.Signal) (int, uint32) {
	switch {
	case flags&unix.CLONE_VFORK != 0:
		return unix.PTRACE_EVENT_VFORK, unix.PTRACE_O_TRACEVFORK
	case exitSignal != unix.SIGCHLD:
		return unix.PTRACE_EVENT_CLONE, unix.PTRACE_O_TRACECLONE
	}
	return unix.PTRACE_EVENT_FORK, unix.PTRACE_O_TRACEFORK
}

// initGroup returns the sandbox's first process.
func (k *Kernel) initGroup() *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.init
}

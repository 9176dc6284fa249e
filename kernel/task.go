package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// ThreadGroup is a Linux process: the threads sharing a TGID.
type ThreadGroup struct {
	k    *Kernel
	tgid int32

	// handlers are the signal actions (shared by CLONE_SIGHAND); their
	// mutex is the siglock. Swapped only by exec, when the group has one
	// thread.
	handlers atomic.Pointer[SignalHandlers]

	// The fields below up to mu are protected by the siglock.

	// pending holds process-directed signals.
	pending pendingQueue
	// groupStopPending: a stop signal's default action is in progress
	// and some threads have not stopped yet.
	groupStopPending bool
	// groupStopSignal is the signal that stopped the group.
	groupStopSignal unix.Signal
	// groupStopRemaining counts threads that have yet to stop.
	groupStopRemaining int
	// groupStopped: every thread has stopped.
	groupStopped bool
	// contCh is closed when the group stop ends.
	contCh chan struct{}

	mu sync.Mutex
	// tasks are the live threads. Protected by mu.
	tasks map[int32]*Task
	// exiting is set once the group is being torn down (exit_group or a
	// fatal signal). Protected by mu.
	exiting bool
	// status is the group's exit status once exiting. Protected by mu.
	status ExitStatus
	// execing is the thread running execve while it kills the others.
	// Protected by mu.
	execing *Task
	// threadsGone is notified when a thread leaves tasks.
	threadsGone WaitQueue

	// The process tree; protected by Kernel.mu (the "tasklist lock").
	parent   *ThreadGroup
	children map[*ThreadGroup]struct{}
	// creatorTID is the thread of the parent that forked the group, for
	// __WNOTHREAD (Linux keeps the parent per thread).
	creatorTID int32
	pgid       int32
	sid        int32
	// exitSignal is sent to the parent when the group dies (SIGCHLD, or
	// the signal in clone's flags; 0 for none).
	exitSignal unix.Signal
	// zombie: every thread has exited; the parent has not reaped it.
	zombie bool
	// reaped: the group is gone.
	reaped bool
	// stopReport and contReport are pending WUNTRACED and WCONTINUED
	// reports for the parent's wait.
	stopReport unix.Signal
	contReport bool
	subreaper  bool
	// execed: the group has called execve (setpgid on it then fails).
	execed bool
	// childWaiters are the group's threads blocked in wait.
	childWaiters WaitQueue

	// limits are the resource limits.
	limits *Limits

	// exe is the path of the executable, for /proc/self/exe.
	exe string

	// leader is the group's first thread (which may have exited).
	leader *Task
	// ptracerException is PR_SET_PTRACER's process (ptracerAny for any).
	// Protected by Kernel.mu.
	ptracerException int32

	// exitDeferred: the group is dead, but its traced leader's exit has
	// not been reaped by the tracer yet; the parent learns of the exit
	// afterwards (ptrace(2)). Protected by Kernel.mu.
	exitDeferred bool

	// lastUID is the real UID of the last thread, for SIGCHLD's si_uid
	// once no thread is left. Protected by mu.
	lastUID uint32

	// utime and stime are the CPU times of all the group's threads,
	// including dead ones; cutime and cstime those of reaped children
	// (times(2), getrusage(RUSAGE_CHILDREN)).
	utime, stime, cutime, cstime atomic.Int64
	// nice is the group's nice value (setpriority).
	nice atomic.Int32
	// xcpuSent is the CPU second for which SIGXCPU was last sent.
	xcpuSent atomic.Int64

	// personality is personality(2)'s value.
	personality atomic.Uint32

	// dumpable is PR_GET_DUMPABLE's value.
	dumpable atomic.Int32
}

// Credentials are a task's user and group IDs.
type Credentials struct {
	RealUID, EffectiveUID, SavedUID, FSUID uint32
	RealGID, EffectiveGID, SavedGID, FSGID uint32
	Groups                                 []uint32
	// CapEffective, CapPermitted and CapInheritable are the capability
	// sets, one bit per CAP_* number (capabilities(7)).
	CapEffective, CapPermitted, CapInheritable uint64
}

// Capabilities the kernel checks.
const (
	capKill      = 5
	capSetgid    = 6
	capSetuid    = 7
	capSysPtrace = 19
	capSysAdmin  = 21
	capSysNice   = 23
	// capAll is every capability of Linux 6.1 (CAP_LAST_CAP = 40).
	capAll = 1<<41 - 1
)

// has reports whether the effective set holds capability c.
func (c *Credentials) has(cap int) bool { return c.CapEffective&(1<<cap) != 0 }

// rootCaps gives a uid-0 identity the full sets, as Linux does for root.
func (c *Credentials) rootCaps() {
	if c.EffectiveUID == 0 || c.RealUID == 0 {
		c.CapPermitted = capAll
	}
	if c.EffectiveUID == 0 {
		c.CapEffective = c.CapPermitted
	}
}

// Task is a Linux thread.
type Task struct {
	k   *Kernel
	tid int32
	tg  *ThreadGroup
	log *zap.Logger

	// ctx runs the task's user code. Only the task goroutine uses it,
	// except Interrupt and platform.CPUAffinity.SetCPUs (sched_setaffinity).
	ctx platform.Context
	// st is the CPU state while the task is in the kernel. Only the task
	// goroutine touches it.
	st arch.State

	// mm is the address space. Only the task goroutine changes it.
	mm *MemoryManager
	// fdt is the file descriptor table.
	fdt *FDTable
	// fdtMu guards changes of the fdt pointer (exec, unshare, exit)
	// against other tasks reading it (fdTableRef); the task itself reads
	// fdt without it.
	fdtMu sync.Mutex
	// fs is the filesystem context (shared by CLONE_FS).
	fs *FSContext
	// semUndo is the System V semaphore undo list (shared by
	// CLONE_SYSVSEM; nil until the first SEM_UNDO). Only the task
	// goroutine changes the pointer; the list is protected by
	// semNamespace.mu (sem_op.go).
	semUndo *semUndoList

	// creds are the credentials; changed only by the task itself.
	creds Credentials

	// clearChildTID is set_tid_address(2)'s address.
	clearChildTID uint64
	// robustList is set_robust_list(2)'s head and length.
	robustList, robustLen uint64

	// name is the comm (PR_SET_NAME).
	name string

	// killed is set when SIGKILL (or the end of the sandbox) must end
	// the task at its next check.
	killed atomic.Bool

	// interruptCh receives a token when the task must leave a blocking
	// wait (see Block).
	interruptCh chan struct{}

	// Signal state, protected by the siglock.
	pending pendingQueue
	sigMask SignalSet
	// realBlocked is the mask to restore after rt_sigtimedwait, which
	// unblocks the awaited signals while it waits; signals in it are
	// queued, not discarded as ignored (Linux: task_struct.real_blocked).
	realBlocked SignalSet
	// savedMask is restored after a handler (or on return) when
	// restoreMask is set: sigsuspend, ppoll and pselect swap the mask
	// for their duration.
	savedMask   SignalSet
	restoreMask bool
	// groupStopped: this thread has stopped for the group stop.
	groupStopped bool

	// trapNo, trapErr and trapCR2 describe the last exception, for the
	// signal frame's sigcontext (Linux: thread.trap_nr, error_code, cr2).
	// Task goroutine only.
	trapNo, trapErr, trapCR2 uint64

	// rseq is the restartable-sequences registration.
	rseq rseqState

	// altStack is sigaltstack(2)'s stack. Task goroutine only.
	altStack arch.SignalStack
	// syscallReturned is set while RAX holds a syscall result that
	// signal delivery may turn into a restart. Task goroutine only.
	syscallReturned bool
	// restart is what restart_syscall(2) resumes. Task goroutine only.
	restart func(t *Task) (uint64, error)

	// pt are the ptrace links and stop state, protected by Kernel.mu.
	pt ptraceLinks
	// ptr is the task's own ptrace run state. Task goroutine only.
	ptr ptraceRun
	// ptInterrupt mirrors pt.interrupt for lock-free checks.
	ptInterrupt atomic.Bool
	// isTraced mirrors pt.tracer != nil for checks under the siglock.
	isTraced atomic.Bool

	// vforkDone is closed when a vfork child execs or exits.
	vforkDone chan struct{}
	// pdeathSignal is PR_SET_PDEATHSIG's signal.
	pdeathSignal atomic.Int32

	// noNewPrivs is PR_SET_NO_NEW_PRIVS; set by the task itself or by a
	// sibling's SECCOMP_FILTER_FLAG_TSYNC.
	noNewPrivs atomic.Bool
	// sc is the task's seccomp state (task_seccomp.go).
	sc seccompState
	// keepCaps is PR_SET_KEEPCAPS. Task goroutine only.
	keepCaps bool
	// schedPolicy and schedPrio are sched_setscheduler's policy and
	// priority.
	schedPolicy, schedPrio atomic.Int32

	// affinityMask is sched_setaffinity's mask (nil: every vCPU).
	affinityMu   sync.Mutex
	affinityMask []byte

	// lastCPU is the vCPU of the last event.
	lastCPU int

	// CPU time, in nanoseconds (see accountUser). utime and stime are
	// read by other tasks; the rest is the task goroutine's.
	utime, stime atomic.Int64
	lastAccount  time.Time
	blockedSince time.Duration
	// blocking is set while the task waits in Block (state S).
	blocking atomic.Bool
	// userSince is when the task entered user mode (UnixNano), 0 while
	// it is in the kernel: the preemption tick reads it.
	userSince atomic.Int64

	// exitStatus is the status when the task ends with exit(2).
	exitStatus ExitStatus
}

// newThreadGroup creates a group led by a task with tid.
func (k *Kernel) newThreadGroup(tid int32, h *SignalHandlers, limits *Limits) *ThreadGroup {
	tg := &ThreadGroup{
		k:          k,
		tgid:       tid,
		tasks:      make(map[int32]*Task),
		children:   make(map[*ThreadGroup]struct{}),
		limits:     limits,
		exitSignal: unix.SIGCHLD,
		pgid:       tid,
		sid:        tid,
	}
	tg.handlers.Store(h)
	tg.dumpable.Store(1)
	return tg
}

// newTask creates the first task: a new thread group with an empty
// address space and the sandbox's stdio.
func (k *Kernel) newTask(tid int32, parent *Task) (*Task, error) {
	ctx, err := k.platform.NewContext()
	if err != nil {
		return nil, err
	}
	tg := k.newThreadGroup(tid, newSignalHandlers(), defaultLimits())
	t := k.newTaskStruct(tid, tg, ctx)
	tg.leader = t
	t.fdt = newFDTable()
	t.fs = newFSContext()
	t.creds = Credentials{
		RealUID: k.cfg.UID, EffectiveUID: k.cfg.UID, SavedUID: k.cfg.UID, FSUID: k.cfg.UID,
		RealGID: k.cfg.GID, EffectiveGID: k.cfg.GID, SavedGID: k.cfg.GID, FSGID: k.cfg.GID,
	}
	t.creds.rootCaps()
	tg.tasks[tid] = t
	if parent == nil {
		if err := t.fdt.installStdio(k.cfg.Stdio); err != nil {
			ctx.Release()
			return nil, err
		}
	}
	return t, nil
}

// newTaskStruct allocates a task of tg.
func (k *Kernel) newTaskStruct(tid int32, tg *ThreadGroup, ctx platform.Context) *Task {
	t := &Task{
		k:           k,
		tid:         tid,
		tg:          tg,
		ctx:         ctx,
		log:         k.log.With(zap.Int32("tid", tid)),
		lastCPU:     -1,
		interruptCh: make(chan struct{}, 1),
	}
	t.installRseqHook()
	return t
}

// TID returns the thread ID in the sandbox's PID namespace.
func (t *Task) TID() int32 { return t.tid }

// start runs the task's goroutine.
func (t *Task) start() {
	t.k.live.Add(1)
	go func() {
		defer t.k.live.Done()
		// Platforms may tie host state to the OS thread (the ptrace
		// tracer, KVM's vcpu->pid): the task keeps its thread for life.
		runtime.LockOSThread()
		t.run()
		// The goroutine exits while locked, so the thread ends with it;
		// whatever the platform tied to it goes too.
	}()
}

// sendKill makes the task die at its next check, interrupting user code
// and blocking waits.
func (t *Task) sendKill() {
	t.killed.Store(true)
	t.wakeInterrupt()
}

// release frees the task's resources.
func (t *Task) release() {
	t.sc.release()
	if t.mm != nil {
		t.mm.decUsers()
		t.mm = nil
	}
	t.fdtMu.Lock()
	fdt := t.fdt
	t.fdt = nil
	t.fdtMu.Unlock()
	if fdt != nil {
		fdt.decRef()
	}
	t.ctx.Release()
}

// Limits are resource limits (getrlimit(2)).
type Limits struct {
	mu sync.Mutex
	l  [unix.RLIMIT_RTTIME + 1]unix.Rlimit
}

const rlimInfinity = ^uint64(0)

func defaultLimits() *Limits {
	l := &Limits{}
	for i := range l.l {
		l.l[i] = unix.Rlimit{Cur: rlimInfinity, Max: rlimInfinity}
	}
	// Linux's defaults for init (include/asm-generic/resource.h).
	l.l[unix.RLIMIT_STACK] = unix.Rlimit{Cur: 8 << 20, Max: rlimInfinity}
	l.l[unix.RLIMIT_CORE] = unix.Rlimit{Cur: 0, Max: rlimInfinity}
	l.l[unix.RLIMIT_NOFILE] = unix.Rlimit{Cur: 1024, Max: 4096}
	l.l[unix.RLIMIT_NPROC] = unix.Rlimit{Cur: 63432, Max: 63432}
	l.l[unix.RLIMIT_MEMLOCK] = unix.Rlimit{Cur: 8 << 20, Max: 8 << 20}
	l.l[unix.RLIMIT_SIGPENDING] = unix.Rlimit{Cur: 63432, Max: 63432}
	l.l[unix.RLIMIT_MSGQUEUE] = unix.Rlimit{Cur: 819200, Max: 819200}
	l.l[unix.RLIMIT_NICE] = unix.Rlimit{Cur: 0, Max: 0}
	l.l[unix.RLIMIT_RTPRIO] = unix.Rlimit{Cur: 0, Max: 0}
	return l
}

// copy returns a copy (fork).
func (l *Limits) copy() *Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &Limits{l: l.l}
}

// Get returns limit r.
func (l *Limits) Get(r int) unix.Rlimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.l[r]
}

// Set changes limit r.
func (l *Limits) Set(r int, v unix.Rlimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l[r] = v
}

// FSContext is the filesystem state that CLONE_FS shares (Linux: struct
// fs_struct): today the file mode creation mask.
//
// TODO(ringbox): the working and root directories join it with the VFS.
type FSContext struct {
	umask atomic.Uint32
}

// newFSContext returns the context of the first process: umask 022.
func newFSContext() *FSContext {
	f := &FSContext{}
	f.umask.Store(0o022)
	return f
}

// fork copies the context for a child without CLONE_FS.
func (f *FSContext) fork() *FSContext {
	n := &FSContext{}
	n.umask.Store(f.umask.Load())
	return n
}

package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// ThreadGroup is a Linux process: the threads sharing a TGID.
type ThreadGroup struct {
	k    *Kernel
	tgid int32

	mu sync.Mutex
	// tasks are the live threads. Protected by mu.
	tasks map[int32]*Task
	// exiting is set once the group is being torn down (exit_group or a
	// fatal signal). Protected by mu.
	exiting bool
	// status is the group's exit status once exiting. Protected by mu.
	status ExitStatus

	// handlers are the signal actions (shared by CLONE_SIGHAND).
	handlers *SignalHandlers

	// limits are the resource limits.
	limits *Limits

	// exe is the path of the executable, for /proc/self/exe.
	exe string
}

// Credentials are a task's user and group IDs.
type Credentials struct {
	RealUID, EffectiveUID, SavedUID uint32
	RealGID, EffectiveGID, SavedGID uint32
}

// Task is a Linux thread.
type Task struct {
	k   *Kernel
	tid int32
	tg  *ThreadGroup
	log *zap.Logger

	// ctx runs the task's user code. Only the task goroutine uses it,
	// except Interrupt.
	ctx platform.Context
	// st is the CPU state while the task is in the kernel. Only the task
	// goroutine touches it.
	st arch.State

	// mm is the address space. Only the task goroutine changes it.
	mm *MemoryManager
	// fdt is the file descriptor table.
	fdt *FDTable

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

	mu sync.Mutex
	// sigMask is the blocked signal set. Protected by mu.
	sigMask SignalSet

	// lastCPU is the vCPU of the last event.
	lastCPU int

	// exitStatus is the status when the task ends.
	exitStatus ExitStatus
}

// newTask creates a task in a new thread group with an empty address
// space. parent is nil for the first process.
func (k *Kernel) newTask(tid int32, parent *Task) (*Task, error) {
	ctx, err := k.platform.NewContext()
	if err != nil {
		return nil, err
	}
	tg := &ThreadGroup{
		k:        k,
		tgid:     tid,
		tasks:    make(map[int32]*Task),
		handlers: newSignalHandlers(),
		limits:   defaultLimits(),
	}
	t := &Task{
		k:           k,
		tid:         tid,
		tg:          tg,
		ctx:         ctx,
		log:         k.log.With(zap.Int32("tid", tid)),
		fdt:         newFDTable(),
		lastCPU:     -1,
		interruptCh: make(chan struct{}, 1),
		creds: Credentials{
			RealUID: k.cfg.UID, EffectiveUID: k.cfg.UID, SavedUID: k.cfg.UID,
			RealGID: k.cfg.GID, EffectiveGID: k.cfg.GID, SavedGID: k.cfg.GID,
		},
	}
	tg.tasks[tid] = t
	if parent == nil {
		if err := t.fdt.installStdio(k.cfg.Stdio); err != nil {
			ctx.Release()
			return nil, err
		}
	}
	return t, nil
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

// sendKill makes the task die at its next check, interrupting user code.
func (t *Task) sendKill() {
	t.killed.Store(true)
	t.wakeInterrupt()
}

// release frees the task's resources.
func (t *Task) release() {
	if t.mm != nil {
		t.mm.decUsers()
		t.mm = nil
	}
	if t.fdt != nil {
		t.fdt.decRef()
		t.fdt = nil
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

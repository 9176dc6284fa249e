package kernel

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// Config is what the sandbox start-up hands the kernel.
type Config struct {
	Platform   platform.Platform
	MemoryFile *memfile.MemoryFile
	Logger     *zap.Logger

	// Strace logs every system call with decoded arguments and result
	// to StraceLogger (Logger when nil), at info level.
	Strace       bool
	StraceLogger *zap.Logger

	// Stdio are the host file descriptors behind the program's fds 0, 1
	// and 2. The kernel duplicates them; the caller keeps its own.
	Stdio [3]int

	// UID and GID are the credentials of the first process.
	UID, GID uint32

	// Hostname is what uname(2) reports as nodename.
	Hostname string

	// PtraceScope is the initial YAMA ptrace scope (0 to 3; Linux
	// distributions default to 1).
	PtraceScope int
}

// ExitStatus is how the first process ended.
type ExitStatus struct {
	Code     int
	Signal   unix.Signal
	CoreDump bool
}

// ShellCode returns the status as a shell reports it: the exit code, or
// 128+N when killed by signal N.
func (s ExitStatus) ShellCode() int {
	if s.Signal != 0 {
		return 128 + int(s.Signal)
	}
	return s.Code
}

func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%s)", int(s.Signal), unix.SignalName(s.Signal))
	}
	return fmt.Sprintf("exited with status %d", s.Code)
}

// Kernel is one sandbox's kernel.
type Kernel struct {
	cfg      Config
	log      *zap.Logger
	platform platform.Platform
	mf       *memfile.MemoryFile
	start    time.Time

	mu sync.Mutex
	// tasks maps thread IDs of the sandbox's PID namespace to live
	// threads (and a dead leader until its group is reaped). Protected by
	// mu.
	tasks map[int32]*Task
	// groups maps TGIDs to thread groups, zombies included. Protected by
	// mu.
	groups map[int32]*ThreadGroup
	// nextTID is the next thread ID to try. Protected by mu.
	nextTID int32
	// init is the first process. Protected by mu.
	init *ThreadGroup

	// done is closed when the first process has exited.
	done       chan struct{}
	initStatus ExitStatus

	// cpus is the scheduler's per-vCPU view.
	cpus []CPURecord

	// unknown remembers syscall numbers already logged as unimplemented.
	unknown sync.Map

	// live counts task goroutines that have not finished.
	live sync.WaitGroup

	shuttingDown atomic.Bool

	// xsave is the layout of the FP state images exchanged with ptrace.
	xsave arch.XSaveLayout

	// ptraceScope is the YAMA ptrace scope (/proc/sys/kernel/yama/
	// ptrace_scope).
	ptraceScope atomic.Int32

	// semNS is the IPC namespace's System V semaphore table, created on
	// first use (sem.go).
	semNS atomic.Pointer[semNamespace]
}

// New creates a kernel.
func New(cfg Config) (*Kernel, error) {
	if cfg.Platform == nil || cfg.MemoryFile == nil {
		return nil, errors.New("kernel: Platform and MemoryFile are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.StraceLogger == nil {
		cfg.StraceLogger = cfg.Logger
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "ringbox"
	}
	k := &Kernel{
		cfg:      cfg,
		log:      cfg.Logger,
		platform: cfg.Platform,
		mf:       cfg.MemoryFile,
		start:    time.Now(),
		tasks:    make(map[int32]*Task),
		groups:   make(map[int32]*ThreadGroup),
		nextTID:  1,
		done:     make(chan struct{}),
		cpus:     make([]CPURecord, cfg.Platform.NumCPUs()),
	}
	for i := range k.cpus {
		k.cpus[i].CPU = i
	}
	k.xsave = arch.NewXSaveLayout(arch.XCR0())
	if err := k.SetPtraceScope(cfg.PtraceScope); err != nil {
		return nil, fmt.Errorf("kernel: ptrace scope %d: want 0 to 3", cfg.PtraceScope)
	}
	return k, nil
}

// Platform returns the platform the kernel runs on.
func (k *Kernel) Platform() platform.Platform { return k.platform }

// allocTIDLocked returns a free thread ID.
//
// Preconditions: k.mu is held.
func (k *Kernel) allocTIDLocked() (int32, error) {
	const maxTID = 1 << 22 // Linux: PID_MAX_LIMIT on 64-bit
	for i := 0; i < maxTID; i++ {
		tid := k.nextTID
		k.nextTID++
		if k.nextTID >= maxTID {
			k.nextTID = 2
		}
		_, taken := k.tasks[tid]
		_, takenG := k.groups[tid]
		if !taken && !takenG && !k.pgidInUseLocked(tid) {
			return tid, nil
		}
	}
	return 0, unix.EAGAIN
}

// Start runs the first process: the program at path with argv and envv.
// The returned error describes why the program could not be started (it is
// not found, not an executable ELF, ...); see ExecError.
func (k *Kernel) Start(path string, argv, envv []string) error {
	img, err := k.loadExecutable(path)
	if err != nil {
		return err
	}
	k.mu.Lock()
	tid, err := k.allocTIDLocked()
	k.mu.Unlock()
	if err != nil {
		return err
	}
	t, err := k.newTask(tid, nil)
	if err != nil {
		return err
	}
	if err := t.execImage(img, argv, envv); err != nil {
		t.release()
		return err
	}
	k.mu.Lock()
	k.tasks[tid] = t
	k.groups[tid] = t.tg
	k.init = t.tg
	k.mu.Unlock()
	t.start()
	go k.preemptLoop()
	return nil
}

// Wait blocks until the first process has exited and every task has
// finished, and returns the first process's exit status.
func (k *Kernel) Wait() ExitStatus {
	<-k.done
	k.live.Wait()
	return k.initStatus
}

// initExited records the first process's status and ends the sandbox:
// like Linux's zap_pid_ns_processes(), every other task is killed.
func (k *Kernel) initExited(st ExitStatus) {
	k.initStatus = st
	k.shuttingDown.Store(true)
	k.mu.Lock()
	for _, t := range k.tasks {
		t.sendKill()
	}
	k.mu.Unlock()
	close(k.done)
}

// CPUs returns a snapshot of the scheduler's per-vCPU records.
func (k *Kernel) CPUs() []CPUStats {
	out := make([]CPUStats, len(k.cpus))
	for i := range k.cpus {
		out[i] = k.cpus[i].snapshot()
	}
	return out
}

// SignalInit sends sig from outside the sandbox to the first process (a
// terminal's Ctrl-C, a supervisor's SIGTERM).
//
// TODO(ringbox): until signal delivery exists, the signal always takes
// its default action (it terminates the process), even if the program
// installed a handler or ignores it.
func (k *Kernel) SignalInit(sig unix.Signal) {
	k.mu.Lock()
	tg := k.init
	k.mu.Unlock()
	if tg == nil {
		return
	}
	tg.exitGroup(ExitStatus{Signal: sig})
}

// pgidInUseLocked reports whether id names a live process group or
// session, which Linux does not reuse as a PID while it exists.
//
// Preconditions: k.mu is held.
func (k *Kernel) pgidInUseLocked(id int32) bool {
	for _, g := range k.groups {
		if g.pgid == id || g.sid == id {
			return true
		}
	}
	return false
}

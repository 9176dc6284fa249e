package kernel

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// CPUState is what a vCPU is doing, as the scheduler sees it.
type CPUState int32

// vCPU states.
const (
	CPUIdle     CPUState = iota // no task
	CPUInGuest                  // a task runs user code on it
	CPUInKernel                 // a task handles an event it returned
)

func (s CPUState) String() string {
	switch s {
	case CPUIdle:
		return "idle"
	case CPUInGuest:
		return "in guest"
	case CPUInKernel:
		return "in kernel"
	}
	return "unknown"
}

// StopKind classifies the stops counted per vCPU.
type StopKind int

// Stop kinds.
const (
	StopSignalDelivery StopKind = iota
	StopGroup
	StopSyscallEnter
	StopSyscallExit
	StopEvent
	StopSingleStep
	NumStopKinds
)

// CPURecord is the kernel's view of one vCPU: the task that last ran on it,
// what it does, and counters of kernel-level events. The platform keeps the
// mechanism's own counters (exits by reason, ioctls).
type CPURecord struct {
	CPU int

	mu sync.Mutex
	// current is the task running on or last returned from this vCPU.
	// Protected by mu.
	current *Task
	// state is protected by mu.
	state CPUState

	syscalls   atomic.Uint64
	faults     atomic.Uint64
	signals    atomic.Uint64
	stops      [NumStopKinds]atomic.Uint64
	stopNanos  atomic.Uint64
	exceptions atomic.Uint64
}

// CPUStats is a snapshot of a CPURecord.
type CPUStats struct {
	CPU        int
	State      CPUState
	CurrentTID int32
	Syscalls   uint64
	Faults     uint64
	Exceptions uint64
	Signals    uint64
	Stops      [NumStopKinds]uint64
	// StopNanos is the total time from a stop to its resumption.
	StopNanos uint64
}

func (r *CPURecord) snapshot() CPUStats {
	s := CPUStats{
		CPU:        r.CPU,
		Syscalls:   r.syscalls.Load(),
		Faults:     r.faults.Load(),
		Exceptions: r.exceptions.Load(),
		Signals:    r.signals.Load(),
		StopNanos:  r.stopNanos.Load(),
	}
	for i := range s.Stops {
		s.Stops[i] = r.stops[i].Load()
	}
	r.mu.Lock()
	s.State = r.state
	if r.current != nil {
		s.CurrentTID = r.current.tid
	}
	r.mu.Unlock()
	return s
}

// enter records that t returned from user code on this vCPU.
func (r *CPURecord) enterKernel(t *Task) {
	r.mu.Lock()
	r.current = t
	r.state = CPUInKernel
	r.mu.Unlock()
}

// leave records that t left the vCPU (into user code or to block).
func (r *CPURecord) leave(t *Task, next CPUState) {
	r.mu.Lock()
	if r.current == t {
		r.state = next
		if next == CPUIdle {
			r.current = nil
		}
	}
	r.mu.Unlock()
}

// cpu returns the record of vCPU i, or nil.
func (k *Kernel) cpu(i int) *CPURecord {
	if i < 0 || i >= len(k.cpus) {
		return nil
	}
	return &k.cpus[i]
}

// Preemption. A task keeps its vCPU while it runs user code; one that
// spins without a system call would keep it forever and starve the tasks
// waiting for a vCPU. The kernel's tick interrupts every task that has
// been in user mode longer than a time slice: it comes back to the
// kernel, gives its vCPU up, and queues for one again behind the waiters.
// The tick also enforces RLIMIT_CPU for tasks that never enter the
// kernel.
const (
	schedTick  = 10 * time.Millisecond
	timeSlice  = 20 * time.Millisecond
	cpuLimitHz = time.Second // RLIMIT_CPU is in seconds
)

// preemptLoop runs until the sandbox ends.
func (k *Kernel) preemptLoop() {
	tk := time.NewTicker(schedTick)
	defer tk.Stop()
	for {
		select {
		case <-k.done:
			return
		case now := <-tk.C:
			k.preemptTick(now)
		}
	}
}

// preemptTick interrupts the tasks that overran their slice, when more
// tasks want a vCPU than there are vCPUs (tasks queued for a vCPU count:
// they are inside Switch too), and the tasks past their RLIMIT_CPU. The
// slice counts from when user code started running (platform.GuestTimer),
// so a task whose entry into the guest is slow is never interrupted
// before it ran.
func (k *Kernel) preemptTick(now time.Time) {
	k.mu.Lock()
	var kick []*Task
	inUser := 0
	for _, t := range k.tasks {
		if t.userSince.Load() != 0 {
			inUser++
		}
	}
	contended := inUser > k.platform.NumCPUs()
	for _, t := range k.tasks {
		since := t.userSince.Load()
		if since == 0 {
			continue
		}
		if gt, ok := t.ctx.(platform.GuestTimer); ok {
			// Only the time user code really ran counts.
			if since = gt.GuestSince(); since == 0 {
				continue
			}
		}
		in := now.Sub(time.Unix(0, since))
		if (contended && in >= timeSlice) || t.overCPULimit(in) {
			kick = append(kick, t)
		}
	}
	k.mu.Unlock()
	for _, t := range kick {
		t.ctx.Interrupt()
	}
}

// overCPULimit reports whether the group would pass its RLIMIT_CPU soft
// limit counting the current stint in user mode.
func (t *Task) overCPULimit(stint time.Duration) bool {
	lim := t.tg.limits.Get(unix.RLIMIT_CPU).Cur
	if lim == rlimInfinity {
		return false
	}
	u, s := t.tg.CPUTime()
	return u+s+stint >= time.Duration(lim)*cpuLimitHz
}

// checkCPULimit sends SIGXCPU past the soft RLIMIT_CPU (once a second)
// and SIGKILL past the hard one (Linux: kernel/time/posix-cpu-timers.c:
// check_process_timers()).
func (t *Task) checkCPULimit() {
	l := t.tg.limits.Get(unix.RLIMIT_CPU)
	if l.Cur == rlimInfinity {
		return
	}
	u, s := t.tg.CPUTime()
	used := u + s
	if l.Max != rlimInfinity && used >= time.Duration(l.Max)*cpuLimitHz {
		t.tg.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGKILL), Code: arch.SI_KERNEL})
		return
	}
	if used >= time.Duration(l.Cur)*cpuLimitHz {
		sec := int64(used / cpuLimitHz)
		if t.tg.xcpuSent.Swap(sec) != sec {
			t.tg.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGXCPU), Code: arch.SI_KERNEL})
		}
	}
}

package kernel

import (
	"sync"
	"sync/atomic"
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

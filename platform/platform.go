// Package platform is the seam between ringbox's kernel and the hardware
// mechanism that runs user code: KVM (package vmm) or host ptrace
// (package platform/ptrace). The kernel imports this package only; it
// never learns which mechanism runs it.
//
// The contract (see shared/DESIGN.md):
//
//   - All application memory lives in one memory file (package
//     platform/memfile) owned by the kernel. An AddressSpace maps ranges of
//     that file at user addresses; the kernel copies to and from user
//     memory through its own mapping of the file, never through the
//     platform.
//   - A Context runs one task's user code. Switch enters user mode with the
//     task's registers in an AddressSpace and returns at the next event: a
//     system call, a page fault, another exception, or an interrupt asked
//     for with Interrupt. While a task is outside Switch it holds no vCPU.
//   - Ranges a platform needs inside the program's address space (the
//     ptrace stub's code) are reported by ReservedRanges; the kernel's
//     memory manager never hands them to the program.
package platform

import (
	"errors"
	"fmt"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform/memfile"
)

// AccessType is a set of memory access permissions.
type AccessType uint8

// Access bits.
const (
	Read AccessType = 1 << iota
	Write
	Execute

	NoAccess  AccessType = 0
	ReadWrite            = Read | Write
	AnyAccess            = Read | Write | Execute
)

// String returns "rwx"-style text.
func (a AccessType) String() string {
	b := []byte("---")
	if a&Read != 0 {
		b[0] = 'r'
	}
	if a&Write != 0 {
		b[1] = 'w'
	}
	if a&Execute != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// AddrRange is a half-open range of user addresses [Start, End).
type AddrRange struct {
	Start, End uint64
}

// EventKind says why Switch returned.
type EventKind int

// The events Switch reports.
const (
	// EventSyscall: the task executed the syscall instruction. The
	// registers hold the system call: OrigRax and Rax the number, Rip the
	// address after the instruction, as Linux's pt_regs has them.
	EventSyscall EventKind = iota
	// EventFault: a page fault at Addr with the access in Access.
	EventFault
	// EventException: any other exception, identified by Vector.
	EventException
	// EventInterrupt: Interrupt was called (or the host preempted the
	// task); no user instruction was lost.
	EventInterrupt
)

var eventNames = [...]string{"syscall", "fault", "exception", "interrupt"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event describes why Switch returned.
type Event struct {
	Kind EventKind

	// Addr is the faulting address of EventFault.
	Addr uint64
	// Access is the access that faulted. On KVM it comes from the page
	// fault error code. On ptrace the host does not tell it: a fault on an
	// address the platform has not mapped is reported as Read (Execute if
	// Addr is the instruction pointer), a protection fault on a mapped page
	// as Write (Execute at the instruction pointer). A write to an absent
	// page then shows up as a read fault followed by a write fault.
	Access AccessType
	// NotPresent is true when no page was mapped at Addr (as opposed to a
	// protection violation).
	NotPresent bool

	// Vector is the exception vector of EventException.
	Vector arch.Vector
	// ErrorCode is the CPU's error code for vectors that have one (for
	// EventFault too).
	ErrorCode uint64
	// DebugStatus is DR6 for VectorDB.
	DebugStatus uint64

	// CPU is the index of the vCPU the task ran on.
	CPU int
}

// ErrContextKilled is returned by Switch when the mechanism under the
// context died (the ptrace stub was killed from outside, the vCPU is gone).
// The kernel treats it as SIGKILL of the task.
var ErrContextKilled = errors.New("platform: context killed")

// Platform creates address spaces and contexts of one mechanism.
type Platform interface {
	// Name is "kvm" or "ptrace".
	Name() string
	// NewAddressSpace returns an empty address space (one per mm).
	NewAddressSpace() (AddressSpace, error)
	// NewContext returns a context for one task.
	NewContext() (Context, error)
	// ReservedRanges lists user addresses the platform occupies.
	ReservedRanges() []AddrRange
	// NumCPUs is the number of vCPUs tasks share.
	NumCPUs() int
	// Stats returns per-vCPU counters of the mechanism.
	Stats() []CPUStats
	// FPStateSize is the size of the XSAVE area the platform exchanges.
	FPStateSize() int
	// Close releases the platform. Address spaces and contexts must have
	// been released first.
	Close() error
}

// AddressSpace is the set of mappings of one process.
type AddressSpace interface {
	// MapFile maps fr of the memory file at addr with access at,
	// replacing whatever was mapped there. addr and fr are page aligned.
	MapFile(addr uint64, fr memfile.FileRange, at AccessType) error
	// Unmap removes the mappings in [addr, addr+length). When it returns,
	// no vCPU or thread can still reach the old pages.
	Unmap(addr, length uint64)
	// Release frees the address space. It must not be in use.
	Release()
}

// Context runs the user code of one task.
type Context interface {
	// Switch runs user code with st in as until the next event. It loads
	// st.FP first when st.FPDirty, and clears FPDirty and FPValid.
	Switch(as AddressSpace, st *arch.State) (Event, error)
	// PullFPState makes st.FP the FP state of the last Switch and sets
	// st.FPValid.
	PullFPState(st *arch.State) error
	// Interrupt makes a running Switch, or the next one, return
	// EventInterrupt promptly. It may be called from any goroutine.
	Interrupt()
	// Release frees the context. It must not be in Switch.
	Release()
}

// GuestTimer is implemented by contexts that can say since when their
// task's user code has been running on a vCPU. The kernel preempts a task
// by the time it actually ran, not by the time it waited for a vCPU or
// for the host to enter the guest (which, under emulation, can exceed a
// time slice and would otherwise starve the task).
type GuestTimer interface {
	// GuestSince returns when the current stint in user mode began
	// (time.Time.UnixNano), or 0 while no user code runs.
	GuestSince() int64
}

// CPUAffinity is implemented by contexts whose Switch can be limited to
// some vCPUs: the kernel applies a task's sched_setaffinity(2) mask with
// it. SetCPUs may be called from any goroutine, also while the context
// waits for a vCPU or runs; the next vCPU the context takes obeys the new
// mask, and a Switch waiting for a vCPU reconsiders the free ones.
type CPUAffinity interface {
	// SetCPUs limits the context to the vCPUs i with mask[i] set. A nil
	// mask, or one that allows no vCPU of the platform, allows all of
	// them. The platform keeps its own copy.
	SetCPUs(mask []bool)
}

// EntryNotifier is implemented by contexts that can tell the kernel, just
// before user code runs, which vCPU it will run on: restartable sequences
// (rseq(2)) promise the program that the cpu_id it reads is the CPU it
// runs on.
type EntryNotifier interface {
	// SetEntryHook installs fn (nil removes it). Switch calls it on its
	// own goroutine after taking a vCPU and before any user instruction
	// runs. fn may write user memory through the memory file but must
	// not call back into the platform.
	SetEntryHook(fn func(cpu int))
}

// ExitReason counts the reasons a vCPU left user mode.
type ExitReason int

// Exit reasons counted per vCPU.
const (
	ExitSyscall ExitReason = iota
	ExitPageFault
	ExitException
	ExitInterrupt
	ExitOther
	NumExitReasons
)

var exitReasonNames = [...]string{"syscall", "page_fault", "exception", "interrupt", "other"}

func (r ExitReason) String() string {
	if int(r) < len(exitReasonNames) {
		return exitReasonNames[r]
	}
	return fmt.Sprintf("ExitReason(%d)", int(r))
}

// CPUStats are the mechanism's counters of one vCPU.
type CPUStats struct {
	CPU int
	// Exits counts exits from user mode by reason.
	Exits [NumExitReasons]uint64
	// Ioctls counts host ioctls (KVM) or ptrace requests (ptrace) made
	// for this vCPU.
	Ioctls uint64
	// GuestNanos is the time spent in user mode (inside KVM_RUN or between
	// resuming the stub and its next stop).
	GuestNanos uint64
}

// Package kernel is ringbox's application kernel: it implements the Linux
// system-call interface for programs that run on a platform.Platform (KVM or
// ptrace). It never imports a concrete platform; a test keeps it so.
//
// # Tasks and their run loop
//
// Each Task (a Linux thread) runs on its own goroutine, locked to one OS
// thread for its whole life (platforms may tie host state to that thread:
// the ptrace tracer, KVM's vcpu->pid). The goroutine executes an explicit
// state machine; every state is a type with an execute method returning the
// next state:
//
//	      +-----------+   event    +--------------+
//	+---->|  runApp   |----------->| handleEvent  |
//	|     +-----------+            +--------------+
//	|           ^                        |
//	|           |  nothing pending       v
//	|     +-----------------+      +-------------+
//	+-----| deliverSignals  |<-----| (syscall /  |
//	      +-----------------+      |  fault /    |
//	            |                  |  exception) |
//	            | fatal signal,    +-------------+
//	            | exit, exit_group       |
//	            v                        v
//	      +-----------+            +-----------+
//	      |  exiting  |----------->|   dead    |
//	      +-----------+            +-----------+
//
// A task outside runApp holds no vCPU.
//
// # Memory
//
// All application memory lives in the platform/memfile memory file. A
// MemoryManager (mm.go) owns the VMAs of a process and the pages backing
// them, hands pages to the platform's AddressSpace on demand (page faults)
// and copies to and from user memory through the kernel's own mapping of
// the memory file.
//
// # ptrace
//
// ptrace(2) is implemented here, on the same run loop: a tracee reaches a
// stop point (signal delivery, a syscall enter or exit, an event, a group
// stop, PTRACE_INTERRUPT), records the stop for its tracer's wait and
// blocks outside Switch until the tracer resumes it (ptrace.go,
// ptrace_stop.go, sys_ptrace.go). The per-vCPU records count stops by kind
// and their stop-to-resume latency.
//
// # Lock order
//
//	ktimer.mu (timers.go)
//	  Kernel.mu (task table, process tree, ptrace links and stops)
//	    SignalHandlers.mu (the siglock: actions, pending signals, masks,
//	    group stop)
//	      ThreadGroup.mu (threads, exit status)
//	        futexBucket.mu
//	          MemoryManager.mu
//	            sharedAnon.mu, memInode.mu (memory objects)
//	              memfile.MemoryFile.mu
package kernel

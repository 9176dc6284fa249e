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
// # Lock order
//
//	Kernel.mu (task table)
//	  ThreadGroup.mu
//	    MemoryManager.mu
//	      memfile.MemoryFile.mu
//
// Task.mu protects per-task signal state and is taken after ThreadGroup.mu.
package kernel

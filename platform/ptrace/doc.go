// Package ptrace is the platform for hosts without /dev/kvm: each address
// space is a tiny host process (the stub) whose threads run the program's
// code under PTRACE_SYSEMU, so that every system call, fault and
// exception of the program stops the thread and comes back to ringbox's
// kernel as a platform.Event, and no system call of the program ever runs
// on the host.
//
// # Processes and threads
//
//	ringbox                                  stub process (one per AddressSpace)
//	+--------------------------------+       +-------------------------------+
//	| control goroutine, locked      |-------| leader: stopped, only runs    |
//	|   traces the leader; injects   | trace |   injected mmap/munmap/clone  |
//	|   clone, and mmap/munmap asked |       |                               |
//	|   for by other goroutines      |       |                               |
//	|                                |       |                               |
//	| task goroutine A, locked       |-------| stub thread of A: program     |
//	|   Switch: SETREGS? SYSEMU      | trace |   code under PTRACE_SYSEMU    |
//	|   wait4 GETREGS                |       |                               |
//	| task goroutine B, locked       |-------| stub thread of B               |
//	+--------------------------------+       +-------------------------------+
//
// A tracee can only be driven by the thread that attached it (ptrace(2):
// the tracer is a thread, not a process). The kernel locks every task
// goroutine to one OS thread for its life, so each Context gets, per
// AddressSpace it runs in, its own stub thread, seized by the task's own
// thread; Switch then costs what a C tracer pays per system call. The stub
// process's leader is traced by a control goroutine locked to the thread
// that forked it.
//
// # The stub
//
// The stub is a two-page static ELF generated at start-up (stub_amd64.go
// has the layout), exec'd from a sealed memfd with PTRACE_TRACEME,
// PR_SET_PDEATHSIG(SIGKILL), its own session, uid and gid 65534 when
// ringbox is root, and the memory file as its only descriptor. After exec
// the control thread sets PTRACE_O_EXITKILL, closes stray descriptors,
// unmaps everything outside the stub's own pages (its stack, vdso and
// vvar included), sets no_new_privs and installs a seccomp filter
// (seccomp.go) that lets only the injected calls through, and only from
// the stub's syscall instructions.
//
// # Operations
//
//   - Injection (tracee.go): a stopped thread's registers are pointed at
//     "syscall; int3" in the stub code; PTRACE_CONT runs the call and the
//     int3 reports back. The program's registers are restored lazily by
//     the next Switch, which sees they differ.
//   - MapFile and Unmap inject mmap(MAP_SHARED|MAP_FIXED) of the memory
//     file and munmap: into the caller's own stub thread when the caller
//     is a task of this address space (it is stopped, since its task is
//     not in Switch), else into the leader through the control goroutine.
//   - New stub threads: the control thread injects clone(CLONE_THREAD...)
//     into the leader; the child idles in pause() until the task's thread
//     PTRACE_SEIZEs and PTRACE_INTERRUPTs it.
//   - Interrupt: a pending flag, and SIGSTOP to the stub thread when it
//     runs; the SIGSTOP's signal-delivery-stop becomes EventInterrupt.
//   - Every signal a stop reports is suppressed (the thread resumes with
//     signal 0): ringbox's kernel decides what the program sees.
//
// # Containment
//
// The program's system calls never run (PTRACE_SYSEMU), and if one did,
// the seccomp filter would kill the stub. A stub killed from outside makes
// Switch return platform.ErrContextKilled. If ringbox dies, EXITKILL and
// PDEATHSIG kill every stub. Stubs and their threads are reaped by
// Release; the memory they use is the memory file's, of fixed size.
//
// # Locking
//
// addressSpace.mu protects an address space's thread tables and is a
// leaf: nothing else is acquired under it. Platform.mu protects the set
// of live address spaces; it is never held while an addressSpace.mu is
// taken or a request to a control goroutine is pending.
package ptrace

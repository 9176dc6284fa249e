// Package vmm is ringbox's KVM platform: one VM whose guest physical memory
// is the memory file, a fixed set of vCPUs shared by all tasks, and guest
// page tables that the host edits directly in guest memory. The program
// runs in ring 3; package guest holds the ring-0 code that turns each of
// its traps into an exit to the host. layout.go has every guest address.
//
// # Exits and entries
//
// A syscall leaves the guest on an out to guest.SyscallPort with the
// user's registers intact except RCX and R11 (RIP and RFLAGS, as after
// syscall). KVM_CAP_SYNC_REGS hands them over in kvm_run, and the edited
// registers go back the same way, so a trapped system call costs exactly
// one ioctl, KVM_RUN. Where sysretq cannot restore the registers (Linux's
// rules, canSysret) or the TLB must be flushed, the vCPU enters ring 3
// through an iretq slot from a frame the host writes on the vCPU's ring-0
// stack; exceptions are read from the frame the CPU pushed there.
//
// A vCPU is in one of three modes between two KVM_RUNs, which decide the
// next entry (entry.go):
//
//	             syscall exit                  sysretq (canSysret)
//	  ┌────────> modeSyscall ──────────────────────────────────────┐
//	  │               │ iretq (otherwise)                          │
//	  │               v                                            v
//	ring 3 <────── modeKernel <── exception exit, initial ──── ring 3
//	  │   iretq       ^
//	  │               │ flush needed: through ring 0
//	  └─ kick ──> modeUser ──── resume in place ───> ring 3
//
// # vCPUs and threads
//
// Each context runs on a vCPU of its own, bound by its first Switch (an
// idle vCPU, or a new one up to KVM_CAP_MAX_VCPUS) and returned to the
// idle ones by Release. The kernel locks a task's goroutine to its OS
// thread for life, so a vCPU is entered from one thread only: KVM makes
// KVM_RUN from another thread than the last wait for an RCU grace period
// (virt/kvm/kvm_main.c:kvm_vcpu_ioctl()), milliseconds on a host and tens
// of them under nested virtualization, which vCPUs handed from thread to
// thread paid on every switch between the threads of a program. The FP
// state stays in the context's vCPU (KVM_SET_XSAVE only on the first entry
// and when the kernel changed it), and so does every other piece of vCPU
// state: the mode below, debug registers, an event KVM has yet to
// re-inject after an interrupted delivery.
//
// The parallelism is NumCPUs logical CPUs (pool.go): Switch holds one
// while it runs (preferring the one it held last), Event.CPU and the
// statistics name them. Interrupt and TLB shootdowns set
// kvm_run.immediate_exit and signal the vCPU's thread; KVM_RUN returning
// EINTR is decoded like any exit, never blindly retried.
//
// # Testing
//
// Page tables, descriptor encoding, the trap code layout and exit decoding
// (on a fake kvm_run) are unit tests that need no KVM. The KVM tests
// (vmm_test.go: the platformtest conformance suite and the hot-path,
// single-step, FP-switch and TLB-shootdown tests; smp_test.go: more
// threads than CPUs) skip without /dev/kvm;
// on machines without it they run in the nested-KVM test VM:
//
//	go run ./scripts/testvm -gotest ./vmm -smp 2
//
// A /dev/kvm served by PVM (kvm_pvm) is refused by New with
// ErrUnsupportedKVM and the KVM tests skip there.
//
// # Lock order
//
//	addressSpace.mu -> vcpu.kickMu
//	context.fpMu -> Platform.mu
//
// vcpu.kickMu is a leaf; Platform.mu is never held while taking
// context.fpMu.
package vmm

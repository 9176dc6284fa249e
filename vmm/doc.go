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
// Switch acquires a free vCPU (preferring the one its OS thread ran last),
// runs it until an event, and releases it. The FP state stays in the vCPU
// until another context takes it (lazy switching; only then
// KVM_GET_XSAVE/KVM_SET_XSAVE). Interrupt and TLB shootdowns set
// kvm_run.immediate_exit and signal the vCPU's thread; KVM_RUN returning
// EINTR is decoded like any exit, never blindly retried.
//
// # Testing
//
// Page tables, descriptor encoding, the trap code layout and exit decoding
// (on a fake kvm_run) are unit tests that need no KVM. The KVM tests
// (vmm_test.go: the platformtest conformance suite and the hot-path,
// single-step, FP-switch and TLB-shootdown tests) skip without /dev/kvm;
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
//	Platform.mu -> context.fpMu
//
// vcpu.kickMu is a leaf; context.fpMu is never held while taking
// Platform.mu.
package vmm

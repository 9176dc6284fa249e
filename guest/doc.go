// Package guest is what ringbox runs inside the KVM guest in ring 0: the
// system-call and exception entry points, and the descriptor tables (GDT,
// TSS, IDT) that route the CPU to them.
//
// It is reviewed like a security boundary. The program runs in ring 3 and
// every way out of ring 3 lands here:
//
//   - syscall jumps to the LSTAR entry, slot SlotSyscall, which leaves the
//     guest with "out %al" on SyscallPort. The host services the system call
//     and resumes either at the sysretq that follows the out (the fast path:
//     KVM completes the out on the next KVM_RUN and the guest falls through)
//     or through an iretq slot when sysret cannot restore the registers.
//   - an exception from ring 3 switches to the vCPU's ring-0 stack (RSP0 of
//     the TSS, or an IST stack for #DF, NMI and #MC), pushes the CPU's frame,
//     and lands in the slot of its vector, which pushes a zero error code
//     where the CPU pushes none, pushes the vector and leaves the guest with
//     "out %al" on ExceptionPort. The host reads the frame from guest memory.
//
// The code touches no general register: out reads AL, and everything else
// the host needs is in KVM's synced registers or in the frame on the ring-0
// stack. That keeps the host's view of the user registers exact and leaves
// room for stage 2, where some traps are handled in ring 0 without an exit:
// such a handler would save registers below the same frame.
//
// Nothing here calls into the Go runtime: the code is one assembly symbol
// that the host copies into a guest page; Go only encodes the tables.
package guest

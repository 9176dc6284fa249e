// The ring-0 trap code of the guest. It is never executed by the host:
// Code copies the bytes of trapCode into a guest page. See package doc and
// code_amd64.go for the slot layout, which code_test.go checks by decoding.

#include "textflag.h"

// The I/O ports of the exits; keep in sync with SyscallPort and
// ExceptionPort (checked by TestCodeLayout).
#define SYSCALL_PORT 0x10
#define EXCEPTION_PORT 0x11

// out %al, $port (E6 ib): the Go assembler has no immediate-port form.
#define OUT_AL(port) BYTE $0xE6; BYTE $port

// sysretq (REX.W 0F 07): Go's SYSRET assembles the 32-bit form, which
// would return to compatibility mode.
#define SYSRETQ BYTE $0x48; BYTE $0x0F; BYTE $0x07

// An exception the CPU pushes no error code for: push a zero one so that
// every frame has the same shape, then the vector, then exit. After the
// out comes the resume sequence: drop vector and error code and return.
// Stage 1 hosts resume through SlotIret instead; the sequence is for
// handlers that finish in ring 0.
#define EXC_NOERR(vec) PCALIGN $32; PUSHQ $0; PUSHQ $vec; OUT_AL(EXCEPTION_PORT); ADDQ $16, SP; IRETQ

// An exception with a CPU-pushed error code.
#define EXC_ERR(vec) PCALIGN $32; PUSHQ $vec; OUT_AL(EXCEPTION_PORT); ADDQ $16, SP; IRETQ

// trapCode holds fixed 32-byte slots; the function itself is 32-byte
// aligned by the linker, and PCALIGN starts each slot on a boundary.
TEXT ·trapCode(SB), NOSPLIT|NOFRAME, $0-0
	// Slot 0: the LSTAR entry. RCX and R11 hold the user's RIP and
	// RFLAGS, RSP is still the user's stack: nothing may touch memory.
	OUT_AL(SYSCALL_PORT)
	SYSRETQ

	// Slot 1: return to ring 3 through the frame at RSP.
	PCALIGN $32
	IRETQ

	// Slot 2: flush the TLB (reloading CR3 drops every non-global entry),
	// then return like slot 1. RAX is saved below the frame.
	PCALIGN $32
	PUSHQ AX
	MOVQ CR3, AX
	MOVQ AX, CR3
	POPQ AX
	IRETQ

	// Slots 3-34: exception vectors 0-31 (Intel SDM Vol. 3, 6.15 lists
	// which ones push an error code).
	EXC_NOERR(0)
	EXC_NOERR(1)
	EXC_NOERR(2)
	EXC_NOERR(3)
	EXC_NOERR(4)
	EXC_NOERR(5)
	EXC_NOERR(6)
	EXC_NOERR(7)
	EXC_ERR(8)
	EXC_NOERR(9)
	EXC_ERR(10)
	EXC_ERR(11)
	EXC_ERR(12)
	EXC_ERR(13)
	EXC_ERR(14)
	EXC_NOERR(15)
	EXC_NOERR(16)
	EXC_ERR(17)
	EXC_NOERR(18)
	EXC_NOERR(19)
	EXC_NOERR(20)
	EXC_ERR(21)
	EXC_NOERR(22)
	EXC_NOERR(23)
	EXC_NOERR(24)
	EXC_NOERR(25)
	EXC_NOERR(26)
	EXC_NOERR(27)
	EXC_NOERR(28)
	EXC_ERR(29)
	EXC_ERR(30)
	EXC_NOERR(31)

	// End marker: int3, checked by TestCodeLayout so that a slot that
	// outgrew 32 bytes is caught.
	PCALIGN $32
	BYTE $0xCC

// codeStart returns the address of trapCode's first instruction. It is in
// assembly so that the address is the ABI0 symbol's, not an ABI wrapper's.
TEXT ·codeStart(SB), NOSPLIT, $0-8
	LEAQ ·trapCode(SB), AX
	MOVQ AX, ret+0(FP)
	RET

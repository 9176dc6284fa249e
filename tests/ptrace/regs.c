// regs.c: GETREGS/SETREGS, PEEKUSER/POKEUSER on registers, GETFPREGS/
// SETFPREGS and PTRACE_ARCH_PRCTL.
//
// Linux: arch/x86/kernel/ptrace.c:getreg(), putreg(), set_segment_reg(),
// arch_ptrace() (PTRACE_ARCH_PRCTL); arch/x86/kernel/fpu/regset.c:xfpregs_get();
// ptrace(2) "PTRACE_GETREGS", "PTRACE_PEEKUSER".
#define TAP_REGS_PROBE
#include "tap.h"

#define X86_IOPL 0x3000

static const unsigned char pattern0[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static unsigned char xmm1_seen[16];
static const unsigned char pattern1[16] = {0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
					   0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};
static unsigned long my_fs;
static int pfd[2];

// t_probe reports its fs base, then stops in regs_probe; it returns 0 iff
// the tracer set r12 to 0x1234 and xmm1 to pattern1 in that stop.
static int t_probe(void *arg)
{
	(void)arg;
	unsigned long fs = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS_, &fs);
	if (write(pfd[1], &fs, sizeof fs) != sizeof fs)
		return 9;
	long r12 = regs_probe(getpid(), pattern0, xmm1_seen);
	return (r12 == 0x1234 ? 0 : 1) | (memcmp(xmm1_seen, pattern1, 16) == 0 ? 0 : 2);
}

int main(void)
{
	tap_init();
	struct user_regs_struct r, r2;
	struct user_fpregs_struct fp;
	long w;
	if (pipe(pfd) != 0)
		return 3;

	pid_t c = spawn_traceme(t_probe, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "the tracee stops in regs_probe");
	if (read(pfd[0], &my_fs, sizeof my_fs) != sizeof my_fs)
		return 3;

	// GETREGS and PEEKUSER agree; rip/orig_rax are as expected.
	check_eq(getregs(c, &r), 0, "PTRACE_GETREGS succeeds");
	check_eq(r.rip - (unsigned long)regs_probe_after, 0, "rip is after the kill syscall");
	check_eq((long)r.orig_rax, SYS_kill, "orig_rax is SYS_kill in the signal-delivery-stop");
	int same = 1;
	for (size_t off = 0; off < sizeof r; off += 8) {
		pt(PTRACE_PEEKUSER, c, off, (unsigned long)&w);
		if (w != ((long *)&r)[off / 8])
			same = 0;
	}
	check_eq(same, 1, "PEEKUSER of each register offset equals GETREGS");
	check_eq(r.fs_base == my_fs, 1, "fs_base is the tracee's ARCH_GET_FS value");
	check_hex(r.cs, 0x33, "cs is the 64-bit user code selector");

	// PTRACE_ARCH_PRCTL ARCH_GET_FS stores the fs base at addr.
	unsigned long fs = 0;
	check_eq(pt(PTRACE_ARCH_PRCTL, c, (unsigned long)&fs, ARCH_GET_FS_), 0, "PTRACE_ARCH_PRCTL ARCH_GET_FS succeeds");
	check_eq(fs == my_fs, 1, "PTRACE_ARCH_PRCTL ARCH_GET_FS returns the tracee's fs base");

	// Invalid values.
	check_err(pt(PTRACE_GETREGS, c, 0, 8), EFAULT, "GETREGS to a bad address is EFAULT");
	check_err(pt(PTRACE_POKEUSER, c, offsetof(struct user_regs_struct, cs), 0x10), EIO,
		  "POKEUSER of a kernel cs selector is EIO");
	r2 = r;
	r2.ss = 0x8; // RPL 0
	check_err(pt(PTRACE_SETREGS, c, 0, (unsigned long)&r2), EIO, "SETREGS with a kernel ss is EIO");
	pt(PTRACE_POKEUSER, c, offsetof(struct user_regs_struct, eflags), r.eflags | X86_IOPL);
	pt(PTRACE_PEEKUSER, c, offsetof(struct user_regs_struct, eflags), (unsigned long)&w);
	check_hex(w & X86_IOPL, 0, "POKEUSER cannot raise IOPL in eflags");

	// GETFPREGS: xmm0 holds pattern0, mxcsr its default.
	check_eq(pt(PTRACE_GETFPREGS, c, 0, (unsigned long)&fp), 0, "PTRACE_GETFPREGS succeeds");
	check_eq(memcmp(fp.xmm_space, pattern0, 16), 0, "xmm0 in GETFPREGS is the tracee's value");
	check_hex(fp.mxcsr, 0x1f80, "mxcsr is the default 0x1f80");

	// SETFPREGS sets xmm1; POKEUSER sets r12: the tracee checks both.
	memcpy((char *)fp.xmm_space + 16, pattern1, 16);
	check_eq(pt(PTRACE_SETFPREGS, c, 0, (unsigned long)&fp), 0, "PTRACE_SETFPREGS succeeds");
	check_eq(pt(PTRACE_POKEUSER, c, offsetof(struct user_regs_struct, r12), 0x1234), 0,
		 "POKEUSER of r12 succeeds");
	pt(PTRACE_PEEKUSER, c, offsetof(struct user_regs_struct, r12), (unsigned long)&w);
	check_hex(w, 0x1234, "PEEKUSER reads the poked r12");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees r12 and xmm1 set by the tracer");

	// SETREGS of rip and rax redirects the tracee: jump to _exit(rdi)
	// with rdi = 42 by pointing rip at a syscall instruction with rax = 60.
	c = spawn_traceme(t_probe, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	if (read(pfd[0], &my_fs, sizeof my_fs) != sizeof my_fs)
		return 3;
	getregs(c, &r);
	r.rip = (unsigned long)regs_probe_after - 2; // the syscall instruction
	r.rax = SYS_exit_group;
	r.rdi = 42;
	check_eq(pt(PTRACE_SETREGS, c, 0, (unsigned long)&r), 0, "SETREGS of rip, rax and rdi");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(42), "the tracee runs exit_group(42) set up by SETREGS");

	// ARCH_SET_FS through ptrace.
	c = spawn_traceme(NULL, NULL);
	check_eq(pt(PTRACE_ARCH_PRCTL, c, 0x10000, ARCH_SET_FS_), 0, "PTRACE_ARCH_PRCTL ARCH_SET_FS succeeds");
	getregs(c, &r);
	check_hex(r.fs_base, 0x10000, "GETREGS shows the fs base set through ptrace");
	kill_reap(c);

	return tap_done();
}

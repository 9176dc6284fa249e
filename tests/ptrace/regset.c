// regset.c: PTRACE_GETREGSET/SETREGSET with NT_PRSTATUS, NT_PRFPREG and
// NT_X86_XSTATE: sizes, short iovecs, iov_len updates, errors.
//
// Linux: kernel/ptrace.c:ptrace_regset(), include/linux/regset.h,
// arch/x86/kernel/ptrace.c:x86_64_regsets; ptrace(2) "PTRACE_GETREGSET".
#define TAP_REGS_PROBE
#include "tap.h"
#include <elf.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

static const unsigned char pattern0[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const unsigned char pattern1[16] = {0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
					   0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};
static unsigned char xmm1_seen[16];

static int t_probe(void *arg)
{
	(void)arg;
	long r12 = regs_probe(getpid(), pattern0, xmm1_seen);
	return (r12 == 0x4321 ? 0 : 1) | (memcmp(xmm1_seen, pattern1, 16) == 0 ? 0 : 2);
}

// xsave_max returns CPUID.(EAX=0DH,ECX=0):ECX, the largest XSAVE area any
// XCR0 setting can need: an upper bound of the NT_X86_XSTATE size.
static unsigned xsave_max(void)
{
	unsigned a = 0xd, b, c = 0, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return c;
}

int main(void)
{
	tap_init();
	struct user_regs_struct r, rs;
	struct user_fpregs_struct fp;
	struct iovec iov;
	static unsigned char buf[16384];

	pid_t c = spawn_traceme(t_probe, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	getregs(c, &r);

	// NT_PRSTATUS.
	memset(&rs, 0, sizeof rs);
	iov.iov_base = &rs;
	iov.iov_len = sizeof rs;
	check_eq(pt(PTRACE_GETREGSET, c, NT_PRSTATUS, (unsigned long)&iov), 0, "GETREGSET NT_PRSTATUS succeeds");
	check_eq(iov.iov_len, sizeof(struct user_regs_struct), "NT_PRSTATUS is 216 bytes");
	check_eq(memcmp(&rs, &r, sizeof r), 0, "NT_PRSTATUS equals GETREGS");
	memset(buf, 0xee, sizeof buf);
	iov.iov_base = buf;
	iov.iov_len = 16;
	pt(PTRACE_GETREGSET, c, NT_PRSTATUS, (unsigned long)&iov);
	ok(iov.iov_len == 16 && memcmp(buf, &r, 16) == 0 && buf[16] == 0xee,
	   "a short iovec reads only a 16-byte prefix", "got len %zu", iov.iov_len);
	iov.iov_len = 4096;
	pt(PTRACE_GETREGSET, c, NT_PRSTATUS, (unsigned long)&iov);
	check_eq(iov.iov_len, sizeof(struct user_regs_struct), "a long iovec is shortened to the regset size");

	// NT_PRFPREG.
	pt(PTRACE_GETFPREGS, c, 0, (unsigned long)&fp);
	iov.iov_base = buf;
	iov.iov_len = sizeof buf;
	check_eq(pt(PTRACE_GETREGSET, c, NT_PRFPREG, (unsigned long)&iov), 0, "GETREGSET NT_PRFPREG succeeds");
	check_eq(iov.iov_len, 512, "NT_PRFPREG is the 512-byte fxsave area");
	check_eq(memcmp(buf, &fp, 416), 0, "NT_PRFPREG equals GETFPREGS up to xmm15");

	// NT_X86_XSTATE.
	iov.iov_base = buf;
	iov.iov_len = sizeof buf;
	long ret = pt(PTRACE_GETREGSET, c, NT_X86_XSTATE, (unsigned long)&iov);
	check_eq(ret, 0, "GETREGSET NT_X86_XSTATE succeeds");
	ok(iov.iov_len >= 576 && iov.iov_len <= xsave_max(), "NT_X86_XSTATE size is within [576, CPUID max]",
	   "got %zu", iov.iov_len);
	ok(memcmp(buf + 160, pattern0, 16) == 0 && memcmp(buf, &fp, 32) == 0,
	   "the XSAVE legacy area holds the FP state and xmm0", "mismatch");

	// Errors.
	iov.iov_base = buf;
	iov.iov_len = sizeof buf;
	check_err(pt(PTRACE_GETREGSET, c, 0x999, (unsigned long)&iov), EINVAL, "an unknown NT type is EINVAL");
	iov.iov_len = 12;
	check_err(pt(PTRACE_GETREGSET, c, NT_PRSTATUS, (unsigned long)&iov), EINVAL,
		  "an iov_len not a multiple of the register size is EINVAL");
	iov.iov_base = (void *)8;
	iov.iov_len = sizeof r;
	check_err(pt(PTRACE_GETREGSET, c, NT_PRSTATUS, (unsigned long)&iov), EFAULT, "a bad iov_base is EFAULT");
	check_err(pt(PTRACE_GETREGSET, c, NT_PRSTATUS, 8), EFAULT, "a bad iovec pointer is EFAULT");

	// SETREGSET of r12 (NT_PRSTATUS) and xmm1 (NT_PRFPREG): the
	// tracee checks both.
	rs = r;
	rs.r12 = 0x4321;
	iov.iov_base = &rs;
	iov.iov_len = sizeof rs;
	check_eq(pt(PTRACE_SETREGSET, c, NT_PRSTATUS, (unsigned long)&iov), 0, "SETREGSET NT_PRSTATUS succeeds");
	memcpy((char *)fp.xmm_space + 16, pattern1, 16);
	iov.iov_base = &fp;
	iov.iov_len = sizeof fp;
	check_eq(pt(PTRACE_SETREGSET, c, NT_PRFPREG, (unsigned long)&iov), 0, "SETREGSET NT_PRFPREG succeeds");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees r12 and xmm1 set through SETREGSET");

	// A short SETREGSET NT_PRSTATUS sets only the prefix.
	c = spawn_traceme(t_probe, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	getregs(c, &r);
	rs = r;
	rs.r15 = 0x77;
	rs.r12 = 0x88; // outside the 8-byte prefix: not written
	iov.iov_base = &rs;
	iov.iov_len = 8;
	check_eq(pt(PTRACE_SETREGSET, c, NT_PRSTATUS, (unsigned long)&iov), 0, "a short SETREGSET succeeds");
	getregs(c, &rs);
	ok(rs.r15 == 0x77 && rs.r12 == r.r12, "a short SETREGSET changes only the prefix (r15)",
	   "got r15=%#llx r12 changed=%d", rs.r15, rs.r12 != r.r12);
	check_eq(iov.iov_len, 8, "iov_len stays 8");
	kill_reap(c);

	// SETREGSET NT_X86_XSTATE sets xmm1 (the XSAVE legacy area at
	// byte 160 + 16, with XSTATE_BV's SSE bit so it is not taken as init).
	c = spawn_traceme(t_probe, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	iov.iov_base = buf;
	iov.iov_len = sizeof buf;
	pt(PTRACE_GETREGSET, c, NT_X86_XSTATE, (unsigned long)&iov);
	memcpy(buf + 160 + 16, pattern1, 16);
	buf[512] |= 2;
	check_eq(pt(PTRACE_SETREGSET, c, NT_X86_XSTATE, (unsigned long)&iov), 0, "SETREGSET NT_X86_XSTATE succeeds");
	pt(PTRACE_POKEUSER, c, offsetof(struct user_regs_struct, r12), 0x4321);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees xmm1 set through NT_X86_XSTATE");

	return tap_done();
}

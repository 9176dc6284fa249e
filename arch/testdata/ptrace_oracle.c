// ptrace_oracle is the host-kernel oracle for arch/ptrace*.go's tests.
//
// "consts" prints ABI sizes, offsets and constants from the C headers, one
// "NAME VALUE" pair a line. "script" forks a child that stops itself, then
// runs the requests read from stdin against it (one a line, see run_op) and
// prints one result line for each. "syscallinfo" prints what
// PTRACE_GET_SYSCALL_INFO returns at the stops of a few system calls of a
// child, and what PTRACE_SET_SYSCALL_INFO does there. "forkdr" prints the
// debug registers of a traced process and of the child it forks. Built static by the test; it needs nothing but a Linux host.
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/ptrace.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_SET_SYSCALL_INFO
#define PTRACE_SET_SYSCALL_INFO 0x4212 // Linux 6.16; newer than some headers
#endif

// <sys/ptrace.h> and <linux/ptrace.h> clash; the requests are called
// through syscall(2) so the kernel's return value and errno are seen as
// they are.
static long xptrace(long req, pid_t pid, unsigned long addr, unsigned long data) {
	return syscall(SYS_ptrace, req, pid, addr, data);
}

#define C(x) printf("%s %lld\n", #x, (long long)(x))

static int consts(void) {
	C(sizeof(struct user));
	C(offsetof(struct user, regs));
	C(offsetof(struct user, u_debugreg));
	C(sizeof(struct user_regs_struct));
	C(sizeof(struct user_fpregs_struct));
	C(sizeof(struct ptrace_syscall_info));
	C(offsetof(struct ptrace_syscall_info, arch));
	C(offsetof(struct ptrace_syscall_info, instruction_pointer));
	C(offsetof(struct ptrace_syscall_info, stack_pointer));
	C(offsetof(struct ptrace_syscall_info, entry.nr));
	C(offsetof(struct ptrace_syscall_info, entry.args));
	C(offsetof(struct ptrace_syscall_info, exit.rval));
	C(offsetof(struct ptrace_syscall_info, exit.is_error));
	C(offsetof(struct ptrace_syscall_info, seccomp.ret_data));
	C(sizeof(struct ptrace_peeksiginfo_args));
	C(offsetof(struct ptrace_peeksiginfo_args, flags));
	C(offsetof(struct ptrace_peeksiginfo_args, nr));
	C(PTRACE_PEEKSIGINFO_SHARED);
	C(PTRACE_GET_SYSCALL_INFO);
	C(PTRACE_SYSCALL_INFO_NONE);
	C(PTRACE_SYSCALL_INFO_ENTRY);
	C(PTRACE_SYSCALL_INFO_EXIT);
	C(PTRACE_SYSCALL_INFO_SECCOMP);
	C(PTRACE_EVENTMSG_SYSCALL_ENTRY);
	C(PTRACE_EVENTMSG_SYSCALL_EXIT);
	C(NT_PRSTATUS);
	C(NT_PRFPREG);
	C(NT_X86_XSTATE);
	C(AUDIT_ARCH_X86_64);
	return 0;
}

// child stops itself with SIGSTOP under PTRACE_TRACEME, with recognisable
// values in the SSE and AVX registers, and never runs again.
static pid_t stopped_child(void) {
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		static unsigned char pat[32];
		for (int i = 0; i < 32; i++)
			pat[i] = 0x10 + i;
		if (xptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			_exit(3);
		__asm__ volatile("movdqu %0, %%xmm7" ::"m"(pat) : "xmm7");
		// kill(2) directly: libc's raise() touches vector registers.
		syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
		fprintf(stderr, "child did not stop: %#x\n", st);
		exit(2);
	}
	return pid;
}

static void hex(const unsigned char *b, size_t n) {
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static int unhex(const char *s, unsigned char *b, size_t max) {
	size_t n = 0;
	while (s[0] && s[1] && n < max) {
		unsigned v;
		if (sscanf(s, "%2x", &v) != 1)
			break;
		b[n++] = v;
		s += 2;
	}
	return n;
}

static unsigned char buf[1 << 16];

// run_op runs one request and prints its result:
//   peek OFF            -> "ok VALUE" | "err ERRNO"
//   poke OFF VALUE      -> "ok" | "err ERRNO"
//   getregset NOTE LEN  -> "ok IOVLEN HEX" | "err ERRNO"
//   setregset NOTE LEN HEX (HEX may be shorter than LEN: the rest is the
//                       current contents of the regset) -> "ok IOVLEN" | "err ERRNO"
static void run_op(pid_t pid, char *line) {
	char op[32];
	unsigned long a, b, c;
	static char hexbuf[sizeof(buf) * 2 + 1];
	if (sscanf(line, "%31s", op) != 1)
		return;
	if (!strcmp(op, "peek") && sscanf(line, "%*s %lu", &a) == 1) {
		errno = 0;
		long v = xptrace(PTRACE_PEEKUSR, pid, a, (unsigned long)&c);
		if (v < 0)
			printf("err %d\n", errno);
		else
			printf("ok %lu\n", c);
	} else if (!strcmp(op, "poke") && sscanf(line, "%*s %lu %lu", &a, &b) == 2) {
		if (xptrace(PTRACE_POKEUSR, pid, a, b) < 0)
			printf("err %d\n", errno);
		else
			printf("ok\n");
	} else if (!strcmp(op, "getregset") && sscanf(line, "%*s %lu %lu", &a, &b) == 2) {
		struct iovec iov = {buf, b};
		memset(buf, 0xee, sizeof(buf));
		if (xptrace(PTRACE_GETREGSET, pid, a, (unsigned long)&iov) < 0) {
			printf("err %d\n", errno);
			return;
		}
		printf("ok %zu ", iov.iov_len);
		hex(buf, iov.iov_len);
		printf("\n");
	} else if (!strcmp(op, "setregset") && sscanf(line, "%*s %lu %lu %s", &a, &b, hexbuf) == 3) {
		struct iovec iov = {buf, sizeof(buf)};
		memset(buf, 0, sizeof(buf));
		xptrace(PTRACE_GETREGSET, pid, a, (unsigned long)&iov);
		unhex(hexbuf, buf, sizeof(buf));
		iov.iov_base = buf;
		iov.iov_len = b;
		if (xptrace(PTRACE_SETREGSET, pid, a, (unsigned long)&iov) < 0)
			printf("err %d\n", errno);
		else
			printf("ok %zu\n", iov.iov_len);
	} else {
		printf("bad %s", line);
	}
}

static int script(void) {
	pid_t pid = stopped_child();
	static char line[sizeof(buf) * 2 + 64];
	while (fgets(line, sizeof(line), stdin)) {
		run_op(pid, line);
		fflush(stdout);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

// syscall_child runs a few system calls for syscallinfo: one that
// succeeds, one that fails, and one that a seccomp filter hands to the
// tracer with SECCOMP_RET_TRACE.
static void syscall_child(void) {
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getuid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 0x1234),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
	if (xptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		_exit(3);
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	syscall(SYS_getppid);
	syscall(SYS_close, -1);
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		_exit(4);
	syscall(SYS_getuid);
	syscall(SYS_exit_group, 0);
}

// print_info prints one stop: what PTRACE_GET_SYSCALL_INFO returns with a
// whole buffer and with an 8-byte one, the event message and the
// registers, as "stop MSG RET HEX RET8 REGSHEX".
static void print_info(pid_t pid) {
	struct ptrace_syscall_info info;
	struct user_regs_struct regs;
	unsigned long msg = 0, small = 0;
	memset(&info, 0xee, sizeof(info));
	xptrace(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&msg);
	long n = xptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info), (unsigned long)&info);
	long n8 = xptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(small), (unsigned long)&small);
	if (xptrace(PTRACE_GETREGS, pid, 0, (unsigned long)&regs) < 0) {
		perror("PTRACE_GETREGS");
		exit(2);
	}
	printf("stop %lu %ld ", msg, n);
	hex((unsigned char *)&info, n > 0 && n <= (long)sizeof(info) ? n : 0);
	printf(" %ld ", n8);
	hex((unsigned char *)&regs, sizeof(regs));
	printf("\n");
}

// try_set runs PTRACE_SET_SYSCALL_INFO at a stop with a few variants of the
// stop's own info: a short size, a non-zero flags or reserved byte, a
// different op, a system call number that is no int, and a valid change
// the child does not notice (r9 at entry, a return value it ignores at
// exit). Each prints "set SIZE INFOHEX RET ERRNO REGSHEX", the registers
// read after the request.
static void try_set(pid_t pid) {
	struct ptrace_syscall_info info, v;
	memset(&info, 0, sizeof(info));
	if (xptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info), (unsigned long)&info) < 0)
		return;
	for (int i = 0; i < 7; i++) {
		unsigned long size = sizeof(v);
		v = info;
		switch (i) {
		case 0: size = sizeof(v) - 8; break;
		case 1: ((unsigned char *)&v)[2] = 1; break; // flags
		case 2: ((unsigned char *)&v)[1] = 1; break; // reserved
		case 3: v.op = info.op == PTRACE_SYSCALL_INFO_ENTRY ? PTRACE_SYSCALL_INFO_EXIT : PTRACE_SYSCALL_INFO_ENTRY; break;
		case 4: v.entry.nr = 1ULL << 32; break;
		case 5: v.entry.nr = (unsigned long long)-1; v.entry.args[0] = 77; break;
		case 6:
			if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
				v.exit.rval = 7;
				v.exit.is_error = 1;
			} else {
				v.entry.args[5] = 0x5555;
			}
			break;
		}
		if (i == 5) {
			// A real -1 would skip the child's system call; do it only
			// on a copy of the request whose op the kernel refuses.
			v.op = PTRACE_SYSCALL_INFO_NONE;
		}
		errno = 0;
		long r = xptrace(PTRACE_SET_SYSCALL_INFO, pid, size, (unsigned long)&v);
		int e = r < 0 ? errno : 0;
		struct user_regs_struct regs;
		if (xptrace(PTRACE_GETREGS, pid, 0, (unsigned long)&regs) < 0) {
			perror("PTRACE_GETREGS");
			exit(2);
		}
		printf("set %lu ", size);
		hex((unsigned char *)&v, sizeof(v));
		printf(" %ld %d ", r, e);
		hex((unsigned char *)&regs, sizeof(regs));
		printf("\n");
	}
}

static int syscallinfo(void) {
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0)
		syscall_child();
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
		fprintf(stderr, "child did not stop: %#x\n", st);
		return 2;
	}
	print_info(pid); // a signal-delivery stop: PTRACE_SYSCALL_INFO_NONE
	if (xptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL) < 0) {
		perror("PTRACE_SETOPTIONS");
		return 2;
	}
	for (;;) {
		if (xptrace(PTRACE_SYSCALL, pid, 0, 0) < 0) {
			perror("PTRACE_SYSCALL");
			return 2;
		}
		if (waitpid(pid, &st, 0) != pid)
			return 2;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			break;
		print_info(pid);
		try_set(pid);
	}
	return 0;
}

// forkdr sets DR0, DR6 and DR7 of a traced process, lets it fork under
// PTRACE_O_TRACEFORK and prints the debug registers of both as
// "dr N PARENT CHILD" lines.
static int forkdr(void) {
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		if (xptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			_exit(3);
		syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		waitpid(c, NULL, 0);
		_exit(0);
	}
	int st;
	unsigned long child, v;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
		return 2;
	unsigned long dr = offsetof(struct user, u_debugreg);
	if (xptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL) < 0 ||
	    xptrace(PTRACE_POKEUSR, pid, dr, 0x1000) < 0 ||
	    xptrace(PTRACE_POKEUSR, pid, dr + 6 * 8, 0x4001) < 0 ||
	    xptrace(PTRACE_POKEUSR, pid, dr + 7 * 8, 0x90001) < 0 ||
	    xptrace(PTRACE_CONT, pid, 0, 0) < 0) {
		perror("ptrace");
		return 2;
	}
	if (waitpid(pid, &st, 0) != pid || st >> 8 != (SIGTRAP | PTRACE_EVENT_FORK << 8) ||
	    xptrace(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&child) < 0 ||
	    waitpid(child, &st, __WALL) != (pid_t)child) {
		fprintf(stderr, "no fork event: %#x\n", st);
		return 2;
	}
	for (int n = 0; n < 8; n++) {
		printf("dr %d", n);
		pid_t who[2] = {pid, child};
		for (int i = 0; i < 2; i++) {
			if (xptrace(PTRACE_PEEKUSR, who[i], dr + 8 * n, (unsigned long)&v) < 0)
				printf(" err");
			else
				printf(" %lu", v);
		}
		printf("\n");
	}
	kill(child, SIGKILL);
	kill(pid, SIGKILL);
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	if (argc == 2 && !strcmp(argv[1], "consts"))
		return consts();
	if (argc == 2 && !strcmp(argv[1], "script"))
		return script();
	if (argc == 2 && !strcmp(argv[1], "syscallinfo"))
		return syscallinfo();
	if (argc == 2 && !strcmp(argv[1], "forkdr"))
		return forkdr();
	fprintf(stderr, "usage: %s consts|script|syscallinfo|forkdr\n", argv[0]);
	return 2;
}

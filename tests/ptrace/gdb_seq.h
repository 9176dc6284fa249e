/*
 * gdb_seq.h: the debuggee of mini_gdb (run by gdb_target, or by mini_gdb
 * itself re-executed with --gdb-target).
 *
 * bp_func is written in assembly so that a debugger single-stepping it sees
 * fixed instruction offsets: 0 (mov %rdi,%rax: 3 bytes), 3 (add %rax,%rax:
 * 3 bytes), 6 (add counter(%rip),%rax: 7 bytes), 13 (ret). It returns
 * 2*x + counter.
 */
#ifndef RINGBOX_TESTS_PTRACE_GDB_SEQ_H
#define RINGBOX_TESTS_PTRACE_GDB_SEQ_H

#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

volatile long counter = 5;
volatile long watched;

long bp_func(long x);
__asm__(".text\n"
	".globl bp_func\n"
	"bp_func:\n"
	"  mov %rdi, %rax\n"
	"  add %rax, %rax\n"
	"  add counter(%rip), %rax\n"
	"  ret\n");

/* The addresses a debugger needs, sent on the report pipe. */
struct gdb_symbols {
	unsigned long bp_func, counter, watched;
};

/* gdb_target_run is the debuggee's main: with report_fd >= 0 it sends its
 * symbols there and stops itself so that the debugger can set breakpoints,
 * then calls bp_func(20), writes watched and prints both results. */
static inline int gdb_target_run(int report_fd)
{
	if (report_fd >= 0) {
		struct gdb_symbols s = {(unsigned long)bp_func, (unsigned long)&counter, (unsigned long)&watched};
		if (write(report_fd, &s, sizeof s) != sizeof s)
			return 2;
		close(report_fd);
		syscall(SYS_kill, getpid(), SIGSTOP);
	}
	long r = bp_func(20);
	watched = 77;
	printf("target: bp_func(20) = %ld\ntarget: watched = %ld\n", r, watched);
	fflush(stdout);
	return 0;
}

#endif

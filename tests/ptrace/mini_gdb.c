// mini_gdb.c: a debugger-like walk through ptrace: start a target traced
// (PTRACE_TRACEME + execve), learn symbol addresses from it, set an int3
// breakpoint with POKETEXT, hit it, read registers and memory, change a
// variable with POKEDATA, remove the breakpoint and rewind rip, single-step,
// catch a write with a hardware watchpoint (DR0/DR7), and run to the exit.
//
//   mini_gdb        debug this program re-executed as the target (gdb_seq.h)
//   mini_gdb PROG   debug PROG, run as "PROG --report-fd N" (gdb_target)
//
// Every step is a TAP case; the target's own two output lines appear before
// the last case.
//
// Linux: arch/x86/kernel/traps.c:do_int3() (rip after the int3),
// arch/x86/kernel/ptrace.c (POKEUSER of u_debugreg); ptrace(2).
#include "tap.h"
#include "gdb_seq.h"

#define DR(n) (offsetof(struct user, u_debugreg) + (n) * sizeof(long))

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--gdb-target") == 0)
		return gdb_target_run(atoi(argv[2]));
	tap_init();

	int p[2];
	if (pipe(p) != 0)
		return 3;
	const char *prog = argc > 1 ? argv[1] : "/proc/self/exe";
	pid_t c = xfork();
	if (c == 0) {
		close(p[0]);
		char fd[16];
		snprintf(fd, sizeof fd, "%d", p[1]);
		char *args[] = {(char *)prog, argc > 1 ? "--report-fd" : "--gdb-target", fd, NULL};
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(98);
		execv(prog, args);
		_exit(127);
	}
	close(p[1]);

	check_status(wait_pid(c), STOPPED(SIGTRAP), "the target stops with SIGTRAP after execve");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "it reports its symbols and stops");
	struct gdb_symbols sym;
	if (read(p[0], &sym, sizeof sym) != sizeof sym) {
		ok(0, "symbols received", "short read");
		kill_reap(c);
		return tap_done();
	}

	// The breakpoint.
	long orig = 0, w = 0;
	pt(PTRACE_PEEKTEXT, c, sym.bp_func, (unsigned long)&orig);
	long patched = (orig & ~0xffL) | 0xcc;
	check_eq(pt(PTRACE_POKETEXT, c, sym.bp_func, patched), 0, "int3 written at bp_func with POKETEXT");
	pt(PTRACE_PEEKTEXT, c, sym.bp_func, (unsigned long)&w);
	check_hex(w & 0xff, 0xcc, "PEEKTEXT reads the int3 back");
	pt(PTRACE_CONT, c, 0, 0); // suppress the SIGSTOP
	int st = wait_pid(c);
	struct user_regs_struct r;
	getregs(c, &r);
	ok(st == STOPPED(SIGTRAP) && r.rip == sym.bp_func + 1, "the breakpoint is hit: SIGTRAP, rip = bp_func+1",
	   "got %s rip=bp_func%+ld", desc(st), (long)(r.rip - sym.bp_func));
	check_eq(r.rdi, 20, "the argument register rdi holds 20");

	// Memory.
	pt(PTRACE_PEEKDATA, c, sym.counter, (unsigned long)&w);
	check_eq(w, 5, "counter reads 5");
	pt(PTRACE_POKEDATA, c, sym.counter, 100);
	pt(PTRACE_PEEKDATA, c, sym.counter, (unsigned long)&w);
	check_eq(w, 100, "counter is set to 100 with POKEDATA");

	// Remove the breakpoint and re-execute the instruction.
	pt(PTRACE_POKETEXT, c, sym.bp_func, orig);
	r.rip = sym.bp_func;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_PEEKTEXT, c, sym.bp_func, (unsigned long)&w);
	getregs(c, &r);
	ok(w == orig && r.rip == sym.bp_func, "the original byte is restored and rip rewound", "mismatch");

	// Single steps through bp_func.
	long offs[3];
	for (int i = 0; i < 3; i++) {
		pt(PTRACE_SINGLESTEP, c, 0, 0);
		wait_pid(c);
		getregs(c, &r);
		offs[i] = (long)(r.rip - sym.bp_func);
	}
	ok(offs[0] == 3 && offs[1] == 6 && offs[2] == 13, "three single-steps land at bp_func+3, +6, +13",
	   "got +%ld +%ld +%ld", offs[0], offs[1], offs[2]);
	check_eq(r.rax, 140, "rax is 2*20 + 100 after the re-executed code");

	// The hardware watchpoint.
	unsigned long dr7 = 1UL | (1UL << 16) | (3UL << 18); // L0, write, 8 bytes
	ok(pt(PTRACE_POKEUSER, c, DR(0), sym.watched) == 0 && pt(PTRACE_POKEUSER, c, DR(7), dr7) == 0,
	   "a write watchpoint is set on watched (DR0, DR7)", "POKEUSER failed");
	pt(PTRACE_CONT, c, 0, 0);
	st = wait_pid(c);
	long dr6 = 0;
	pt(PTRACE_PEEKUSER, c, DR(6), (unsigned long)&dr6);
	ok(st == STOPPED(SIGTRAP) && (dr6 & 1), "the write triggers it: SIGTRAP with DR6.B0", "got %s dr6=%#lx",
	   desc(st), dr6);
	pt(PTRACE_PEEKDATA, c, sym.watched, (unsigned long)&w);
	check_eq(w, 77, "watched holds the new value 77 at the trap");

	pt(PTRACE_POKEUSER, c, DR(7), 0);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the target runs to its exit");

	return tap_done();
}

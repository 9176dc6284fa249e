/*
 * waitid.c - waitid(2): P_PID, P_PGID, P_ALL, P_PIDFD, WEXITED, WSTOPPED,
 * WCONTINUED, WNOWAIT, WNOHANG, and the siginfo it fills (si_code CLD_*).
 *
 * Linux: kernel/exit.c:kernel_waitid(), wait_task_zombie(),
 * wait_task_stopped(), wait_task_continued().
 *
 * Core dumps: with RLIMIT_CORE 0 and an undumpable process Linux writes no
 * core whatever core_pattern says, so the status has no WCOREDUMP bit and
 * si_code is CLD_KILLED, not CLD_DUMPED. CLD_DUMPED itself needs a core
 * actually written (a file or a core_pattern pipe helper), which depends on
 * the host's configuration, so it is only checked for consistency with the
 * WCOREDUMP bit.
 */
#include "tap.h"
#include "abi.h"
#include <sys/prctl.h>
#include <sys/resource.h>

static pid_t spawn_exit(int code)
{
	pid_t p = tap_fork();
	if (p == 0)
		_exit(code);
	return p;
}

static pid_t spawn_signal(int sig, int dumpable)
{
	pid_t p = tap_fork();
	if (p == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		if (!dumpable)
			prctl(PR_SET_DUMPABLE, 0);
		signal(sig, SIG_DFL);
		kill(getpid(), sig);
		_exit(100);
	}
	return p;
}

int main(void)
{
	tap_init();
	siginfo_t si;
	pid_t p;

	p = spawn_exit(17);
	memset(&si, 0, sizeof si);
	check_eq(waitid(P_PID, p, &si, WEXITED), 0, "waitid P_PID WEXITED");
	check_eq(si.si_pid, p, "si_pid is the child");
	check_eq(si.si_signo, SIGCHLD, "si_signo SIGCHLD");
	check_eq(si.si_code, CLD_EXITED, "si_code CLD_EXITED");
	check_eq(si.si_status, 17, "si_status is the exit code");
	check_eq(si.si_uid, getuid(), "si_uid is the child's uid");

	/* WNOWAIT leaves it waitable. */
	p = spawn_exit(3);
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED | WNOWAIT);
	check_eq(si.si_pid, p, "WNOWAIT reports the zombie");
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED | WNOWAIT);
	check_eq(si.si_status, 3, "WNOWAIT twice reports it again");
	memset(&si, 0, sizeof si);
	waitid(P_ALL, 0, &si, WEXITED);
	check_eq(si.si_pid, p, "P_ALL then reaps it");

	/* WNOHANG with nothing ready zeroes si_pid. */
	int pfd[2];
	if (pipe(pfd))
		return 1;
	p = tap_fork();
	if (p == 0) {
		char b;
		close(pfd[1]);
		read(pfd[0], &b, 1);
		_exit(0);
	}
	close(pfd[0]);
	si.si_pid = 12345;
	check_eq(waitid(P_PID, p, &si, WEXITED | WNOHANG), 0, "WNOHANG with no event returns 0");
	check_eq(si.si_pid, 0, "WNOHANG with no event zeroes si_pid");
	close(pfd[1]);
	waitid(P_PID, p, &si, WEXITED);

	/* Signals: CLD_KILLED, and the core-dump signal without a core. */
	p = spawn_signal(SIGTERM, 1);
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED);
	ok(si.si_code == CLD_KILLED && si.si_status == SIGTERM, "SIGTERM: CLD_KILLED with si_status SIGTERM");

	p = spawn_signal(SIGQUIT, 0);
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED | WNOWAIT);
	ok(si.si_code == CLD_KILLED && si.si_status == SIGQUIT, "SIGQUIT, RLIMIT_CORE 0, undumpable: CLD_KILLED (no core written)");
	int st;
	waitpid(p, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT && !WCOREDUMP(st), "SIGQUIT, RLIMIT_CORE 0, undumpable: no WCOREDUMP bit");

	p = spawn_signal(SIGSEGV, 1);
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED | WNOWAIT);
	waitpid(p, &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "SIGSEGV with RLIMIT_CORE 0 kills");
	ok((si.si_code == CLD_DUMPED) == (WCOREDUMP(st) != 0) && si.si_status == SIGSEGV,
	   "CLD_DUMPED iff WCOREDUMP (SIGSEGV, RLIMIT_CORE 0)");

	/* CLD_STOPPED and CLD_CONTINUED; the child holds on hold[] after
	 * the continue so that its exit cannot overtake the report. */
	int hold[2];
	if (pipe(hold))
		return 1;
	p = tap_fork();
	if (p == 0) {
		char b;
		kill(getpid(), SIGSTOP);
		read(hold[0], &b, 1);
		_exit(0);
	}
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WSTOPPED);
	ok(si.si_code == CLD_STOPPED && si.si_status == SIGSTOP, "WSTOPPED: CLD_STOPPED with SIGSTOP");
	kill(p, SIGCONT);
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WCONTINUED);
	ok(si.si_code == CLD_CONTINUED && si.si_status == SIGCONT, "WCONTINUED: CLD_CONTINUED with SIGCONT");
	write(hold[1], "g", 1);
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED);
	check_eq(si.si_code, CLD_EXITED, "then CLD_EXITED");

	/* P_PGID */
	p = tap_fork();
	if (p == 0) {
		setpgid(0, 0);
		_exit(21);
	}
	setpgid(p, p);
	memset(&si, 0, sizeof si);
	waitid(P_PGID, p, &si, WEXITED);
	ok(si.si_pid == p && si.si_status == 21, "P_PGID reaps a child of that group");
	p = spawn_exit(22);
	memset(&si, 0, sizeof si);
	check_err(waitid(P_PGID, p, &si, WEXITED | WNOHANG), ECHILD, "P_PGID of a group with no children of ours ECHILD");
	waitid(P_PID, p, &si, WEXITED);

	/* P_PIDFD */
	p = spawn_exit(23);
	int pfdn = syscall(SYS_pidfd_open, p, 0);
	if (pfdn < 0) {
		skip("no pidfd_open", "P_PIDFD reaps through a pidfd");
		waitid(P_PID, p, &si, WEXITED);
	} else {
		memset(&si, 0, sizeof si);
		waitid(P_PIDFD, pfdn, &si, WEXITED);
		ok(si.si_pid == p && si.si_status == 23, "P_PIDFD reaps through a pidfd");
		close(pfdn);
	}
	check_err(waitid(P_PIDFD, 9999, &si, WEXITED), EBADF, "P_PIDFD with a closed fd EBADF");

	/* Errors. */
	check_err(waitid(P_ALL, 0, &si, WNOHANG), EINVAL, "no WEXITED/WSTOPPED/WCONTINUED EINVAL");
	check_err(waitid((idtype_t)7, 0, &si, WEXITED), EINVAL, "bad idtype EINVAL");
	check_err(waitid(P_ALL, 0, &si, WEXITED), ECHILD, "no children ECHILD");
	check_err(waitid(P_PID, 0, &si, WEXITED), EINVAL, "P_PID with pid 0 EINVAL");
	p = spawn_exit(0);
	check_eq(syscall(SYS_waitid, P_PID, p, NULL, WEXITED, NULL), 0, "waitid with NULL infop reaps");
	tap_reap_all();
	return tap_done();
}

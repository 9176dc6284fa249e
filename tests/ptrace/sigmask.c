// sigmask.c: PTRACE_GETSIGMASK and PTRACE_SETSIGMASK.
//
// Linux: kernel/ptrace.c:ptrace_request() (PTRACE_GETSIGMASK/SETSIGMASK);
// ptrace(2) "PTRACE_GETSIGMASK".
#include "tap.h"

static int pfd[2];

#define BIT(sig) (1ULL << ((sig) - 1))

// t_mask blocks SIGUSR1 and SIGHUP, stops, then reports its mask.
static int t_mask(void *arg)
{
	(void)arg;
	sigset_t set, cur;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kill(getpid(), SIGSTOP);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	uint64_t m = 0;
	for (int s = 1; s <= 64; s++)
		if (sigismember(&cur, s) == 1)
			m |= BIT(s);
	return write(pfd[1], &m, sizeof m) == sizeof m ? 0 : 1;
}

int main(void)
{
	tap_init();
	uint64_t m = 0;
	if (pipe(pfd) != 0)
		return 3;

	pid_t c = spawn_traceme(t_mask, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	check_eq(pt(PTRACE_GETSIGMASK, c, 8, (unsigned long)&m), 0, "GETSIGMASK succeeds");
	check_hex(m, BIT(SIGUSR1) | BIT(SIGHUP), "GETSIGMASK returns the blocked set");
	check_err(pt(PTRACE_GETSIGMASK, c, 4, (unsigned long)&m), EINVAL, "GETSIGMASK with sigsetsize 4 is EINVAL");
	check_err(pt(PTRACE_SETSIGMASK, c, 16, (unsigned long)&m), EINVAL, "SETSIGMASK with sigsetsize 16 is EINVAL");
	check_err(pt(PTRACE_GETSIGMASK, c, 8, 8), EFAULT, "GETSIGMASK to a bad address is EFAULT");
	check_err(pt(PTRACE_SETSIGMASK, c, 8, 8), EFAULT, "SETSIGMASK from a bad address is EFAULT");

	m = ~0ULL;
	check_eq(pt(PTRACE_SETSIGMASK, c, 8, (unsigned long)&m), 0, "SETSIGMASK of all signals succeeds");
	pt(PTRACE_GETSIGMASK, c, 8, (unsigned long)&m);
	check_hex(m, ~(BIT(SIGKILL) | BIT(SIGSTOP)), "SIGKILL and SIGSTOP cannot be blocked");

	m = BIT(SIGUSR2) | BIT(SIGTERM);
	pt(PTRACE_SETSIGMASK, c, 8, (unsigned long)&m);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee runs on");
	uint64_t seen = 0;
	if (read(pfd[0], &seen, sizeof seen) != sizeof seen)
		seen = 1;
	check_hex(seen, BIT(SIGUSR2) | BIT(SIGTERM), "the tracee's sigprocmask shows the set mask");

	// A signal blocked by SETSIGMASK stays pending: SIGTERM does not kill.
	c = spawn_traceme(NULL, NULL);
	m = BIT(SIGTERM);
	pt(PTRACE_SETSIGMASK, c, 8, (unsigned long)&m);
	kill(c, SIGTERM);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "a signal blocked by SETSIGMASK is not delivered");

	return tap_done();
}

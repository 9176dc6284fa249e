// siginfo.c: signal-delivery-stops and their siginfo: GETSIGINFO,
// SETSIGINFO, restarting with the signal, another signal or none, and
// PEEKSIGINFO on the pending queues.
//
// Linux: kernel/signal.c:ptrace_signal(), kernel/ptrace.c:ptrace_getsiginfo(),
// ptrace_setsiginfo(), ptrace_peek_siginfo(); ptrace(2) "Signal-delivery-stop",
// "Signal injection and suppression", "PTRACE_PEEKSIGINFO".
#include "tap.h"

// seen is what the tracee's handlers saw, sent back over a pipe.
struct seen {
	int calls, signo, code, value, from_tracer;
};

static int pfd[2];
static volatile struct seen seen;

static void handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	seen.calls++;
	seen.signo = sig;
	seen.code = si->si_code;
	seen.value = si->si_value.sival_int;
	seen.from_tracer = si->si_pid == getppid();
}

// t_sig installs handlers, stops, and reports what its handlers saw.
static int t_sig(void *arg)
{
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	kill(getpid(), SIGSTOP);
	struct seen s = seen;
	return write(pfd[1], &s, sizeof s) == sizeof s ? 0 : 1;
}

// t_block blocks SIGUSR1 and SIGRTMIN and stops; it never handles them.
static int t_block(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kill(getpid(), SIGSTOP);
	return 0;
}

// start_sig runs t_sig up to its own SIGSTOP, queues sig with kill and
// resumes it into the signal-delivery-stop of sig.
static pid_t start_sig(int sig, int *st)
{
	pid_t c = spawn_traceme(t_sig, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // t_sig's SIGSTOP
	kill(c, sig);
	pt(PTRACE_CONT, c, 0, 0);
	*st = wait_pid(c);
	return c;
}

static struct seen finish(pid_t c, int sig)
{
	struct seen s;
	memset(&s, 0, sizeof s);
	pt(PTRACE_CONT, c, 0, sig);
	wait_pid(c);
	if (read(pfd[0], &s, sizeof s) != sizeof s)
		s.calls = -1;
	return s;
}

static int rt_tgsigqueue(pid_t pid, int sig, int value)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_value.sival_int = value;
	return (int)syscall(SYS_rt_tgsigqueueinfo, pid, pid, sig, &si);
}

int main(void)
{
	tap_init();
	siginfo_t si;
	struct seen s;
	int st;
	if (pipe(pfd) != 0)
		return 3;

	// kill(SIGUSR1): signal-delivery-stop; restart with the signal.
	pid_t c = start_sig(SIGUSR1, &st);
	check_status(st, STOPPED(SIGUSR1), "a pending SIGUSR1 gives a signal-delivery-stop");
	memset(&si, 0, sizeof si);
	check_eq(pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si), 0, "GETSIGINFO in it succeeds");
	ok(si.si_signo == SIGUSR1 && si.si_code == SI_USER && si.si_pid == getpid() && si.si_uid == 0,
	   "siginfo: SIGUSR1, SI_USER, sender pid and uid", "got signo=%d code=%d uid=%d", si.si_signo,
	   si.si_code, (int)si.si_uid);
	s = finish(c, SIGUSR1);
	ok(s.calls == 1 && s.signo == SIGUSR1 && s.code == SI_USER,
	   "restarting with the signal delivers it to the handler", "got calls=%d signo=%d code=%d", s.calls,
	   s.signo, s.code);

	// Suppressed.
	c = start_sig(SIGUSR1, &st);
	s = finish(c, 0);
	check_eq(s.calls, 0, "restarting with 0 suppresses the signal");

	// Another signal: the kernel builds a fresh SI_USER siginfo from the tracer.
	c = start_sig(SIGUSR1, &st);
	s = finish(c, SIGUSR2);
	ok(s.calls == 1 && s.signo == SIGUSR2 && s.code == SI_USER && s.from_tracer,
	   "restarting with SIGUSR2 delivers SIGUSR2 as SI_USER from the tracer",
	   "got calls=%d signo=%d code=%d from_tracer=%d", s.calls, s.signo, s.code, s.from_tracer);

	// SETSIGINFO rewrites what the handler sees.
	c = start_sig(SIGUSR1, &st);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	si.si_code = SI_QUEUE;
	si.si_value.sival_int = 77;
	check_eq(pt(PTRACE_SETSIGINFO, c, 0, (unsigned long)&si), 0, "SETSIGINFO succeeds");
	memset(&si, 0, sizeof si);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	check_eq(si.si_value.sival_int, 77, "GETSIGINFO reads the set siginfo back");
	s = finish(c, SIGUSR1);
	ok(s.calls == 1 && s.code == SI_QUEUE && s.value == 77, "the handler sees the tracer's siginfo",
	   "got calls=%d code=%d value=%d", s.calls, s.code, s.value);

	// tgkill gives SI_TKILL.
	c = spawn_traceme(t_sig, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	syscall(SYS_tgkill, c, c, SIGUSR2);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	ok(si.si_signo == SIGUSR2 && si.si_code == SI_TKILL, "tgkill's siginfo has si_code SI_TKILL",
	   "got signo=%d code=%d", si.si_signo, si.si_code);
	check_err(pt(PTRACE_GETSIGINFO, c, 0, 8), EFAULT, "GETSIGINFO to a bad address is EFAULT");
	finish(c, 0);

	// Syscall-stops have a SIGTRAP siginfo.
	c = spawn_traceme(NULL, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c);
	memset(&si, 0, sizeof si);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	ok(si.si_signo == SIGTRAP && si.si_code == (SIGTRAP | 0x80),
	   "a TRACESYSGOOD syscall-stop's siginfo is SIGTRAP with si_code SIGTRAP|0x80",
	   "got signo=%d code=%#x", si.si_signo, si.si_code);
	pt(PTRACE_CONT, c, 0, 0);
	check_err(pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si), ESRCH, "GETSIGINFO of a running tracee is ESRCH");
	wait_pid(c);

	// PEEKSIGINFO of the private and shared pending queues.
	c = spawn_traceme(t_block, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // blocked, stopped
	for (int v = 1; v <= 3; v++)
		rt_tgsigqueue(c, SIGRTMIN, v);
	sigqueue(c, SIGUSR1, (union sigval){.sival_int = 9});
	siginfo_t q[8];
	memset(q, 0, sizeof q);
	struct peeksiginfo_args a = {.off = 0, .flags = 0, .nr = 8};
	long n = pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q);
	check_eq(n, 3, "PEEKSIGINFO returns the 3 thread-directed signals");
	ok(q[0].si_value.sival_int == 1 && q[1].si_value.sival_int == 2 && q[2].si_value.sival_int == 3 &&
		   q[0].si_signo == SIGRTMIN && q[0].si_code == SI_QUEUE,
	   "in queue order with their siginfo", "got %d %d %d", q[0].si_value.sival_int, q[1].si_value.sival_int,
	   q[2].si_value.sival_int);
	a.off = 1;
	a.nr = 1;
	memset(q, 0, sizeof q);
	n = pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q);
	ok(n == 1 && q[0].si_value.sival_int == 2, "off=1 nr=1 returns the second", "got n=%ld value=%d", n,
	   q[0].si_value.sival_int);
	a.off = 0;
	a.nr = 8;
	a.flags = PT_PEEKSIGINFO_SHARED;
	memset(q, 0, sizeof q);
	n = pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q);
	ok(n == 1 && q[0].si_signo == SIGUSR1 && q[0].si_value.sival_int == 9,
	   "PEEKSIGINFO_SHARED returns the process-directed sigqueue", "got n=%ld signo=%d", n, q[0].si_signo);
	a.flags = 0;
	a.off = 5;
	check_eq(pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q), 0, "off past the queue returns 0");
	a.off = 0;
	a.nr = 0;
	check_eq(pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q), 0, "nr=0 returns 0");
	a.nr = 1;
	a.flags = 2;
	check_err(pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q), EINVAL,
		  "unknown PEEKSIGINFO flags are EINVAL");
	a.flags = 0;
	a.nr = -1;
	check_err(pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, (unsigned long)q), EINVAL,
		  "a negative nr is EINVAL");
	a.nr = 1;
	check_err(pt(PTRACE_PEEKSIGINFO, c, (unsigned long)&a, 8), EFAULT, "a bad buffer is EFAULT");
	kill_reap(c);

	return tap_done();
}

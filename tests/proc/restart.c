/*
 * restart.c - system call restart after signals: SA_RESTART restarts a
 * blocked read/write/wait, without it they fail with EINTR; nanosleep and
 * poll are never restarted after a handler and report EINTR (nanosleep with
 * the remaining time); a stop/continue with no handler restarts nanosleep
 * transparently through restart_syscall.
 *
 * Linux: arch/x86/kernel/signal.c:arch_do_signal_or_restart() (ERESTARTSYS,
 * ERESTARTNOHAND, ERESTART_RESTARTBLOCK), kernel/time/hrtimer.c:
 * hrtimer_nanosleep_restart(); signal(7) "Interruption of system calls".
 * Each EINTR case retries (bounded) in the unlikely event that the timer
 * fires before the call blocks.
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>

static volatile int hits;
static void on_alrm(int s) { (void)s; hits++; }

static void set_alrm(int restart)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_alrm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
}

static void arm(long first_us, long interval_us)
{
	struct itimerval it = { { 0, interval_us }, { 0, first_us } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void)
{
	arm(0, 0);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* writer_after sleeps us microseconds then writes one byte. */
static pid_t writer_after(int fd, long us)
{
	pid_t p = tap_fork();
	if (p == 0) {
		usleep(us);
		write(fd, "d", 1);
		_exit(0);
	}
	return p;
}

int main(void)
{
	tap_init();
	int pfd[2];
	char b;
	ssize_t r;
	if (pipe(pfd))
		return 1;

	/* SA_RESTART: a read interrupted many times still returns the data. */
	set_alrm(1);
	hits = 0;
	pid_t w = writer_after(pfd[1], 150000);
	arm(5000, 5000);
	r = read(pfd[0], &b, 1);
	disarm();
	ok(r == 1 && b == 'd', "SA_RESTART: read on a pipe restarted, returns the data");
	ok(hits >= 1, "SA_RESTART: the handler ran during the read");
	tap_wait(w);

	/* Without SA_RESTART: EINTR. */
	set_alrm(0);
	int eintr = 0;
	for (int i = 0; i < 5 && !eintr; i++) {
		hits = 0;
		arm(20000, 0);
		errno = 0;
		r = read(pfd[0], &b, 1);
		eintr = r == -1 && errno == EINTR && hits == 1;
	}
	ok(eintr, "no SA_RESTART: blocked read fails with EINTR");

	/* A blocked write on a full pipe. */
	int fl = fcntl(pfd[1], F_GETFL);
	fcntl(pfd[1], F_SETFL, fl | O_NONBLOCK);
	size_t filled = 0;
	while (write(pfd[1], "x", 1) == 1)
		filled++;
	fcntl(pfd[1], F_SETFL, fl);
	eintr = 0;
	for (int i = 0; i < 5 && !eintr; i++) {
		hits = 0;
		arm(20000, 0);
		errno = 0;
		r = write(pfd[1], "y", 1);
		eintr = r == -1 && errno == EINTR;
	}
	ok(eintr, "no SA_RESTART: blocked write on a full pipe fails with EINTR");
	/* Drain it from a child while we are restarted. */
	set_alrm(1);
	pid_t drainer = tap_fork();
	if (drainer == 0) {
		usleep(100000);
		char buf[4096];
		for (size_t got = 0; got < filled;) {
			ssize_t k = read(pfd[0], buf, sizeof buf);
			if (k <= 0)
				break;
			got += k;
		}
		_exit(0);
	}
	hits = 0;
	arm(5000, 5000);
	r = write(pfd[1], "z", 1);
	disarm();
	ok(r == 1 && hits >= 1, "SA_RESTART: blocked write restarted and completes");
	tap_wait(drainer);
	while (1) { /* drain the leftover byte */
		struct pollfd pf = { pfd[0], POLLIN, 0 };
		if (poll(&pf, 1, 0) != 1)
			break;
		read(pfd[0], &b, 1);
	}

	/* wait4 with SA_RESTART is restarted. */
	w = tap_fork();
	if (w == 0) {
		usleep(100000);
		_exit(3);
	}
	hits = 0;
	arm(5000, 5000);
	int st;
	pid_t wr = waitpid(w, &st, 0);
	disarm();
	ok(wr == w && WEXITSTATUS(st) == 3 && hits >= 1, "SA_RESTART: waitpid restarted");

	/* nanosleep: EINTR with the remaining time, even with SA_RESTART. */
	set_alrm(1);
	hits = 0;
	struct timespec req = { 2, 0 }, rem = { 0, 0 };
	arm(50000, 0);
	errno = 0;
	int nr = nanosleep(&req, &rem);
	ok(nr == -1 && errno == EINTR, "nanosleep interrupted by a handler: EINTR even with SA_RESTART");
	ok(rem.tv_sec == 1 || (rem.tv_sec == 0 && rem.tv_nsec > 500000000), "nanosleep: remaining time reported (about 1.95 s)");
	ok(rem.tv_sec < 2, "nanosleep: remaining time less than requested");

	/* poll is never restarted. */
	hits = 0;
	arm(30000, 0);
	struct pollfd pf = { pfd[0], POLLIN, 0 };
	errno = 0;
	int pr = poll(&pf, 1, 2000);
	ok(pr == -1 && errno == EINTR, "poll interrupted by a handler: EINTR even with SA_RESTART");

	/* restart_syscall: a stop/continue with no handler involved. */
	int go[2];
	if (pipe(go))
		return 1;
	pid_t c = tap_fork();
	if (c == 0) {
		struct timespec q = { 0, 400 * 1000 * 1000 }, rm = { 9, 9 };
		write(go[1], "g", 1);
		double t0 = now();
		int x = nanosleep(&q, &rm);
		double el = now() - t0;
		_exit(x == 0 ? (el >= 0.39 ? 0 : 2) : 1);
	}
	read(go[0], &b, 1);
	usleep(50000);
	kill(c, SIGSTOP);
	waitpid(c, &st, WUNTRACED);
	usleep(20000);
	kill(c, SIGCONT);
	check_eq(tap_wait(c), 0, "stop/continue: nanosleep restarted, returns 0 after the full time");

	/* clock_nanosleep TIMER_ABSTIME interrupted by a handler: EINTR. */
	set_alrm(0);
	struct timespec abs;
	clock_gettime(CLOCK_MONOTONIC, &abs);
	abs.tv_sec += 2;
	hits = 0;
	arm(30000, 0);
	int cr = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
	check_eq(cr, EINTR, "clock_nanosleep TIMER_ABSTIME interrupted: EINTR");

	/* FUTEX_WAIT without a timeout: EINTR after a handler without
	 * SA_RESTART (futex(2) "EINTR"). */
	set_alrm(0);
	static volatile uint32_t fw;
	fw = 0;
	eintr = 0;
	for (int i = 0; i < 5 && !eintr; i++) {
		hits = 0;
		arm(20000, 0);
		errno = 0;
		long fr = syscall(SYS_futex, &fw, FUTEX_WAIT_, 0, NULL, NULL, 0);
		eintr = fr == -1 && errno == EINTR && hits == 1;
	}
	ok(eintr, "FUTEX_WAIT interrupted by a handler without SA_RESTART: EINTR");
	/* With a timeout the restart would go through restart_syscall,
	 * which Linux only does when no handler ran: EINTR even with
	 * SA_RESTART (kernel/futex/waitwake.c:futex_wait()). */
	set_alrm(1);
	hits = 0;
	arm(5000, 5000);
	struct timespec fto = { 0, 100 * 1000 * 1000 };
	errno = 0;
	long fr2 = syscall(SYS_futex, &fw, FUTEX_WAIT_, 0, &fto, NULL, 0);
	int fe = errno;
	disarm();
	ok(fr2 == -1 && fe == EINTR, "FUTEX_WAIT with a timeout: EINTR after a handler even with SA_RESTART");
	ok(hits >= 1, "the timer interrupted the futex wait");

	/* A user-mode busy loop is interrupted (the timer is not deferred
	 * until the next system call). */
	hits = 0;
	arm(20000, 0);
	for (volatile long i = 0; i < 4000L * 1000 * 1000 && !hits; i++)
		;
	ok(hits == 1, "a timer signal interrupts a user-mode busy loop");
	tap_watchdog();
	return tap_done();
}

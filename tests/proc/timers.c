/*
 * timers.c - interval timers and POSIX timers: setitimer/getitimer
 * (REAL, VIRTUAL, PROF), alarm, timer_create/settime/gettime/getoverrun/
 * delete with SIGEV_SIGNAL, SIGEV_THREAD_ID and SIGEV_NONE, times and
 * getrusage.
 *
 * Linux: kernel/time/itimer.c, posix-timers.c, kernel/sys.c
 * (getrusage, times). POSIX timers are driven by raw syscalls with the
 * kernel's struct sigevent, so glibc and musl take the same path.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>

/* Linux: include/uapi/asm-generic/siginfo.h struct sigevent. */
struct ksigevent {
	union sigval value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};
#define SIGEV_THREAD_ID_ 4

static volatile int n_alrm, n_vt, n_prof, n_rt, rt_code, rt_val, rt_tid, rt_overrun;
static void on_sig(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	if (s == SIGALRM)
		n_alrm++;
	else if (s == SIGVTALRM)
		n_vt++;
	else if (s == SIGPROF)
		n_prof++;
	else {
		/* The count last: the main thread reads the other fields as
		 * soon as it sees it change. */
		rt_code = si->si_code;
		rt_val = si->si_value.sival_int;
		rt_tid = sys_gettid();
		rt_overrun = si->si_overrun;
		__atomic_fetch_add(&n_rt, 1, __ATOMIC_RELEASE);
	}
}

static void catch(int s)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(s, &sa, NULL);
}

static volatile uint64_t sink;
static void burn_until(volatile int *flag)
{
	for (long i = 0; i < 3000L * 1000 * 1000 / 1000 && !*flag; i++)
		for (int k = 0; k < 1000; k++)
			sink += k;
}

static void wait_flag(volatile int *flag)
{
	for (int i = 0; i < 3000 && !*flag; i++)
		usleep(1000);
}

static int mk_timer(clockid_t c, int notify, int signo, int val, pid_t tid)
{
	struct ksigevent ev;
	memset(&ev, 0, sizeof ev);
	ev.notify = notify;
	ev.signo = signo;
	ev.value.sival_int = val;
	ev.tid = tid;
	int id = -1;
	if (syscall(SYS_timer_create, c, &ev, &id) != 0)
		return -1;
	return id;
}

static long settime(int id, long first_ns, long interval_ns)
{
	struct itimerspec its = { { 0, interval_ns }, { first_ns / 1000000000, first_ns % 1000000000 } };
	return syscall(SYS_timer_settime, id, 0, &its, NULL);
}

static volatile pid_t thr_tid;
static volatile int thr_stop;
static void *idle_thread(void *a)
{
	(void)a;
	thr_tid = sys_gettid();
	while (!thr_stop)
		usleep(1000);
	return NULL;
}

int main(void)
{
	tap_init();
	catch(SIGALRM);
	catch(SIGVTALRM);
	catch(SIGPROF);
	catch(40);

	/* ITIMER_REAL. The remaining time is read from a 5 s timer, which
	 * cannot have expired by then however slow the machine. */
	struct itimerval it = { { 0, 0 }, { 5, 0 } }, cur;
	check_ok(setitimer(ITIMER_REAL, &it, NULL), "setitimer ITIMER_REAL 5 s");
	check_ok(getitimer(ITIMER_REAL, &cur), "getitimer ITIMER_REAL");
	ok(cur.it_value.tv_sec <= 5 && (cur.it_value.tv_sec > 0 || cur.it_value.tv_usec > 0), "getitimer shows the remaining time");
	it.it_value.tv_sec = 0;
	it.it_value.tv_usec = 50000;
	setitimer(ITIMER_REAL, &it, NULL);
	wait_flag(&n_alrm);
	check_eq(n_alrm, 1, "SIGALRM delivered by ITIMER_REAL");
	getitimer(ITIMER_REAL, &cur);
	ok(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0, "one-shot timer disarmed after expiry");
	/* Periodic */
	n_alrm = 0;
	it.it_interval.tv_usec = 10000;
	it.it_value.tv_usec = 10000;
	setitimer(ITIMER_REAL, &it, NULL);
	for (int i = 0; i < 3000 && n_alrm < 3; i++)
		usleep(1000);
	it.it_interval.tv_usec = it.it_value.tv_usec = 0;
	struct itimerval old;
	setitimer(ITIMER_REAL, &it, &old);
	ok(n_alrm >= 3, "periodic ITIMER_REAL fires repeatedly");
	check_eq(old.it_interval.tv_usec, 10000, "setitimer returns the old interval");

	/* CPU-time timers fire from a busy loop. */
	it.it_value.tv_usec = 20000;
	setitimer(ITIMER_VIRTUAL, &it, NULL);
	burn_until(&n_vt);
	check_eq(n_vt, 1, "ITIMER_VIRTUAL delivers SIGVTALRM after user CPU time");
	setitimer(ITIMER_PROF, &it, NULL);
	burn_until(&n_prof);
	check_eq(n_prof, 1, "ITIMER_PROF delivers SIGPROF after CPU time");
	check_err(syscall(SYS_setitimer, 7, &it, NULL), EINVAL, "setitimer bad which EINVAL");
	it.it_value.tv_usec = 1000000;
	check_err(setitimer(ITIMER_REAL, &it, NULL), EINVAL, "setitimer tv_usec 1e6 EINVAL");

	/* alarm */
	alarm(7); /* the watchdog, re-armed at 7 s */
	check_eq(alarm(0), 7, "alarm(0) returns the seconds left of the pending alarm");
	check_eq(alarm(5), 0, "alarm(5) with no alarm pending returns 0");
	check_eq(alarm(0), 5, "alarm(0) returns the seconds left (rounded up)");
	alarm(1);
	it.it_value.tv_usec = 0;
	getitimer(ITIMER_REAL, &cur);
	ok(cur.it_value.tv_sec <= 1 && (cur.it_value.tv_sec > 0 || cur.it_value.tv_usec > 0), "alarm is ITIMER_REAL");
	alarm(0);
	n_alrm = 0;
	struct itimerval short_it = { { 0, 0 }, { 0, 10000 } };
	setitimer(ITIMER_REAL, &short_it, NULL);
	wait_flag(&n_alrm);
	check_eq(n_alrm, 1, "SIGALRM handler runs");
	tap_watchdog();
	catch(SIGALRM);

	/* POSIX timer, SIGEV_SIGNAL */
	int id = mk_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, 40, 1234, 0);
	ok(id >= 0, "timer_create SIGEV_SIGNAL");
	struct itimerspec its;
	settime(id, 5000L * 1000 * 1000, 0);
	check_eq(syscall(SYS_timer_gettime, id, &its), 0, "timer_gettime");
	ok(its.it_value.tv_sec <= 5 && (its.it_value.tv_sec > 0 || its.it_value.tv_nsec > 0), "timer_gettime shows the time left");
	settime(id, 20 * 1000 * 1000, 0);
	wait_flag(&n_rt);
	ok(n_rt == 1 && rt_code == SI_TIMER && rt_val == 1234, "SIGEV_SIGNAL: SI_TIMER with the sigev_value");
	check_eq(syscall(SYS_timer_delete, id), 0, "timer_delete");
	check_err(syscall(SYS_timer_gettime, id, &its), EINVAL, "timer_gettime on a deleted timer EINVAL");

	/* Overruns while the signal is blocked. */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, 40);
	sigprocmask(SIG_BLOCK, &s, NULL);
	id = mk_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, 40, 5, 0);
	settime(id, 1000 * 1000, 1000 * 1000);
	usleep(60000);
	siginfo_t si;
	struct timespec to = { 2, 0 };
	int got = sigtimedwait(&s, &si, &to);
	long ovr = syscall(SYS_timer_getoverrun, id);
	settime(id, 0, 0);
	ok(got == 40 && si.si_code == SI_TIMER && si.si_overrun >= 5, "periodic timer with blocked signal: one signal, overruns counted");
	ok(ovr >= 5, "timer_getoverrun reports the overrun");
	syscall(SYS_timer_delete, id);
	sigprocmask(SIG_UNBLOCK, &s, NULL);

	/* SIGEV_THREAD_ID: delivered to the chosen thread. */
	pthread_t th;
	pthread_create(&th, NULL, idle_thread, NULL);
	while (!thr_tid)
		usleep(1000);
	n_rt = 0;
	id = mk_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL | SIGEV_THREAD_ID_, 40, 9, thr_tid);
	ok(id >= 0, "timer_create SIGEV_THREAD_ID");
	settime(id, 10 * 1000 * 1000, 0);
	wait_flag(&n_rt);
	ok(n_rt == 1 && rt_tid == thr_tid && rt_val == 9, "SIGEV_THREAD_ID: delivered on the target thread");
	syscall(SYS_timer_delete, id);
	thr_stop = 1;
	pthread_join(th, NULL);
	ok(mk_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL | SIGEV_THREAD_ID_, 40, 9, 0x3ffffff0) < 0 && errno == EINVAL,
	   "SIGEV_THREAD_ID to a nonexistent thread EINVAL");

	/* SIGEV_NONE: counts down silently. */
	n_rt = 0;
	id = mk_timer(CLOCK_MONOTONIC, SIGEV_NONE, 40, 0, 0);
	settime(id, 5000L * 1000 * 1000, 0);
	syscall(SYS_timer_gettime, id, &its);
	ok(its.it_value.tv_sec > 0 || its.it_value.tv_nsec > 0, "SIGEV_NONE timer is armed");
	settime(id, 10 * 1000 * 1000, 0);
	usleep(30000);
	syscall(SYS_timer_gettime, id, &its);
	ok(its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0 && n_rt == 0, "SIGEV_NONE expired without a signal");
	syscall(SYS_timer_delete, id);

	/* Errors. */
	ok(mk_timer((clockid_t)77, SIGEV_SIGNAL, 40, 0, 0) < 0 && errno == EINVAL, "timer_create unknown clock EINVAL");
	ok(mk_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, 99, 0, 0) < 0 && errno == EINVAL, "timer_create bad signal EINVAL");
	ok(mk_timer(CLOCK_MONOTONIC, 77, 40, 0, 0) < 0 && errno == EINVAL, "timer_create bad notify EINVAL");
	check_err(settime(12345, 1000, 0), EINVAL, "timer_settime unknown id EINVAL");
	check_err(syscall(SYS_timer_delete, 12345), EINVAL, "timer_delete unknown id EINVAL");

	/* times and getrusage */
	struct tms tm0, tm1;
	clock_t c0 = times(&tm0);
	pid_t p = tap_fork();
	if (p == 0) {
		struct timespec a, b;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
		do {
			for (int k = 0; k < 1000; k++)
				sink += k;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
		} while ((b.tv_sec - a.tv_sec) * 1000000000L + b.tv_nsec - a.tv_nsec < 60 * 1000 * 1000);
		_exit(0);
	}
	tap_wait(p);
	clock_t c1 = times(&tm1);
	ok(c1 >= c0, "times() return value does not go backwards");
	ok(tm1.tms_cutime + tm1.tms_cstime >= tm0.tms_cutime + tm0.tms_cstime + 3, "times: waited child's CPU time in tms_cutime+cstime");
	struct rusage ru;
	check_ok(getrusage(RUSAGE_SELF, &ru), "getrusage RUSAGE_SELF");
	ok(ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec > 0, "RUSAGE_SELF user time is non-zero after work");
	ok(ru.ru_maxrss > 0, "ru_maxrss non-zero");
	check_ok(getrusage(RUSAGE_CHILDREN, &ru), "getrusage RUSAGE_CHILDREN");
	ok(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec >= 30000,
	   "RUSAGE_CHILDREN includes the waited child");
	check_ok(getrusage(RUSAGE_THREAD, &ru), "getrusage RUSAGE_THREAD");
	check_err(getrusage(7, &ru), EINVAL, "getrusage bad who EINVAL");
	return tap_done();
}

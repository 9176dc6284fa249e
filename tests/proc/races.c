/*
 * races.c - the process model under concurrency: a signal storm against a
 * blocking syscall, SIGKILL of a (stopping or stopped) multi-threaded
 * group, a leader that exits while its threads live on, vfork's parent
 * blocked until the child execs or exits, exit_group and exec against
 * busy and blocked threads, concurrent forks, and many children exiting at
 * once.
 *
 * Every case is repeated a few times and ordered by pipes or wait, never
 * by sleeps, so a lost race shows as a wrong answer, not a flake.
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <pthread.h>

static const char *self;
static volatile int hits;
static void on_usr1(int s) { (void)s; hits++; }

static int rp[2];
static volatile int reader_result;
static volatile pid_t reader_tid;
static void *blocked_reader(void *a)
{
	(void)a;
	char b;
	reader_tid = sys_gettid();
	errno = 0;
	ssize_t r = read(rp[0], &b, 1);
	reader_result = (r == -1 && errno == EINTR) ? 1 : 2;
	return NULL;
}

static void *spinner(void *a)
{
	(void)a;
	for (volatile long i = 0;; i++)
		;
	return NULL;
}

static void *sleeper(void *a)
{
	(void)a;
	for (;;)
		pause();
	return NULL;
}

static volatile uint32_t never;
static void *futex_sleeper(void *a)
{
	(void)a;
	for (;;)
		sys_futex(&never, FUTEX_WAIT_, 0, NULL, NULL, 0);
	return NULL;
}

static int done_pipe[2];
static void *late_finisher(void *a)
{
	int k = (int)(intptr_t)a;
	struct timespec ts = { 0, (k + 1) * 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	write(done_pipe[1], "t", 1);
	pthread_exit(NULL);
}

static void *forker(void *a)
{
	(void)a;
	int good = 0;
	for (int i = 0; i < 10; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(i);
		int st;
		if (waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == i)
			good++;
	}
	return (void *)(intptr_t)good;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exit7") == 0)
		return 7;
	tap_init();
	self = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];
	int ok_count;

	/* Signal storm against a thread blocked in read: EINTR each time. */
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t blk;
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	pipe(rp);
	ok_count = 0;
	for (int i = 0; i < 20; i++) {
		pthread_t t;
		reader_result = 0;
		reader_tid = 0;
		pthread_create(&t, NULL, blocked_reader, NULL);
		while (!reader_tid)
			sched_yield();
		for (int k = 0; k < 100000 && !reader_result; k++) {
			sys_tgkill(getpid(), reader_tid, SIGUSR1);
			usleep(100);
		}
		pthread_join(t, NULL);
		if (reader_result == 1)
			ok_count++;
	}
	check_eq(ok_count, 20, "signal storm: a blocked read returns EINTR, 20 times out of 20");

	/* SIGKILL of a stopped and of a stopping multi-threaded group. */
	ok_count = 0;
	for (int i = 0; i < 10; i++) {
		int rd[2];
		pipe(rd);
		pid_t p = tap_fork();
		if (p == 0) {
			pthread_t t;
			for (int k = 0; k < 3; k++)
				pthread_create(&t, NULL, k ? sleeper : spinner, NULL);
			write(rd[1], "r", 1);
			for (;;)
				pause();
		}
		char rb;
		read(rd[0], &rb, 1); /* the threads exist */
		close(rd[0]);
		close(rd[1]);
		int st;
		if (i & 1) {
			kill(p, SIGSTOP);
			waitpid(p, &st, WUNTRACED);
		} else {
			kill(p, SIGSTOP); /* do not wait: kill it mid-stop */
		}
		kill(p, SIGKILL);
		if (tap_wait(p) == 1000 + SIGKILL)
			ok_count++;
	}
	check_eq(ok_count, 10, "SIGKILL of a stopped or stopping threaded group, 10 times");

	/* The leader exits first with pthread_exit; the group lives on until
	 * the last thread, and wait sees it only then. */
	pipe(done_pipe);
	pid_t p = tap_fork();
	if (p == 0) {
		pthread_t t;
		for (int k = 0; k < 3; k++)
			pthread_create(&t, NULL, late_finisher, (void *)(intptr_t)k);
#ifdef __GLIBC__
		pthread_exit(NULL);
#else
		/* musl 1.2.3's fork does not re-register the main thread's
		 * clear_child_tid, so its pthread_exit from a forked child's
		 * main thread leaves the thread-list lock held forever: exit
		 * the leader with the bare syscall instead. */
		syscall(SYS_exit, 0);
#endif
	}
	close(done_pipe[1]);
	check_eq(tap_wait(p), 0, "leader exits first: process exits 0 after the last thread");
	fcntl(done_pipe[0], F_SETFL, O_NONBLOCK);
	char buf[8];
	check_eq(read(done_pipe[0], buf, sizeof buf), 3, "all three threads ran after the leader had gone");
	close(done_pipe[0]);

	/* vfork: the parent resumes only once the child has exec'd or
	 * exited, and sees what it wrote before. */
	volatile int shared = 0;
	p = vfork();
	if (p == 0) {
		shared = 1;
		struct timespec ts = { 0, 30 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		shared = 2;
		char *av[] = { (char *)self, "exit7", NULL };
		execve(self, av, (char *[]){ NULL });
		_exit(99);
	}
	check_eq(shared, 2, "vfork: parent blocked until the child exec'd");
	check_eq(tap_wait(p), 7, "vfork child's exec'd image exit status");
	shared = 0;
	p = vfork();
	if (p == 0) {
		struct timespec ts = { 0, 30 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		shared = 3;
		_exit(4);
	}
	check_eq(shared, 3, "vfork: parent blocked until the child exited");
	check_eq(tap_wait(p), 4, "vfork child exit status");

	/* exit_group against spinning threads, and exec against blocked ones. */
	ok_count = 0;
	for (int i = 0; i < 10; i++) {
		p = tap_fork();
		if (p == 0) {
			pthread_t t;
			for (int k = 0; k < 4; k++)
				pthread_create(&t, NULL, spinner, NULL);
			exit(5);
		}
		if (tap_wait(p) == 5)
			ok_count++;
	}
	check_eq(ok_count, 10, "exit with 4 spinning threads: status 5, 10 times");
	ok_count = 0;
	for (int i = 0; i < 5; i++) {
		p = tap_fork();
		if (p == 0) {
			pthread_t t;
			pthread_create(&t, NULL, futex_sleeper, NULL);
			pthread_create(&t, NULL, sleeper, NULL);
			pthread_create(&t, NULL, spinner, NULL);
			char *av[] = { (char *)self, "exit7", NULL };
			execve(self, av, (char *[]){ NULL });
			_exit(99);
		}
		if (tap_wait(p) == 7)
			ok_count++;
	}
	check_eq(ok_count, 5, "exec with blocked and spinning threads: they die, the image runs, 5 times");

	/* Concurrent forks from four threads. */
	pthread_t ft[4];
	long total = 0;
	fflush(stdout);
	for (int i = 0; i < 4; i++)
		pthread_create(&ft[i], NULL, forker, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(ft[i], &r);
		total += (intptr_t)r;
	}
	check_eq(total, 40, "four threads fork and reap 10 children each");

	/* Many children exiting at once, reaped by wait(-1). */
	int go[2];
	pipe(go);
	for (int i = 0; i < 20; i++) {
		p = tap_fork();
		if (p == 0) {
			char b;
			close(go[1]);
			read(go[0], &b, 1);
			_exit(100 + i);
		}
	}
	close(go[0]);
	close(go[1]); /* releases all twenty at once */
	int seen[20] = { 0 }, reaped = 0, st;
	while ((p = wait(&st)) > 0) {
		int code = WEXITSTATUS(st) - 100;
		if (code >= 0 && code < 20 && !seen[code]) {
			seen[code] = 1;
			reaped++;
		}
	}
	check_eq(reaped, 20, "twenty simultaneous exits all reaped with their own status");
	check_eq(errno, ECHILD, "then ECHILD");
	return tap_done();
}

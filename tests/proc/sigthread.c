/*
 * sigthread.c - signals in a multi-threaded process: per-thread masks,
 * process-directed signals going to a thread that does not block them,
 * thread-directed signals pending on one thread only, sigwait in a
 * dedicated thread, mask inheritance by new threads, and whole-group
 * actions (SIGKILL, a fault, a stop) triggered through one thread.
 *
 * Linux: kernel/signal.c (complete_signal, wants_signal, __send_signal:
 * shared_pending vs pending), signal(7) "Signal mask and pending signals".
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>

static volatile pid_t handler_tid;
static volatile int handled;
static void on_sig(int s)
{
	(void)s;
	handler_tid = sys_gettid();
	handled++;
}

/* A worker that runs commands from main, one at a time. */
enum { W_IDLE, W_PENDING_USR2, W_SIGWAIT, W_MASK_HAS_USR2, W_QUIT };
static volatile int cmd, result, worker_ready;
static volatile pid_t worker_tid;

static void *worker(void *a)
{
	(void)a;
	worker_tid = sys_gettid();
	worker_ready = 1;
	for (;;) {
		int c = cmd;
		if (c == W_IDLE) {
			usleep(500);
			continue;
		}
		sigset_t s;
		switch (c) {
		case W_PENDING_USR2:
			sigpending(&s);
			result = sigismember(&s, SIGUSR2);
			break;
		case W_SIGWAIT: {
			int got = 0;
			sigemptyset(&s);
			sigaddset(&s, SIGUSR2);
			sigwait(&s, &got);
			result = got;
			break;
		}
		case W_MASK_HAS_USR2:
			pthread_sigmask(SIG_BLOCK, NULL, &s);
			result = sigismember(&s, SIGUSR2);
			break;
		case W_QUIT:
			__atomic_store_n(&cmd, W_IDLE, __ATOMIC_SEQ_CST);
			return NULL;
		}
		__atomic_store_n(&cmd, W_IDLE, __ATOMIC_SEQ_CST);
	}
}

static int run_cmd(int c)
{
	result = -1;
	__atomic_store_n(&cmd, c, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 10000 && cmd != W_IDLE; i++)
		usleep(500);
	return result;
}

static void *faulter(void *a)
{
	(void)a;
	*(volatile int *)(uintptr_t)a = 1; /* a is NULL */
	return NULL;
}
static void *sleeper(void *a)
{
	(void)a;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	tap_init();
	signal(SIGUSR1, on_sig);
	sigset_t s1, s2;
	sigemptyset(&s1);
	sigaddset(&s1, SIGUSR1);
	sigemptyset(&s2);
	sigaddset(&s2, SIGUSR2);

	/* The worker is created while main blocks SIGUSR2 (inherited), and
	 * then main also blocks SIGUSR1. */
	pthread_sigmask(SIG_BLOCK, &s2, NULL);
	pthread_t w;
	pthread_create(&w, NULL, worker, NULL);
	while (!worker_ready)
		usleep(500);
	check_eq(run_cmd(W_MASK_HAS_USR2), 1, "a new thread inherits its creator's mask");
	pthread_sigmask(SIG_BLOCK, &s1, NULL);

	/* Process-directed SIGUSR1: main blocks it, the worker does not. */
	handled = 0;
	kill(getpid(), SIGUSR1);
	for (int i = 0; i < 10000 && !handled; i++)
		usleep(500);
	check_eq(handler_tid, worker_tid, "process-directed signal handled by the thread that does not block it");
	sigset_t p;
	sigpending(&p);
	check_eq(sigismember(&p, SIGUSR1), 0, "and it is not left pending for main");

	/* Thread-directed SIGUSR2 at the worker (which blocks it). */
	sys_tgkill(getpid(), worker_tid, SIGUSR2);
	check_eq(run_cmd(W_PENDING_USR2), 1, "tgkill'd blocked signal is pending for the target thread");
	sigpending(&p);
	check_eq(sigismember(&p, SIGUSR2), 0, "but not for another thread");
	check_eq(run_cmd(W_SIGWAIT), SIGUSR2, "the target thread collects it with sigwait");

	/* Process-directed while every thread blocks it: shared pending. */
	kill(getpid(), SIGUSR2);
	sigpending(&p);
	check_eq(sigismember(&p, SIGUSR2), 1, "process-directed, blocked everywhere: pending for main");
	check_eq(run_cmd(W_PENDING_USR2), 1, "and pending for the worker too (shared)");
	check_eq(run_cmd(W_SIGWAIT), SIGUSR2, "any thread can collect it with sigwait");
	sigpending(&p);
	check_eq(sigismember(&p, SIGUSR2), 0, "collected once, gone for all");
	run_cmd(W_QUIT);
	pthread_join(w, NULL);
	pthread_sigmask(SIG_UNBLOCK, &s1, NULL);
	pthread_sigmask(SIG_UNBLOCK, &s2, NULL);

	/* Whole-group actions triggered through one thread. */
	pid_t c = tap_fork();
	if (c == 0) {
		pthread_t t;
		pthread_create(&t, NULL, faulter, NULL);
		for (;;)
			pause();
	}
	check_eq(tap_wait(c), 1000 + SIGSEGV, "a fault in a non-leader thread kills the whole process");

	int rd[2];
	pipe(rd);
	c = tap_fork();
	if (c == 0) {
		pthread_t t;
		pthread_create(&t, NULL, sleeper, NULL);
		char b = 'r';
		write(rd[1], &b, 1);
		for (;;)
			pause();
	}
	char b;
	read(rd[0], &b, 1);
	/* The child's main thread has tid == pid; SIGSTOP to it stops all. */
	sys_tgkill(c, c, SIGSTOP);
	int st;
	waitpid(c, &st, WUNTRACED);
	ok(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "tgkill SIGSTOP to one thread stops the group");
	sys_tgkill(c, c, SIGCONT);
	waitpid(c, &st, WCONTINUED);
	ok(WIFCONTINUED(st), "tgkill SIGCONT to one thread continues the group");
	sys_tgkill(c, c, SIGKILL);
	check_eq(tap_wait(c), 1000 + SIGKILL, "tgkill SIGKILL to one thread kills the group");

	/* A SIGTERM handled in a thread, with exit from the handler. */
	c = tap_fork();
	if (c == 0) {
		pthread_sigmask(SIG_BLOCK, &s1, NULL);
		pthread_t t;
		pthread_create(&t, NULL, sleeper, NULL); /* inherits the block */
		pthread_sigmask(SIG_UNBLOCK, &s1, NULL);
		struct sigaction sa = { 0 };
		sa.sa_handler = (void (*)(int))_exit;
		sigaction(SIGUSR1, &sa, NULL);
		write(rd[1], "r", 1);
		for (;;)
			pause();
	}
	read(rd[0], &b, 1);
	kill(c, SIGUSR1);
	check_eq(tap_wait(c), SIGUSR1, "a handler calling _exit ends the process with its argument");
	return tap_done();
}

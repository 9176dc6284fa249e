/*
 * futex_pingpong.c - two threads hand a turn back and forth with
 * FUTEX_WAKE and FUTEX_WAIT on two words, argv[1] (default 20000) times;
 * mean ns per round trip.
 */
#include "bench.h"
#include <pthread.h>
#include <stdatomic.h>

/* <linux/futex.h> values (musl ships no kernel headers). */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static _Atomic int turn;
static long rounds;

static void fwait(_Atomic int *w, int v) { syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0); }
static void fwake(_Atomic int *w) { syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *pong(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		while (atomic_load(&turn) != 1)
			fwait(&turn, 0);
		atomic_store(&turn, 0);
		fwake(&turn);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = iterations(argc, argv, 20000);
	alarm(600);
	pthread_t t;
	if (pthread_create(&t, NULL, pong, NULL))
		die("pthread_create");
	int64_t t0 = now_ns();
	for (long i = 0; i < rounds; i++) {
		atomic_store(&turn, 1);
		fwake(&turn);
		while (atomic_load(&turn) != 0)
			fwait(&turn, 1);
	}
	int64_t t1 = now_ns();
	pthread_join(t, NULL);
	printf("futex_pingpong: %ld round trips, %.0f ns/round trip\n", rounds, (double)(t1 - t0) / (double)rounds);
	return 0;
}

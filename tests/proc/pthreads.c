/*
 * pthreads.c - the libc thread library on the kernel's threads and
 * futexes: 8 threads under a contended mutex, condition variables in a
 * bounded producer/consumer queue, barriers, rwlocks, a raw futex lock,
 * timed waits, thread-local storage, key destructors, pthread_kill,
 * detached threads, and exit values through join.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <time.h>

#define NT 8
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *bump(void *a)
{
	(void)a;
	for (int i = 0; i < 2000; i++) {
		pthread_mutex_lock(&mu);
		counter++;
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

/* A bounded queue: 4 producers, 4 consumers. */
#define QN 16
static int q[QN], qh, qt, qcount, produced_done;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static long consumed_sum;
static void *producer(void *a)
{
	int base = (int)(intptr_t)a * 1000;
	for (int i = 1; i <= 1000; i++) {
		pthread_mutex_lock(&mu);
		while (qcount == QN)
			pthread_cond_wait(&not_full, &mu);
		q[qt] = base + i;
		qt = (qt + 1) % QN;
		qcount++;
		pthread_cond_signal(&not_empty);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}
static void *consumer(void *a)
{
	(void)a;
	long sum = 0;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (qcount == 0 && !produced_done)
			pthread_cond_wait(&not_empty, &mu);
		if (qcount == 0 && produced_done) {
			pthread_mutex_unlock(&mu);
			break;
		}
		sum += q[qh];
		qh = (qh + 1) % QN;
		qcount--;
		pthread_cond_signal(&not_full);
		pthread_mutex_unlock(&mu);
	}
	pthread_mutex_lock(&mu);
	consumed_sum += sum;
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Barrier rounds: every thread writes its slot, the barrier, then every
 * thread checks all slots of the round. */
static pthread_barrier_t bar;
static int slots[NT];
static volatile int barrier_bad;
static void *barrier_rounds(void *a)
{
	int me = (int)(intptr_t)a;
	for (int r = 1; r <= 50; r++) {
		slots[me] = r;
		pthread_barrier_wait(&bar);
		for (int k = 0; k < NT; k++)
			if (slots[k] != r)
				barrier_bad = 1;
		pthread_barrier_wait(&bar);
	}
	return NULL;
}

/* A raw futex lock (Drepper's "mutex2"), contended by 8 threads. */
static volatile uint32_t flock_word;
static long flock_counter;
static void flock_lock(void)
{
	uint32_t c = 0;
	if (__atomic_compare_exchange_n(&flock_word, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(&flock_word, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		sys_futex(&flock_word, FUTEX_WAIT_ | FUTEX_PRIVATE_, 2, NULL, NULL, 0);
		c = __atomic_exchange_n(&flock_word, 2, __ATOMIC_ACQUIRE);
	}
}
static void flock_unlock(void)
{
	if (__atomic_fetch_sub(&flock_word, 1, __ATOMIC_RELEASE) != 1) {
		flock_word = 0;
		sys_futex(&flock_word, FUTEX_WAKE_ | FUTEX_PRIVATE_, 1, NULL, NULL, 0);
	}
}
static void *flock_bump(void *a)
{
	(void)a;
	for (int i = 0; i < 2000; i++) {
		flock_lock();
		flock_counter++;
		flock_unlock();
	}
	return NULL;
}

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long rw_value[2];
static volatile int rw_torn;
static void *rw_worker(void *a)
{
	int writer = (int)(intptr_t)a & 1;
	for (int i = 0; i < 2000; i++) {
		if (writer) {
			pthread_rwlock_wrlock(&rw);
			rw_value[0]++;
			rw_value[1]++;
			pthread_rwlock_unlock(&rw);
		} else {
			pthread_rwlock_rdlock(&rw);
			if (rw_value[0] != rw_value[1])
				rw_torn = 1;
			pthread_rwlock_unlock(&rw);
		}
	}
	return NULL;
}

static __thread int tls_var = 7;
static void *tls_worker(void *a)
{
	int me = (int)(intptr_t)a;
	if (tls_var != 7)
		return (void *)1;
	tls_var = 100 + me;
	sched_yield();
	return (void *)(intptr_t)(tls_var == 100 + me ? 0 : 2);
}

static pthread_key_t key;
static volatile int destructed;
static void destructor(void *v)
{
	__atomic_add_fetch(&destructed, (int)(intptr_t)v, __ATOMIC_SEQ_CST);
}
static void *key_worker(void *a)
{
	pthread_setspecific(key, a);
	return NULL;
}

static void *exit_value(void *a)
{
	if ((intptr_t)a & 1)
		pthread_exit((void *)((intptr_t)a * 10));
	return (void *)((intptr_t)a * 10);
}

static volatile int got_usr1;
static volatile pid_t usr1_tid;
static void on_usr1(int s) { (void)s; usr1_tid = sys_gettid(); got_usr1 = 1; }
static volatile pid_t waiter_tid;
static void *signal_target(void *a)
{
	(void)a;
	waiter_tid = sys_gettid();
	while (!got_usr1)
		usleep(1000);
	return NULL;
}

static int detached_done;
static pthread_cond_t det_cv = PTHREAD_COND_INITIALIZER;
static void *detached(void *a)
{
	(void)a;
	pthread_mutex_lock(&mu);
	detached_done++;
	pthread_cond_signal(&det_cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void once_fn(void) { once_runs++; }
static void *once_worker(void *a) { (void)a; pthread_once(&once, once_fn); return NULL; }

static void run_all(void *(*fn)(void *), int n, void **res)
{
	pthread_t t[NT];
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], res ? &res[i] : NULL);
}

int main(void)
{
	tap_init();
	void *res[NT];

	run_all(bump, NT, NULL);
	check_eq(counter, NT * 2000, "8 threads x 2000 increments under a contended mutex");

	pthread_t pt[4], ct[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&ct[i], NULL, consumer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_create(&pt[i], NULL, producer, (void *)(intptr_t)i);
	for (int i = 0; i < 4; i++)
		pthread_join(pt[i], NULL);
	pthread_mutex_lock(&mu);
	produced_done = 1;
	pthread_cond_broadcast(&not_empty);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 4; i++)
		pthread_join(ct[i], NULL);
	long want = 0;
	for (int p = 0; p < 4; p++)
		for (int i = 1; i <= 1000; i++)
			want += p * 1000 + i;
	check_eq(consumed_sum, want, "condvar queue: 4 producers, 4 consumers, every item once");

	pthread_barrier_init(&bar, NULL, NT);
	run_all(barrier_rounds, NT, NULL);
	check_eq(barrier_bad, 0, "50 barrier rounds across 8 threads");
	pthread_barrier_destroy(&bar);

	run_all(flock_bump, NT, NULL);
	check_eq(flock_counter, NT * 2000, "raw futex lock: 8 threads x 2000 increments");

	run_all(rw_worker, NT, NULL);
	ok(!rw_torn && rw_value[0] == 4 * 2000, "rwlock: readers never see a torn update");

	run_all(tls_worker, NT, res);
	int tls_ok = 1;
	for (int i = 0; i < NT; i++)
		if (res[i])
			tls_ok = 0;
	ok(tls_ok && tls_var == 7, "__thread variables are per thread and start at their initializer");

	pthread_key_create(&key, destructor);
	run_all(key_worker, NT, NULL);
	check_eq(destructed, 0 + 1 + 2 + 3 + 4 + 5 + 6 + 7, "key destructors run at thread exit with the thread's value");

	run_all(exit_value, NT, res);
	int ev_ok = 1;
	for (int i = 0; i < NT; i++)
		if (res[i] != (void *)(intptr_t)(i * 10))
			ev_ok = 0;
	ok(ev_ok, "join returns the value of return and of pthread_exit");

	signal(SIGUSR1, on_usr1);
	pthread_t st;
	pthread_create(&st, NULL, signal_target, NULL);
	while (!waiter_tid)
		usleep(1000);
	pthread_kill(st, SIGUSR1);
	pthread_join(st, NULL);
	check_eq(usr1_tid, waiter_tid, "pthread_kill runs the handler on the target thread");

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < NT; i++) {
		pthread_t d;
		pthread_create(&d, &attr, detached, NULL);
	}
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	pthread_mutex_lock(&mu);
	while (detached_done < NT)
		if (pthread_cond_timedwait(&det_cv, &mu, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&mu);
	check_eq(detached_done, NT, "8 detached threads ran to completion");

	run_all(once_worker, NT, NULL);
	check_eq(once_runs, 1, "pthread_once runs once across 8 threads");

	pthread_mutex_lock(&mu);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += 20 * 1000 * 1000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	check_eq(pthread_cond_timedwait(&det_cv, &mu, &dl), ETIMEDOUT, "pthread_cond_timedwait times out");
	check_eq(pthread_mutex_trylock(&mu), EBUSY, "trylock of a held mutex EBUSY");
	pthread_mutex_unlock(&mu);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_t em;
	pthread_mutex_init(&em, &ma);
	pthread_mutex_lock(&em);
	check_eq(pthread_mutex_lock(&em), EDEADLK, "error-checking mutex relock EDEADLK");
	pthread_mutex_unlock(&em);
	check_eq(pthread_mutex_unlock(&em), EPERM, "error-checking mutex unlock when not owner EPERM");
	return tap_done();
}

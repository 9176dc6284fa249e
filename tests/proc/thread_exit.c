/*
 * thread_exit.c - thread death: CHILD_CLEARTID wake, robust futex lists,
 * exit vs exit_group, and a thread-group leader that exits first.
 *
 * Linux: kernel/fork.c:mm_release() (clear_child_tid), kernel/futex/core.c:
 * exit_robust_list(), kernel/exit.c:do_exit()/wait_task_zombie()
 * (delay_group_leader).
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>

/* Linux: include/uapi/linux/futex.h struct robust_list_head. */
struct robust_list_ {
	struct robust_list_ *next;
};
struct robust_head_ {
	struct robust_list_ list;
	long futex_offset;
	struct robust_list_ *list_op_pending;
};

/* A robust lock: the list node followed by the futex word. */
struct rlock {
	struct robust_list_ node;
	volatile uint32_t word;
};

static void futex_wait_zero(volatile uint32_t *w)
{
	struct timespec ts = { 5, 0 };
	for (int i = 0; i < 100 && *w; i++)
		sys_futex(w, FUTEX_WAIT_, *w, &ts, NULL, 0);
}

/* die_holding registers a private robust list naming lk as held by the
 * caller, then exits the thread or process without releasing it. */
static struct robust_head_ child_head;
static void die_holding(struct rlock *lk, int whole_process)
{
	child_head.list.next = &lk->node;
	lk->node.next = &child_head.list;
	child_head.futex_offset = offsetof(struct rlock, word);
	child_head.list_op_pending = NULL;
	lk->word = (uint32_t)sys_gettid();
	syscall(SYS_set_robust_list, &child_head, sizeof child_head);
	syscall(whole_process ? SYS_exit_group : SYS_exit, 0);
}

static struct rlock *thread_lock;
static int robust_thread(void *a)
{
	(void)a;
	die_holding(thread_lock, 0);
	return 0;
}

static pthread_mutex_t rmtx;
static void *hold_and_exit(void *a)
{
	(void)a;
	pthread_mutex_lock(&rmtx);
	return NULL; /* dies holding it */
}

static volatile uint32_t leader_word;
static int to_parent[2], to_child[2];
static int survivor(void *a)
{
	(void)a;
	futex_wait_zero(&leader_word);
	char b = leader_word == 0 ? 'L' : 'x';
	b = (getpid() == *(pid_t *)a) ? b : 'p';
	write(to_parent[1], &b, 1);
	read(to_child[0], &b, 1);
	syscall(SYS_exit, 33);
	return 0;
}

static volatile int just_ran;
static int just_exit(void *a)
{
	(void)a;
	just_ran = 1;
	syscall(SYS_exit, 0);
	return 0;
}

int main(void)
{
	tap_init();

	/* Robust list of a thread: the kernel marks OWNER_DIED and wakes. */
	thread_lock = calloc(1, sizeof *thread_lock);
	pthread_t t;
	struct raw_thread rt;
	raw_spawn(&rt, robust_thread, NULL);
	check_eq(raw_join(&rt), 0, "raw thread exits, CLEARTID wakes us");
	uint32_t w = thread_lock->word;
	ok(w & FUTEX_OWNER_DIED_, "robust list: OWNER_DIED set at thread death");
	check_eq(w & FUTEX_TID_MASK_, 0, "robust list: owner tid cleared");

	/* Robust list of a process over a MAP_SHARED lock. */
	struct rlock *slk = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t p = tap_fork();
	if (p == 0)
		die_holding(slk, 1);
	check_eq(tap_wait(p), 0, "robust child exits");
	ok(slk->word & FUTEX_OWNER_DIED_, "robust list: OWNER_DIED set at process death (shared)");

	/* A word not holding the dying tid is left alone. */
	memset(slk, 0, sizeof *slk);
	p = tap_fork();
	if (p == 0) {
		child_head.list.next = &slk->node;
		slk->node.next = &child_head.list;
		child_head.futex_offset = offsetof(struct rlock, word);
		slk->word = 12345; /* someone else's tid */
		syscall(SYS_set_robust_list, &child_head, sizeof child_head);
		_exit(0);
	}
	tap_wait(p);
	check_eq(slk->word, 12345, "robust list: other owner's word untouched");

	/* get_robust_list/set_robust_list. - get_robust_list(2) */
	void *head = NULL;
	size_t len = 0;
	check_ok(syscall(SYS_get_robust_list, 0, &head, &len), "get_robust_list(self)");
	check_eq(len, sizeof(struct robust_head_), "robust list head size is 24");
	check_err(syscall(SYS_set_robust_list, head, 23), EINVAL, "set_robust_list bad len EINVAL");
	check_err(syscall(SYS_get_robust_list, 0x3ffffff0, &head, &len), ESRCH, "get_robust_list nonexistent ESRCH");

	/* The libc robust mutex built on it. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&rmtx, &ma);
	pthread_create(&t, NULL, hold_and_exit, NULL);
	pthread_join(t, NULL);
	int r = pthread_mutex_lock(&rmtx);
	check_eq(r, EOWNERDEAD, "robust pthread mutex: EOWNERDEAD after holder died");
	pthread_mutex_consistent(&rmtx);
	pthread_mutex_unlock(&rmtx);

	/* SYS_exit of a non-leader thread: the process lives on. */
	raw_spawn(&rt, just_exit, NULL);
	raw_join(&rt);
	ok(just_ran && rt.ctid == 0, "SYS_exit of a thread leaves the process running");

	/* The leader exits first: the group is not waitable until the last
	 * thread exits, and the status is the leader's exit code. */
	if (pipe(to_parent) || pipe(to_child))
		return 1;
	p = tap_fork();
	if (p == 0) {
		static pid_t me;
		me = getpid();
		leader_word = 1;
		syscall(SYS_set_tid_address, &leader_word);
		raw_spawn(&rt, survivor, &me);
		syscall(SYS_exit, 5);
	}
	char b = 0;
	read(to_parent[0], &b, 1);
	check_eq(b, 'L', "survivor sees the leader's CLEARTID and the same pid");
	int st;
	check_eq(waitpid(p, &st, WNOHANG), 0, "group with a dead leader and a live thread is not waitable");
	check_eq(kill(p, 0), 0, "kill(pid, 0) still finds the group");
	write(to_child[1], "g", 1);
	/* Recent Linux has the last thread to exit set the group's code
	 * (kernel/exit.c:synchronize_group_exit(); measured on 6.18). */
	check_eq(tap_wait(p), 33, "wait sees the group after the last thread, with that thread's code");

	/* tgkill on a dead thread or a mismatched group. */
	p = tap_fork();
	if (p == 0)
		_exit(0);
	tap_wait(p); /* p is now an id no task of ours holds */
	check_err(sys_tgkill(getpid(), p, 0), ESRCH, "tgkill of a dead tid ESRCH");
	check_err(sys_tgkill(getpid() + 0x100000, sys_gettid(), 0), ESRCH, "tgkill with the wrong tgid ESRCH");
	check_eq(sys_tgkill(getpid(), sys_gettid(), 0), 0, "tgkill(self, self, 0) succeeds");
	return tap_done();
}

/*
 * abi.h - Linux ABI constants and raw syscall wrappers for the process-model
 * suite.
 *
 * musl's headers do not ship the linux/ UAPI headers, and neither libc wraps every call
 * the suite needs (futex, tgkill, clone3, pidfd_open...), so the values are
 * spelled here once, from the kernel's UAPI headers
 * (include/uapi/linux/futex.h, sched.h, capability.h, wait.h).
 */
#ifndef RINGBOX_TESTS_PROC_ABI_H
#define RINGBOX_TESTS_PROC_ABI_H

#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Linux: include/uapi/linux/futex.h */
#define FUTEX_WAIT_ 0
#define FUTEX_WAKE_ 1
#define FUTEX_REQUEUE_ 3
#define FUTEX_CMP_REQUEUE_ 4
#define FUTEX_WAKE_OP_ 5
#define FUTEX_WAIT_BITSET_ 9
#define FUTEX_WAKE_BITSET_ 10
#define FUTEX_PRIVATE_ 128
#define FUTEX_CLOCK_REALTIME_ 256
#define FUTEX_BITSET_MATCH_ANY_ 0xffffffffu
#define FUTEX_OWNER_DIED_ 0x40000000u
#define FUTEX_TID_MASK_ 0x3fffffffu
/* FUTEX_OP(op, oparg, cmp, cmparg) */
#define FUTEX_OP_(op, oparg, cmp, cmparg)                                   \
	((((op)&0xf) << 28) | (((cmp)&0xf) << 24) | (((oparg)&0xfff) << 12) | \
	 ((cmparg)&0xfff))
#define FUTEX_OP_SET_ 0
#define FUTEX_OP_ADD_ 1
#define FUTEX_OP_CMP_EQ_ 0
#define FUTEX_OP_CMP_GT_ 4

/* Linux: include/uapi/linux/sched.h */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

/* struct clone_args, CLONE_ARGS_SIZE_VER0 = 64, VER2 = 88. */
struct clone_args_ {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
		stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* Linux: include/uapi/linux/wait.h */
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Linux: include/uapi/linux/capability.h */
#define CAP_V3_ 0x20080522
struct cap_hdr_ {
	uint32_t version;
	int pid;
};
struct cap_data_ {
	uint32_t effective, permitted, inheritable;
};

/* Linux: include/uapi/linux/membarrier.h */
#define MEMBARRIER_CMD_QUERY_ 0
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED_ (1 << 3)
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_ (1 << 4)

static inline long sys_futex(volatile uint32_t *uaddr, int op, uint32_t val,
			     const struct timespec *ts, volatile uint32_t *uaddr2,
			     uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

static inline pid_t sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static inline long sys_tgkill(pid_t tgid, pid_t tid, int sig)
{
	return syscall(SYS_tgkill, tgid, tid, sig);
}

/*
 * Raw threads: clone(2) threads made without the libc thread library, for
 * cases that must exit with a bare SYS_exit or replace the robust list.
 * libc's join would wait on its own bookkeeping (musl's detach_state), which
 * a bare exit never updates, so raw_join waits on the CLONE_CHILD_CLEARTID
 * word instead. The thread shares the creator's TLS, so its function must
 * only make calls that succeed (errno is the creator's).
 */
#include <sched.h>
#include <sys/mman.h>

struct raw_thread {
	volatile uint32_t ctid;
	pid_t tid;
};

static inline int raw_spawn(struct raw_thread *t, int (*fn)(void *), void *arg)
{
	size_t sz = 64 * 1024;
	char *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stk == MAP_FAILED)
		return -1;
	t->ctid = 1;
	t->tid = clone(fn, stk + sz,
		       CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
			       CLONE_THREAD | CLONE_SYSVSEM |
			       CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
		       arg, &t->ctid, NULL, &t->ctid);
	return t->tid > 0 ? 0 : -1;
}

/* raw_join waits (at most about 5 s) for the thread's CLEARTID wake. */
static inline int raw_join(struct raw_thread *t)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	for (int i = 0; i < 100; i++) {
		uint32_t v = t->ctid;
		if (v == 0)
			return 0;
		sys_futex(&t->ctid, FUTEX_WAIT_, v, &ts, NULL, 0);
	}
	return -1;
}

#endif

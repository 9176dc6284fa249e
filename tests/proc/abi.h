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

#endif

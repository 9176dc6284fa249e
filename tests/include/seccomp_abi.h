/*
 * seccomp_abi.h - the seccomp(2) and seccomp_unotify(2) ABI as the test
 * programs use it, spelled out (Linux: include/uapi/linux/seccomp.h,
 * include/uapi/linux/filter.h, bpf_common.h) so that glibc and musl builds
 * see the same definitions whatever headers the C library ships.
 */
#ifndef RINGBOX_TESTS_SECCOMP_ABI_H
#define RINGBOX_TESTS_SECCOMP_ABI_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* struct sock_filter and struct sock_fprog. */
struct sf {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct fprog {
	unsigned short len;
	struct sf *filter;
};

/* Classic BPF opcodes the programs use. */
#define LD_W_ABS 0x20
#define LD_W_LEN 0x80
#define JEQ_K 0x15
#define RET_K 0x06
#define RET_A 0x16
#define ALU_MOD_K 0x94
#define ALU_NEG 0x84
#define ST 0x02
#define LD_MEM 0x60

/* seccomp(2) operations and SECCOMP_SET_MODE_FILTER flags. */
#define OP_STRICT 0
#define OP_FILTER 1
#define OP_ACTION_AVAIL 2
#define OP_NOTIF_SIZES 3
#define F_TSYNC 1u
#define F_LOG 2u
#define F_NEW_LISTENER 8u
#define F_TSYNC_ESRCH 16u
#define F_WAIT_KILLABLE 32u

/* Actions (SECCOMP_RET_*). */
#define KILL_PROCESS 0x80000000u
#define KILL_THREAD 0x00000000u
#define TRAP 0x00030000u
#define ERRNO 0x00050000u
#define USER_NOTIF 0x7fc00000u
#define TRACE 0x7ff00000u
#define LOG 0x7ffc0000u
#define ALLOW 0x7fff0000u

/* struct seccomp_data and what filters read of it. */
#define AUDIT_X86_64 0xc000003eu
#define SYS_SECCOMP_CODE 1 /* SIGSYS si_code */
#define OFF_NR 0
#define OFF_ARCH 4
#define OFF_ARG0 16
struct sdata {
	int nr;
	uint32_t arch;
	uint64_t ip;
	uint64_t args[6];
};

/* User notification. */
struct notif {
	uint64_t id;
	uint32_t pid;
	uint32_t flags;
	struct sdata data;
};
struct resp {
	uint64_t id;
	int64_t val;
	int32_t error;
	uint32_t flags;
};
struct addfd {
	uint64_t id;
	uint32_t flags;
	uint32_t srcfd;
	uint32_t newfd;
	uint32_t newfd_flags;
};
#define FLAG_CONTINUE 1u
#define ADDFD_SETFD 1u
#define ADDFD_SEND 2u
#define IOC_RECV _IOWR('!', 0, struct notif)
#define IOC_SEND _IOWR('!', 1, struct resp)
#define IOC_ID_VALID _IOW('!', 2, uint64_t)
#define IOC_ADDFD _IOW('!', 3, struct addfd)

/* sc is seccomp(2) as the raw syscall. */
static inline long sc(unsigned op, unsigned flags, void *args)
{
	return syscall(SYS_seccomp, op, flags, args);
}

#endif

// process_vm.c: process_vm_readv/process_vm_writev: scatter/gather, partial
// transfers, EFAULT, ESRCH, EINVAL and the ptrace access check (EPERM).
//
// Linux: mm/process_vm_access.c:process_vm_rw_core() (PTRACE_MODE_ATTACH_REALCREDS,
// partial counts); process_vm_readv(2).
#include "tap.h"
#include <sys/mman.h>

long vars[4] = {0x0101010101010101L, 0x0202020202020202L, 0x0303030303030303L, 0x0404040404040404L};
static char *holey;

static ssize_t vm_readv(pid_t pid, struct iovec *l, unsigned long ln, struct iovec *r, unsigned long rn,
			unsigned long flags)
{
	return syscall(SYS_process_vm_readv, pid, l, ln, r, rn, flags);
}

static ssize_t vm_writev(pid_t pid, struct iovec *l, unsigned long ln, struct iovec *r, unsigned long rn,
			 unsigned long flags)
{
	return syscall(SYS_process_vm_writev, pid, l, ln, r, rn, flags);
}

static int t_check(void *arg)
{
	(void)arg;
	kill(getpid(), SIGSTOP);
	return vars[1] == 0x4242424242424242L && vars[3] == 0x4343434343434343L ? 0 : 1;
}

int main(void)
{
	tap_init();
	holey = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(holey + 4096, 4096);
	memset(holey, 0x77, 4096);

	pid_t c = spawn_traceme(t_check, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	// The target stays in its ptrace-stop; process_vm_* need no stop, only
	// the access check, which root passes.

	long a = 0, b = 0;
	struct iovec l[2], r[2];
	l[0] = (struct iovec){&a, 8};
	r[0] = (struct iovec){&vars[0], 8};
	check_eq(vm_readv(c, l, 1, r, 1, 0), 8, "process_vm_readv reads 8 bytes");
	check_hex(a, 0x0101010101010101L, "of the target's memory");

	// scatter/gather: one remote 16-byte range into two local words.
	l[0] = (struct iovec){&a, 8};
	l[1] = (struct iovec){&b, 8};
	r[0] = (struct iovec){&vars[1], 16};
	check_eq(vm_readv(c, l, 2, r, 1, 0), 16, "a remote range scatters into two local buffers");
	ok(a == 0x0202020202020202L && b == 0x0303030303030303L, "in order", "got %#lx %#lx", a, b);

	// partial transfers
	char buf[32];
	l[0] = (struct iovec){buf, 16};
	r[0] = (struct iovec){holey + 4088, 16};
	check_eq(vm_readv(c, l, 1, r, 1, 0), 8, "a remote range running into a hole transfers up to it");
	l[0] = (struct iovec){buf, 16};
	r[0] = (struct iovec){&vars[0], 8};
	r[1] = (struct iovec){holey + 4096, 8};
	check_eq(vm_readv(c, l, 1, r, 2, 0), 8, "a second remote iovec that faults: the first's bytes count");
	r[0] = (struct iovec){holey + 4096, 8};
	check_err(vm_readv(c, l, 1, r, 1, 0), EFAULT, "a wholly unmapped remote range is EFAULT");
	l[0] = (struct iovec){(void *)8, 8};
	r[0] = (struct iovec){&vars[0], 8};
	check_err(vm_readv(c, l, 1, r, 1, 0), EFAULT, "a bad local buffer is EFAULT");
	l[0] = (struct iovec){buf, 8};
	check_err(vm_readv(c, l, 1, r, 1, 1), EINVAL, "non-zero flags are EINVAL");
	check_eq(vm_readv(c, l, 0, r, 1, 0), 0, "no local iovecs transfer 0 bytes");

	// writes
	long w1 = 0x4242424242424242L, w3 = 0x4343434343434343L;
	l[0] = (struct iovec){&w1, 8};
	l[1] = (struct iovec){&w3, 8};
	r[0] = (struct iovec){&vars[1], 8};
	r[1] = (struct iovec){&vars[3], 8};
	check_eq(vm_writev(c, l, 2, r, 2, 0), 16, "process_vm_writev gathers into two remote words");
	l[0] = (struct iovec){&w1, 8};
	r[0] = (struct iovec){holey + 4096, 8};
	check_err(vm_writev(c, l, 1, r, 1, 0), EFAULT, "writing an unmapped remote range is EFAULT");

	// ESRCH and EPERM
	pid_t gone = xfork();
	if (gone == 0)
		_exit(0);
	wait_pid(gone);
	l[0] = (struct iovec){buf, 8};
	r[0] = (struct iovec){&vars[0], 8};
	check_err(vm_readv(gone, l, 1, r, 1, 0), ESRCH, "a pid that does not exist is ESRCH");
	pid_t t = xfork();
	if (t == 0) {
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		_exit(vm_readv(c, l, 1, r, 1, 0) == -1 ? errno : 0);
	}
	int st = wait_pid(t);
	ok(WEXITSTATUS(st) == EPERM, "an unprivileged caller reading a root process gets EPERM", "got %s",
	   tap_errname(WEXITSTATUS(st)));

	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the target sees the written words");

	return tap_done();
}

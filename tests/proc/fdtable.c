/*
 * fdtable.c - the file descriptor table as processes see it: shared with
 * CLONE_FILES, copied on fork, close-on-exec flags, dup/dup2/dup3, fcntl
 * (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/F_SETFD, F_GETFL/F_SETFL),
 * close_range, lowest-free allocation, RLIMIT_NOFILE, and /dev/null.
 *
 * Linux: fs/file.c, fs/fcntl.c, fs/open.c.
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

static int is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static int opened_fd;
static int fn_open(void *a)
{
	(void)a;
	opened_fd = open("/dev/null", O_RDONLY);
	return 0;
}

int main(void)
{
	tap_init();
	int fd = open("/dev/null", O_RDWR);
	ok(fd >= 0, "open /dev/null");

	/* Lowest free descriptor. */
	int a = dup(fd), b = dup(fd);
	close(a);
	check_eq(dup(fd), a, "dup reuses the lowest free descriptor");
	close(a);
	close(b);

	/* fork copies the table: a child's close or open is private. */
	pid_t p = tap_fork();
	if (p == 0) {
		close(fd);
		_exit(open("/dev/null", O_RDONLY) >= 0 ? 0 : 1);
	}
	check_eq(tap_wait(p), 0, "child closes and opens in its own table");
	ok(is_open(fd), "fork: the parent's fd stays open after the child closed it");

	/* CLONE_FILES shares it. */
	static char stk[64 * 1024];
	opened_fd = -1;
	p = clone(fn_open, stk + sizeof stk, CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
	tap_wait(p);
	ok(opened_fd >= 0 && is_open(opened_fd), "CLONE_FILES: the child's open appears in our table");
	close(opened_fd);

	/* dup2 / dup3 */
	check_eq(dup2(fd, 50), 50, "dup2 to a chosen number");
	check_eq(fcntl(50, F_GETFD), 0, "dup2 result has FD_CLOEXEC clear");
	check_eq(dup2(fd, fd), fd, "dup2 same fd returns it");
	check_err(dup2(fd, 1 << 20), EBADF, "dup2 beyond RLIMIT_NOFILE EBADF");
	check_err(dup2(999, 51), EBADF, "dup2 of a closed fd EBADF");
	check_eq(dup3(fd, 51, O_CLOEXEC), 51, "dup3 with O_CLOEXEC");
	check_eq(fcntl(51, F_GETFD), FD_CLOEXEC, "dup3 O_CLOEXEC sets FD_CLOEXEC");
	check_err(syscall(SYS_dup3, fd, fd, 0), EINVAL, "dup3 same fd EINVAL");
	check_err(syscall(SYS_dup3, fd, 52, O_NONBLOCK), EINVAL, "dup3 with a flag other than O_CLOEXEC EINVAL (raw: musl falls back to dup2)");
	check_eq(dup2(fd, 51), 51, "dup2 over an open fd closes it first");
	check_eq(fcntl(51, F_GETFD), 0, "the replaced fd lost FD_CLOEXEC");

	/* fcntl */
	check_eq(fcntl(fd, F_DUPFD, 60), 60, "F_DUPFD returns the lowest >= arg");
	check_eq(fcntl(fd, F_DUPFD, 60), 61, "F_DUPFD skips taken numbers");
	check_eq(fcntl(fd, F_DUPFD_CLOEXEC, 70), 70, "F_DUPFD_CLOEXEC");
	check_eq(fcntl(70, F_GETFD), FD_CLOEXEC, "F_DUPFD_CLOEXEC sets FD_CLOEXEC");
	check_ok(fcntl(60, F_SETFD, FD_CLOEXEC), "F_SETFD FD_CLOEXEC");
	check_eq(fcntl(60, F_GETFD), FD_CLOEXEC, "F_GETFD reads it back");
	check_eq(fcntl(fd, F_GETFD), 0, "FD_CLOEXEC is per descriptor, not per file");
	check_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR, "F_GETFL access mode O_RDWR");
	check_ok(fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND), "F_SETFL O_NONBLOCK|O_APPEND");
	check_eq(fcntl(60, F_GETFL) & (O_NONBLOCK | O_APPEND), O_NONBLOCK | O_APPEND, "status flags are shared by dups");
	fcntl(fd, F_SETFL, O_RDONLY); /* access mode is ignored by F_SETFL */
	check_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR, "F_SETFL cannot change the access mode");
	check_err(fcntl(999, F_GETFD), EBADF, "F_GETFD on a closed fd EBADF");
	check_err(fcntl(fd, F_DUPFD, -1), EINVAL, "F_DUPFD negative EINVAL");
	check_err(fcntl(fd, 0x7777), EINVAL, "unknown fcntl command EINVAL");

	/* close_range */
	for (int i = 80; i < 90; i++)
		dup2(fd, i);
	check_eq(syscall(SYS_close_range, 82, 85, 0), 0, "close_range 82-85");
	ok(is_open(81) && !is_open(82) && !is_open(85) && is_open(86), "close_range closed exactly 82-85");
	check_eq(syscall(SYS_close_range, 86, 87, CLOSE_RANGE_CLOEXEC), 0, "close_range CLOSE_RANGE_CLOEXEC");
	ok(fcntl(86, F_GETFD) == FD_CLOEXEC && fcntl(87, F_GETFD) == FD_CLOEXEC && fcntl(88, F_GETFD) == 0,
	   "CLOSE_RANGE_CLOEXEC marks instead of closing");
	check_eq(syscall(SYS_close_range, 80, ~0U, 0), 0, "close_range to ~0U");
	ok(!is_open(80) && !is_open(89) && is_open(fd), "close_range to ~0U closed the tail");
	check_err(syscall(SYS_close_range, 10, 5, 0), EINVAL, "close_range first > last EINVAL");
	check_err(syscall(SYS_close_range, 10, 20, 0x80), EINVAL, "close_range unknown flag EINVAL");

	/* close */
	check_err(close(999), EBADF, "close of a closed fd EBADF");
	check_err(close(-1), EBADF, "close(-1) EBADF");

	/* RLIMIT_NOFILE */
	p = tap_fork();
	if (p == 0) {
		struct rlimit rl = { 20, 20 };
		setrlimit(RLIMIT_NOFILE, &rl);
		int last = -1, e = 0;
		for (int i = 0; i < 30; i++) {
			int d = dup(0 <= fd ? fd : 0);
			if (d < 0) {
				e = errno;
				break;
			}
			last = d;
		}
		if (e != EMFILE || last != 19)
			_exit(1);
		errno = 0;
		if (fcntl(fd, F_DUPFD, 25) != -1 || errno != EINVAL)
			_exit(2);
		_exit(0);
	}
	check_eq(tap_wait(p), 0, "RLIMIT_NOFILE: dup EMFILE at the limit, F_DUPFD above it EINVAL");

	/* /dev/null */
	char buf[16] = "abc";
	check_eq(read(fd, buf, sizeof buf), 0, "read of /dev/null is EOF");
	check_eq(write(fd, buf, 3), 3, "write to /dev/null accepts everything");
	check_eq(lseek(fd, 100, SEEK_SET), 0, "lseek on /dev/null returns 0");
	check_err(read(999, buf, 1), EBADF, "read of a closed fd EBADF");
	int ro = open("/dev/null", O_RDONLY);
	check_err(write(ro, buf, 1), EBADF, "write to an O_RDONLY fd EBADF");
	close(ro);
	return tap_done();
}

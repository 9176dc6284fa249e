/*
 * tap_common.h - the pieces every suite's tap.h shares (see tests/README.md):
 * the watchdog's time and libc-independent errno names.
 *
 * Each suite keeps its own tap.h for its reporting style and helpers; what
 * must read the same in every suite lives here once.
 */
#ifndef RINGBOX_TESTS_TAP_COMMON_H
#define RINGBOX_TESTS_TAP_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* tap_watchdog_secs is the watchdog's time: TAP_WATCHDOG seconds when set
 * (slow emulated machines), else 10. */
static inline unsigned tap_watchdog_secs(void)
{
	const char *v = getenv("TAP_WATCHDOG");
	int n = v ? atoi(v) : 0;
	return n > 0 ? (unsigned)n : 10;
}

/* tap_errname names an errno the way <errno.h> spells it, the same under
 * every libc (strerror's wording differs between glibc and musl). */
static __attribute__((unused)) const char *tap_errname(int e)
{
	static const struct {
		int e;
		const char *n;
	} names[] = {
		{0, "0"}, {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"},
		{EINTR, "EINTR"}, {EIO, "EIO"}, {ENXIO, "ENXIO"}, {E2BIG, "E2BIG"},
		{ENOEXEC, "ENOEXEC"}, {EBADF, "EBADF"}, {ECHILD, "ECHILD"},
		{EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"}, {EACCES, "EACCES"},
		{EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"},
		{EXDEV, "EXDEV"}, {ENODEV, "ENODEV"}, {ENOTDIR, "ENOTDIR"},
		{EISDIR, "EISDIR"}, {EINVAL, "EINVAL"}, {EMFILE, "EMFILE"},
		{ENOTTY, "ENOTTY"}, {EFBIG, "EFBIG"}, {ESPIPE, "ESPIPE"},
		{EPIPE, "EPIPE"}, {ERANGE, "ERANGE"}, {EDEADLK, "EDEADLK"},
		{ENAMETOOLONG, "ENAMETOOLONG"}, {ENOSYS, "ENOSYS"},
		{ETIMEDOUT, "ETIMEDOUT"}, {EOPNOTSUPP, "EOPNOTSUPP"},
		{EOWNERDEAD, "EOWNERDEAD"}, {ENOTRECOVERABLE, "ENOTRECOVERABLE"},
	};
	static char buf[24];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].e == e)
			return names[i].n;
	snprintf(buf, sizeof buf, "errno%d", e);
	return buf;
}

#endif

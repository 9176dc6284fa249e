/*
 * writev.c - writev(2) gathers its buffers in order, skips empty ones, and
 * rejects a bad iovec count; the lines it writes are part of the expected
 * stdout.
 */
#include "tap.h"

#include <limits.h>
#include <sys/uio.h>

int main(void)
{
	char a[] = "writev: one ", b[] = "two ", c[] = "three\n";
	struct iovec iov[] = {
		{a, sizeof a - 1},
		{NULL, 0},
		{b, sizeof b - 1},
		{c, sizeof c - 1},
	};

	tap_init();
	check_eq(writev(1, iov, 4), sizeof a + sizeof b + sizeof c - 3,
		 "writev returns the sum of the lengths");
	check_eq(writev(1, iov, 0), 0, "writev of no buffers");
	/* The count is checked before the array is read, so the short
	 * array is no fault; volatile keeps gcc from objecting at build. */
	volatile int neg = -1, many = IOV_MAX + 1;
	check_err(writev(1, iov, neg), EINVAL, "writev with a negative count");
	check_err(writev(1, iov, many), EINVAL,
		  "writev with more than IOV_MAX buffers");
	/* On a pipe of its own: a write to /dev/null reads nothing and
	 * would not fault. */
	struct iovec bad = {(void *)8, 10};
	int p[2];
	check_ok(pipe(p), "pipe");
	check_err(writev(p[1], &bad, 1), EFAULT, "writev of an unmapped buffer");
	close(p[0]);
	close(p[1]);
	check_err(writev(-1, iov, 4), EBADF, "writev to a bad descriptor");
	return tap_done();
}

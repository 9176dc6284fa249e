/*
 * getrandom.c - getrandom(2) fills the buffer, two draws differ, and
 * unknown flags are EINVAL. Randomness itself is not judged.
 */
#include "tap.h"

#include <sys/random.h>
#include <sys/syscall.h>

int main(void)
{
	unsigned char a[64], b[64];

	tap_init();
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	check_eq(getrandom(a, sizeof a, 0), sizeof a, "getrandom 64 bytes");
	check_eq(getrandom(b, sizeof b, GRND_NONBLOCK), sizeof b,
		 "getrandom 64 bytes with GRND_NONBLOCK");
	/* 2^-512 chance of a false failure. */
	ok(memcmp(a, b, sizeof a) != 0, "two draws differ");
	check_eq(getrandom(a, 0, 0), 0, "getrandom of 0 bytes");
	check_err(syscall(SYS_getrandom, a, sizeof a, 0x80), EINVAL,
		  "getrandom with an unknown flag");
	check_err(syscall(SYS_getrandom, (void *)8, 16UL, 0), EFAULT,
		  "getrandom into an unmapped buffer");
	return tap_done();
}

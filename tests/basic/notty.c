/*
 * notty.c - terminal ioctls on descriptors that are not terminals fail
 * with ENOTTY: on a pipe made here, and on stdout, which the harness
 * connects to a pipe (the stdout case is skipped when it is a terminal).
 */
#include "tap.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

int main(void)
{
	struct termios t;
	struct stat st;
	int p[2];

	tap_init();
	check_ok(pipe(p), "pipe");
	check_err(ioctl(p[0], TCGETS, &t), ENOTTY, "TCGETS on a pipe");
	check_err(ioctl(p[1], TIOCGWINSZ, &(struct winsize){0}), ENOTTY,
		  "TIOCGWINSZ on a pipe");
	check_eq(isatty(p[1]), 0, "isatty on a pipe");
	if (fstat(1, &st) == 0 && !S_ISCHR(st.st_mode)) {
		check_err(ioctl(1, TCGETS, &t), ENOTTY, "TCGETS on stdout");
	} else {
		tap_n++;
		printf("ok %d - TCGETS on stdout # SKIP stdout is a character device\n",
		       tap_n);
	}
	check_err(ioctl(-1, TCGETS, &t), EBADF, "TCGETS on a bad descriptor");
	close(p[0]);
	close(p[1]);
	return tap_done();
}

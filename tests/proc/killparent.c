/*
 * killparent.c - helper for tests/go/gostress, which execs it:
 *   killparent kill   sends SIGUSR1 to its parent (os/signal test)
 *   killparent cat    copies stdin to stdout (pipes across exec)
 * Run with no argument (as the end-to-end harness does for every binary)
 * it only reports itself, and never signals the harness.
 */
#include "tap.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "kill") == 0) {
		if (getenv("RINGBOX_KILLPARENT") == NULL)
			return 2; /* refuse unless the caller asked for it */
		return kill(getppid(), SIGUSR1) == 0 ? 0 : 1;
	}
	if (argc > 1 && strcmp(argv[1], "cat") == 0) {
		char buf[4096];
		ssize_t n;
		while ((n = read(0, buf, sizeof buf)) > 0)
			if (write(1, buf, n) != n)
				return 1;
		return n == 0 ? 0 : 1;
	}
	tap_init();
	ok(1, "killparent standalone: nothing to do");
	return tap_done();
}

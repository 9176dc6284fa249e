/*
 * selfexe.c - readlink("/proc/self/exe") names the program's own file: it
 * equals argv[0] made absolute. The harness runs programs by a path with
 * no symbolic links in it, so no resolution is needed here beyond joining
 * a relative argv[0] to the working directory.
 */
#include "tap.h"

#include <limits.h>

int main(int argc, char **argv)
{
	char exe[PATH_MAX], want[PATH_MAX];
	ssize_t n;

	(void)argc;
	tap_init();
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	check_ok(n, "readlink /proc/self/exe");
	if (n < 0)
		return tap_done();
	exe[n] = 0;
	if (argv[0][0] == '/') {
		snprintf(want, sizeof want, "%s", argv[0]);
	} else {
		char cwd[PATH_MAX];
		const char *rel = argv[0];

		if (getcwd(cwd, sizeof cwd) == NULL)
			cwd[0] = 0;
		while (strncmp(rel, "./", 2) == 0)
			rel += 2;
		snprintf(want, sizeof want, "%s/%s", cwd, rel);
	}
	ok(strcmp(exe, want) == 0, "/proc/self/exe is argv[0] made absolute");
	if (strcmp(exe, want) != 0)
		printf("# got \"%s\" want \"%s\"\n", exe, want);
	/* "readlink() does not append a terminating null byte" and
	 * truncates silently. - readlink(2) */
	char small[4] = {'x', 'x', 'x', 'x'};
	check_eq(readlink("/proc/self/exe", small, 3), 3,
		 "readlink into a 3-byte buffer returns 3");
	ok(small[3] == 'x' && memcmp(small, exe, 3) == 0,
	   "the truncated link is not NUL-terminated");
	return tap_done();
}

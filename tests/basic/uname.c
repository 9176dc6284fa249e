/*
 * uname.c - uname(2) says Linux on x86_64. Only what cannot differ between
 * the host and the sandbox is printed: the release and version are
 * ringbox's own choice and are only checked to be non-empty.
 */
#include "tap.h"

#include <sys/utsname.h>

/* terminated reports whether a utsname field holds a NUL. */
static int terminated(const char *f)
{
	return memchr(f, 0, sizeof((struct utsname *)0)->sysname) != NULL;
}

int main(void)
{
	struct utsname u;

	tap_init();
	memset(&u, 0xff, sizeof u);
	check_ok(uname(&u), "uname");
	ok(terminated(u.sysname) && terminated(u.nodename) &&
	   terminated(u.release) && terminated(u.version) &&
	   terminated(u.machine) && terminated(u.domainname),
	   "every field is NUL-terminated");
	printf("sysname %s\n", u.sysname);
	printf("machine %s\n", u.machine);
	ok(strcmp(u.sysname, "Linux") == 0, "sysname is Linux");
	ok(strcmp(u.machine, "x86_64") == 0, "machine is x86_64");
	ok(u.release[0] != 0, "release is not empty");
	ok(u.version[0] != 0, "version is not empty");
	return tap_done();
}

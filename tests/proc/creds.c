/*
 * creds.c - credentials: res[ug]id, supplementary groups, capget.
 *
 * Linux: kernel/sys.c (setresuid, setresgid), kernel/groups.c,
 * kernel/capability.c. Privilege-dropping cases run in forked children so
 * the main process keeps its credentials. The cases that need root report
 * SKIP when the program does not start as uid 0.
 */
#include "tap.h"
#include "abi.h"
#include <grp.h>
#include <sys/fsuid.h>

static int run(int (*fn)(void))
{
	pid_t p = tap_fork();
	if (p == 0)
		_exit(fn());
	return tap_wait(p);
}

/* drop_all: setresuid to an unprivileged triple sticks, and the way back
 * is EPERM. - setresuid(2) */
static int drop_all(void)
{
	uid_t r, e, s;
	if (setresgid(2000, 2001, 2002) != 0)
		return 1;
	gid_t gr, ge, gs;
	if (getresgid(&gr, &ge, &gs) != 0 || gr != 2000 || ge != 2001 || gs != 2002)
		return 2;
	if (setresuid(1000, 1001, 1002) != 0)
		return 3;
	if (getresuid(&r, &e, &s) != 0 || r != 1000 || e != 1001 || s != 1002)
		return 4;
	if (getuid() != 1000 || geteuid() != 1001)
		return 5;
	errno = 0;
	if (setresuid(0, 0, 0) != -1 || errno != EPERM)
		return 6;
	/* An unprivileged process may swap among its real/effective/saved. */
	if (setresuid(1002, 1000, -1) != 0)
		return 7;
	if (getresuid(&r, &e, &s) != 0 || r != 1002 || e != 1000 || s != 1002)
		return 8;
	errno = 0;
	if (setgroups(0, NULL) != -1 || errno != EPERM)
		return 9;
	return 0;
}

/* saved_root: keeping saved uid 0 allows regaining euid 0. */
static int saved_root(void)
{
	if (setresuid(-1, 1000, 0) != 0)
		return 1;
	if (geteuid() != 1000)
		return 2;
	if (seteuid(0) != 0 || geteuid() != 0)
		return 3;
	return 0;
}

/* caps_drop: leaving uid 0 for all three ids clears the effective and
 * permitted capability sets. - capabilities(7) */
static int caps_drop(void)
{
	struct cap_hdr_ h = { CAP_V3_, 0 };
	struct cap_data_ d[2];
	if (setresuid(1000, 1000, 1000) != 0)
		return 1;
	if (syscall(SYS_capget, &h, d) != 0)
		return 2;
	if (d[0].effective || d[0].permitted || d[1].effective || d[1].permitted)
		return 3;
	return 0;
}

/* fsuid_follows: the fs uid tracks the effective uid. */
static int fsuid_follows(void)
{
	if (setresuid(-1, 1234, -1) != 0)
		return 1;
	/* setfsuid returns the previous value whatever it is asked. */
	if (setfsuid(-1) != 1234)
		return 2;
	return 0;
}

int main(void)
{
	tap_init();
	uid_t r, e, s;
	gid_t gr, ge, gs;
	check_ok(getresuid(&r, &e, &s), "getresuid");
	ok(r == getuid() && e == geteuid(), "getresuid agrees with getuid/geteuid");
	check_ok(getresgid(&gr, &ge, &gs), "getresgid");
	ok(gr == getgid() && ge == getegid(), "getresgid agrees with getgid/getegid");
	check_err(syscall(SYS_getresuid, (void *)0, &e, &s), EFAULT, "getresuid(NULL) EFAULT");

	int n = getgroups(0, NULL);
	ok(n >= 0, "getgroups(0) returns a count");
	check_err(syscall(SYS_getgroups, -1, NULL), EINVAL, "getgroups(-1) EINVAL");

	struct cap_hdr_ h = { 0, 0 };
	struct cap_data_ d[2];
	check_ok(syscall(SYS_capget, &h, NULL), "capget version 0 with NULL data is a version query");
	check_eq(h.version, CAP_V3_, "capget writes back the preferred version");
	h.version = 0x12345;
	check_err(syscall(SYS_capget, &h, d), EINVAL, "capget bad version with data EINVAL");
	h.version = CAP_V3_;
	h.pid = 0;
	check_ok(syscall(SYS_capget, &h, d), "capget v3 self");
	h.pid = -3;
	check_err(syscall(SYS_capget, &h, d), EINVAL, "capget pid -3 EINVAL");
	h.pid = 0x3ffffff0;
	check_err(syscall(SYS_capget, &h, d), ESRCH, "capget nonexistent pid ESRCH");

	if (geteuid() != 0) {
		skip("not root", "setresuid/setresgid drop and EPERM");
		skip("not root", "saved uid 0 regains euid 0");
		skip("not root", "capabilities cleared by uid change");
		skip("not root", "setgroups and getgroups round trip");
		skip("not root", "setfsuid follows euid");
		skip("not root", "root has CAP_SETUID effective");
		return tap_done();
	}
	check_eq(run(drop_all), 0, "setresuid/setresgid drop and EPERM");
	check_eq(run(saved_root), 0, "saved uid 0 regains euid 0");
	check_eq(run(caps_drop), 0, "capabilities cleared by uid change");

	gid_t want[3] = { 7, 77, 777 }, got[8];
	pid_t p = tap_fork();
	if (p == 0) {
		if (setgroups(3, want) != 0)
			_exit(1);
		int k = getgroups(8, got);
		if (k != 3 || got[0] != 7 || got[1] != 77 || got[2] != 777)
			_exit(2);
		_exit(0);
	}
	check_eq(tap_wait(p), 0, "setgroups and getgroups round trip");
	check_eq(run(fsuid_follows), 0, "setfsuid follows euid");
	h.version = CAP_V3_;
	h.pid = 0;
	syscall(SYS_capget, &h, d);
	ok(d[0].effective & (1u << 7), "root has CAP_SETUID effective");
	return tap_done();
}

// access.c: ptrace access mode checking for PTRACE_ATTACH/SEIZE: same
// thread group, real/effective/saved uids and gids, dumpability and
// CAP_SYS_PTRACE.
//
// Linux: kernel/ptrace.c:__ptrace_may_access() (PTRACE_MODE_REALCREDS uses
// the caller's real ids), security/commoncap.c:cap_ptrace_access_check();
// ptrace(2) "Ptrace access mode checking".
//
// The targets call PR_SET_PTRACER_ANY (spawn_as) so that the results do not
// depend on whether YAMA is present; yama.c checks YAMA itself.
#include "tap.h"

// attach_as forks a process with the given credentials that attaches target
// with req, waits for the stop and detaches; it returns 0 on success or the
// errno of the attach.
static int attach_as(uid_t ru, uid_t eu, uid_t su, gid_t g, pid_t target, long req)
{
	pid_t t = xfork();
	if (t == 0) {
		if (drop_creds(ru, eu, su, g, g, g, -1) != 0)
			_exit(100);
		if (pt(req, target, 0, 0) != 0)
			_exit(errno);
		if (req == PTRACE_ATTACH) {
			if (wait_pid(target) != STOPPED(SIGSTOP))
				_exit(101);
			pt(PTRACE_DETACH, target, 0, 0);
		}
		_exit(0);
	}
	int st = wait_pid(t);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 102;
}

static void check_code(int got, int want, const char *name)
{
	ok(got == want, name, "got %s want %s", got > 99 ? "helper-failure" : tap_errname(got), tap_errname(want));
}

int main(void)
{
	tap_init();

	pid_t root = spawn_as(0, 0, 1);
	pid_t same = spawn_as(NOBODY, NOBODY, 1);
	pid_t nodump = spawn_as(NOBODY, NOBODY, 0);
	pid_t reset = spawn_as(NOBODY, NOBODY, -1); // dumpable reset by setresuid
	pid_t gid0 = spawn_as(NOBODY, 0, 1);

	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, root, PTRACE_ATTACH), EPERM,
		   "an unprivileged tracer cannot attach a root process");
	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, root, PTRACE_SEIZE), EPERM,
		   "nor seize it");
	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, same, PTRACE_ATTACH), 0,
		   "an unprivileged tracer attaches a process with the same ids");
	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, nodump, PTRACE_ATTACH), EPERM,
		   "but not one that made itself non-dumpable");
	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, reset, PTRACE_SEIZE), EPERM,
		   "nor one whose uid change reset dumpable (suid_dumpable 0)");
	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, gid0, PTRACE_SEIZE), EPERM,
		   "nor one whose gids differ");
	check_code(attach_as(0, 0, 0, 0, nodump, PTRACE_ATTACH), 0,
		   "root (CAP_SYS_PTRACE) attaches a non-dumpable process");
	check_code(attach_as(0, 0, 0, 0, same, PTRACE_ATTACH), 0, "root attaches an unprivileged process");

	// A target whose saved uid is still 0.
	int p[2];
	char ch = 0;
	if (pipe(p) != 0)
		return 3;
	pid_t saved0 = xfork();
	if (saved0 == 0) {
		if (drop_creds(NOBODY, NOBODY, 0, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(97);
		prctl(0x59616d61 /* PR_SET_PTRACER */, -1UL /* PR_SET_PTRACER_ANY */, 0, 0, 0);
		if (write(p[1], "r", 1) != 1)
			_exit(96);
		for (;;)
			pause();
	}
	if (read(p[0], &ch, 1) != 1)
		return 3;
	check_code(attach_as(NOBODY, NOBODY, NOBODY, NOBODY, saved0, PTRACE_ATTACH), EPERM,
		   "a target with saved uid 0 is not attachable by uid 65534");

	// PTRACE_MODE_REALCREDS: the caller's real uid counts. A caller with real
	// uid 0 and effective uid 65534 has no capabilities, yet matches a root
	// target's ids; one with real 65534 and effective 0 keeps its capabilities.
	check_code(attach_as(0, NOBODY, 0, 0, root, PTRACE_ATTACH), 0,
		   "real uid 0, effective 65534: attaching a root process is allowed");
	check_code(attach_as(NOBODY, NOBODY, 0, NOBODY, root, PTRACE_ATTACH), EPERM,
		   "real and effective uid 65534, saved 0: attaching root is EPERM");
	check_code(attach_as(NOBODY, 0, 0, 0, same, PTRACE_ATTACH), 0,
		   "effective uid 0 (CAP_SYS_PTRACE) attaches anyone");

	// A process may always trace its own same-uid child.
	pid_t t = xfork();
	if (t == 0) {
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		pid_t k = fork();
		if (k == 0) {
			for (;;)
				pause();
		}
		int r = pt(PTRACE_ATTACH, k, 0, 0) == 0 && wait_pid(k) == STOPPED(SIGSTOP) ? 0 : errno;
		kill(k, SIGKILL);
		wait_pid(k);
		_exit(r);
	}
	int st = wait_pid(t);
	check_code(WEXITSTATUS(st), 0, "an unprivileged process attaches its own child");

	return tap_done();
}

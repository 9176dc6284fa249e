// differential: skip-stdout
// yama.c: the YAMA LSM's ptrace scopes (/proc/sys/kernel/yama/ptrace_scope)
// and PR_SET_PTRACER exceptions.
//
// Hosts without YAMA (no ptrace_scope file) print every case as
// "ok N - name # SKIP no YAMA on this host"; under ringbox the file exists
// (default scope 1) and the cases run, so stdout differs between the two:
// the marker above tells the harness to compare only the exit status.
//
// The cases follow ptrace(2) "/proc/sys/kernel/yama/ptrace_scope" and
// Linux's security/yama/yama_lsm.c: yama_ptrace_access_check() (scope 1:
// descendants, or a PR_SET_PTRACER exception naming the tracer or one of its
// ancestors, or CAP_SYS_PTRACE; scope 2: CAP_SYS_PTRACE; scope 3: never),
// yama_ptrace_traceme(), yama_task_prctl() (PR_SET_PTRACER, _ANY, EINVAL for
// an unknown pid), yama_task_free() (exceptions die with the tracer),
// yama_dointvec_minmax() (CAP_SYS_PTRACE to write, 3 is sticky).
// Scope 3 cannot be undone, so those cases come last.
#include "tap.h"

// SCOPE_FILE may be overridden at build time (with YAMA_DRY_RUN) to run the
// cases on a host without YAMA, where their results differ, as a smoke test.
#ifndef SCOPE_FILE
#define SCOPE_FILE "/proc/sys/kernel/yama/ptrace_scope"
#endif
#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#define PTRACER_ANY (-1UL)
#define CAP_SYS_PTRACE_BIT 19

static const char *names[] = {
	"writing scope 1 as root succeeds",
	"scope 1: an unprivileged process attaches its own child",
	"scope 1: an unprivileged process cannot attach a same-uid non-descendant",
	"scope 1: PR_SET_PTRACER lets the named process attach",
	"scope 1: and a descendant of the named process",
	"scope 1: the exception ends when the named process exits",
	"scope 1: PR_SET_PTRACER_ANY lets any same-uid process attach",
	"scope 1: the exception is not inherited by a child",
	"scope 1: the exception is kept across execve",
	"scope 1: PR_SET_PTRACER 0 clears the exception",
	"scope 1: PR_SET_PTRACER of an unknown pid is EINVAL",
	"scope 1: root (CAP_SYS_PTRACE) attaches a non-descendant",
	"scope 1: PTRACE_TRACEME under an unprivileged parent works",
	"writing scope 2 succeeds",
	"scope 2: an unprivileged process cannot attach its own child",
	"scope 2: root attaches",
	"scope 2: PTRACE_TRACEME under an unprivileged parent is EPERM",
	"writing the scope without CAP_SYS_PTRACE is EPERM",
	"writing scope 4 is EINVAL",
	"writing scope 3 succeeds",
	"scope 3: even root cannot attach",
	"scope 3: PTRACE_TRACEME is EPERM",
	"scope 3 is sticky: writing 1 is EINVAL",
	"scope 3: the file reads 3",
};

static int read_scope(void)
{
	char b[16] = {0};
	int fd = open(SCOPE_FILE, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	return n > 0 ? atoi(b) : -1;
}

// write_scope returns 0 or the errno of open/write.
static int write_scope(int v)
{
	char b[16];
	int n = snprintf(b, sizeof b, "%d\n", v);
	int fd = open(SCOPE_FILE, O_WRONLY);
	if (fd < 0)
		return errno;
	int r = write(fd, b, n) == n ? 0 : errno;
	close(fd);
	return r;
}

// attach_code attaches target from the calling process, waits for the stop
// and detaches; 0 or the attach's errno.
static int attach_code(pid_t target)
{
	if (pt(PTRACE_ATTACH, target, 0, 0) != 0)
		return errno;
	wait_pid(target);
	pt(PTRACE_DETACH, target, 0, 0);
	return 0;
}

// An agent is an unprivileged process P that attaches targets on request.
// With via_child, P forks Q (a descendant of P) which does the attaching
// and outlives P: that tests exceptions naming an ancestor, and their end.
struct agent {
	pid_t pid; // P
	int wr, rd;
};

static struct agent agent_start(int via_child)
{
	int cmd[2], res[2];
	struct agent a = {-1, -1, -1};
	if (pipe(cmd) || pipe(res))
		return a;
	a.pid = xfork();
	if (a.pid == 0) {
		close(cmd[1]);
		close(res[0]);
		// Q may outlive this program briefly: it must not hold its stdout.
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		if (via_child) {
			pid_t q = fork(); // no PDEATHSIG: Q must outlive P
			if (q != 0) {
				for (;;)
					pause();
			}
			// Q is not killed with P: bound its life by its own alarm.
			signal(SIGALRM, SIG_DFL);
			alarm(10);
		}
		pid_t target;
		while (read(cmd[0], &target, sizeof target) == sizeof target) {
			int code = attach_code(target);
			if (write(res[1], &code, sizeof code) != sizeof code)
				break;
		}
		_exit(0);
	}
	close(cmd[0]);
	close(res[1]);
	a.wr = cmd[1];
	a.rd = res[0];
	return a;
}

static int agent_attach(struct agent *a, pid_t target)
{
	int code = -1;
	if (write(a->wr, &target, sizeof target) != sizeof target)
		return -1;
	if (read(a->rd, &code, sizeof code) != sizeof code)
		return -1;
	return code;
}

static void agent_stop(struct agent *a)
{
	close(a->wr);
	close(a->rd);
	kill_reap(a->pid);
}

enum tmode { T_PAUSE, T_CHILD, T_EXEC };

// spawn_target forks an unprivileged dumpable process that calls
// PR_SET_PTRACER(ptracer) when ptracer is not 0, then pauses (T_PAUSE),
// forks a pausing child whose pid it reports (T_CHILD), or execs this
// program in pause mode (T_EXEC). It returns the pid to attach.
static pid_t spawn_target(unsigned long ptracer, enum tmode mode)
{
	int p[2];
	pid_t pid = -1;
	if (pipe(p) != 0)
		return -1;
	pid_t t = xfork();
	if (t == 0) {
		close(p[0]);
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		if (ptracer && prctl(PR_SET_PTRACER, ptracer, 0, 0, 0) != 0) {
#ifndef YAMA_DRY_RUN // build with it to exercise the helpers without YAMA
			_exit(101);
#endif
		}
		pid_t me = getpid();
		if (mode == T_CHILD) {
			me = fork();
			if (me == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				for (;;)
					pause();
			}
		}
		if (mode == T_EXEC) {
			char fd[16];
			snprintf(fd, sizeof fd, "%d", p[1]);
			char *argv[] = {"yama", "yama-pause", fd, NULL};
			execv("/proc/self/exe", argv);
			_exit(102);
		}
		if (write(p[1], &me, sizeof me) != sizeof me)
			_exit(103);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &pid, sizeof pid) != sizeof pid)
		pid = -1;
	close(p[0]);
	if (pid != t && pid > 0)
		tap_track(pid);
	return pid;
}

static void check_code(int got, int want, const char *name)
{
	ok(got == want, name, "got %s want %s", got < 0 || got > 99 ? "helper-failure" : tap_errname(got), tap_errname(want));
}

// traceme_under returns the errno of PTRACE_TRACEME in a child of a process
// with the given uid (0 on success).
static int traceme_under(uid_t uid)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t parent = xfork();
	if (parent == 0) {
		close(p[0]);
		if (uid && drop_creds(uid, uid, uid, uid, uid, uid, 1) != 0)
			_exit(100);
		pid_t k = fork();
		if (k == 0) {
			int code = ptrace(PTRACE_TRACEME, 0, 0, 0) == 0 ? 0 : errno;
			if (write(p[1], &code, sizeof code) != sizeof code)
				_exit(1);
			_exit(0);
		}
		wait_pid(k);
		_exit(0);
	}
	close(p[1]);
	int code = -1;
	if (read(p[0], &code, sizeof code) != sizeof code)
		code = -1;
	close(p[0]);
	wait_pid(parent);
	return code;
}

// nocap_write_scope writes the scope from a root child that dropped
// CAP_SYS_PTRACE from its effective set.
static int nocap_write_scope(int v)
{
	pid_t c = xfork();
	if (c == 0) {
		struct {
			uint32_t version;
			int pid;
		} hdr = {0x20080522, 0};
		struct {
			uint32_t eff, perm, inh;
		} data[2];
		if (syscall(SYS_capget, &hdr, data) != 0)
			_exit(100);
		data[0].eff &= ~(1u << CAP_SYS_PTRACE_BIT);
		if (syscall(SYS_capset, &hdr, data) != 0)
			_exit(101);
		_exit(write_scope(v));
	}
	int st = wait_pid(c);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// own_child_code: an unprivileged process attaches its own child.
static int own_child_code(void)
{
	pid_t c = xfork();
	if (c == 0) {
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		pid_t k = fork();
		if (k == 0) {
			for (;;)
				pause();
		}
		int code = attach_code(k);
		kill(k, SIGKILL);
		_exit(code);
	}
	int st = wait_pid(c);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// root_sibling_code: a root process attaches a process it did not fork.
static int root_sibling_code(pid_t target)
{
	pid_t c = xfork();
	if (c == 0)
		_exit(attach_code(target));
	int st = wait_pid(c);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "yama-pause") == 0) {
		pid_t me = getpid();
		if (write(atoi(argv[2]), &me, sizeof me) != sizeof me)
			return 1;
		for (;;)
			pause();
	}
	tap_init();
	int n = 0;
	if (access(SCOPE_FILE, F_OK) != 0) {
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			skip(names[i], "no YAMA on this host");
		return tap_done();
	}
	int orig = read_scope();

	// Scope 1.
	check_code(write_scope(1), 0, names[n++]);
	check_code(own_child_code(), 0, names[n++]);
	struct agent a = agent_start(0);
	pid_t t = spawn_target(0, T_PAUSE);
	check_code(agent_attach(&a, t), EPERM, names[n++]);
	kill_reap(t);
	t = spawn_target((unsigned long)a.pid, T_PAUSE);
	check_code(agent_attach(&a, t), 0, names[n++]);
	kill_reap(t);
	agent_stop(&a);

	struct agent d = agent_start(1); // P names, Q attaches
	t = spawn_target((unsigned long)d.pid, T_PAUSE);
	check_code(agent_attach(&d, t), 0, names[n++]);
	kill_reap(d.pid); // P exits and is reaped: the exception dies with it
	usleep(50000);
	check_code(agent_attach(&d, t), EPERM, names[n++]);
	close(d.wr);
	close(d.rd);
	kill_reap(t);

	a = agent_start(0);
	t = spawn_target(PTRACER_ANY, T_PAUSE);
	check_code(agent_attach(&a, t), 0, names[n++]);
	kill_reap(t);
	t = spawn_target(PTRACER_ANY, T_CHILD);
	check_code(agent_attach(&a, t), EPERM, names[n++]);
	t = spawn_target(PTRACER_ANY, T_EXEC);
	check_code(agent_attach(&a, t), 0, names[n++]);
	kill_reap(t);

	// PR_SET_PTRACER 0 after ANY: a target that does both.
	int p[2];
	pid_t tp = -1;
	if (pipe(p) != 0)
		return 3;
	t = xfork();
	if (t == 0) {
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		prctl(PR_SET_PTRACER, PTRACER_ANY, 0, 0, 0);
		prctl(PR_SET_PTRACER, 0, 0, 0, 0);
		pid_t me = getpid();
		if (write(p[1], &me, sizeof me) != sizeof me)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(p[0], &tp, sizeof tp) != sizeof tp)
		tp = -1;
	check_code(agent_attach(&a, tp), EPERM, names[n++]);
	agent_stop(&a);
	kill_reap(t);

	pid_t gone = xfork();
	if (gone == 0)
		_exit(0);
	wait_pid(gone);
	errno = 0;
	check_err(prctl(PR_SET_PTRACER, gone, 0, 0, 0), EINVAL, names[n++]);
	t = spawn_target(0, T_PAUSE);
	check_code(root_sibling_code(t), 0, names[n++]);
	check_code(traceme_under(NOBODY), 0, names[n++]);

	// Scope 2.
	check_code(write_scope(2), 0, names[n++]);
	check_code(own_child_code(), EPERM, names[n++]);
	check_code(root_sibling_code(t), 0, names[n++]);
	check_code(traceme_under(NOBODY), EPERM, names[n++]);

	// Writing the scope.
	check_code(nocap_write_scope(1), EPERM, names[n++]);
	check_code(write_scope(4), EINVAL, names[n++]);
	write_scope(orig >= 0 && orig < 3 ? orig : 1);

	// Scope 3 (sticky: last).
	check_code(write_scope(3), 0, names[n++]);
	check_code(root_sibling_code(t), EPERM, names[n++]);
	check_code(traceme_under(0), EPERM, names[n++]);
	check_code(write_scope(1), EINVAL, names[n++]);
	check_eq(read_scope(), 3, names[n++]);
	kill_reap(t);

	return tap_done();
}

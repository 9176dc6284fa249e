// differential: normalize
// mini_strace.c: a small strace built on PTRACE_SEIZE, PTRACE_SYSCALL and
// PTRACE_GET_SYSCALL_INFO, following forks, vforks, clones and execs.
//
//   mini_strace              trace the syscall sequence of strace_seq.h in a
//                            forked copy of this program
//   mini_strace PROG ARG...  trace PROG (a path) from its execve on
//
// Output: one line per completed syscall, "T<n> <nr> <name> = <result>",
// grouped by task, tasks numbered by order of appearance (T1 is the first).
// Results that are PIDs print as task numbers (or TRACER/PID), addresses as
// ADDR and new file descriptors as FD, errors as "-1 ENAME", so the output
// does not depend on the run. Events print as "+++ fork T2", "+++ exec",
// "--- signal N", "+++ exited N", "+++ killed N". Then "# tasks N" and TAP
// lines: the traced program exited 0 (the built-in sequence checks its own
// results) and, for the built-in sequence, its fork child was followed.
//
// The traced child blocks on a pipe until the tracer has seized it, so no
// PTRACE_TRACEME is needed (ptrace(2) "PTRACE_SEIZE").
#include "tap.h"
#include "strace_seq.h"

#define MAX_TASKS 64

struct task {
	pid_t pid;
	int live;
	int recording; // lines are kept only from a known point on
	int in_syscall;
	long nr;
	char *out;
	size_t len, cap;
};

static struct task tasks[MAX_TASKS];
static int ntasks;
static pid_t tracer_pid;

static struct task *task_of(pid_t pid, int create)
{
	for (int i = 0; i < ntasks; i++)
		if (tasks[i].pid == pid)
			return &tasks[i];
	if (!create || ntasks == MAX_TASKS)
		return NULL;
	struct task *t = &tasks[ntasks++];
	memset(t, 0, sizeof *t);
	t->pid = pid;
	t->live = 1;
	t->recording = 1; // new children are traced from their first stop
	return t;
}

static int task_num(pid_t pid)
{
	for (int i = 0; i < ntasks; i++)
		if (tasks[i].pid == pid)
			return i + 1;
	return 0;
}

static void emit(struct task *t, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	if (t->len + n + 2 > t->cap) {
		t->cap = (t->cap + n + 2) * 2;
		t->out = realloc(t->out, t->cap);
		if (!t->out)
			exit(3);
	}
	memcpy(t->out + t->len, line, n);
	t->len += n;
	t->out[t->len++] = '\n';
}

static const struct {
	int nr;
	const char *name;
} names[] = {
	{SYS_read, "read"},
	{SYS_write, "write"},
	{SYS_open, "open"},
	{SYS_close, "close"},
	{SYS_fstat, "fstat"},
	{SYS_lseek, "lseek"},
	{SYS_mmap, "mmap"},
	{SYS_mprotect, "mprotect"},
	{SYS_munmap, "munmap"},
	{SYS_brk, "brk"},
	{SYS_rt_sigaction, "rt_sigaction"},
	{SYS_rt_sigprocmask, "rt_sigprocmask"},
	{SYS_ioctl, "ioctl"},
	{SYS_pread64, "pread64"},
	{SYS_writev, "writev"},
	{SYS_access, "access"},
	{SYS_pipe, "pipe"},
	{SYS_sched_yield, "sched_yield"},
	{SYS_mremap, "mremap"},
	{SYS_madvise, "madvise"},
	{SYS_dup, "dup"},
	{SYS_dup2, "dup2"},
	{SYS_nanosleep, "nanosleep"},
	{SYS_getpid, "getpid"},
	{SYS_clone, "clone"},
	{SYS_fork, "fork"},
	{SYS_vfork, "vfork"},
	{SYS_execve, "execve"},
	{SYS_exit, "exit"},
	{SYS_wait4, "wait4"},
	{SYS_kill, "kill"},
	{SYS_uname, "uname"},
	{SYS_fcntl, "fcntl"},
	{SYS_getcwd, "getcwd"},
	{SYS_readlink, "readlink"},
	{SYS_getuid, "getuid"},
	{SYS_getgid, "getgid"},
	{SYS_geteuid, "geteuid"},
	{SYS_getegid, "getegid"},
	{SYS_getppid, "getppid"},
	{SYS_arch_prctl, "arch_prctl"},
	{SYS_gettid, "gettid"},
	{SYS_futex, "futex"},
	{SYS_set_tid_address, "set_tid_address"},
	{SYS_clock_gettime, "clock_gettime"},
	{SYS_exit_group, "exit_group"},
	{SYS_tgkill, "tgkill"},
	{SYS_openat, "openat"},
	{SYS_newfstatat, "newfstatat"},
	{SYS_readlinkat, "readlinkat"},
	{SYS_set_robust_list, "set_robust_list"},
	{SYS_pipe2, "pipe2"},
	{SYS_prlimit64, "prlimit64"},
	{SYS_getrandom, "getrandom"},
	{334, "rseq"},
	{435, "clone3"},
};

static const char *sys_name(long nr)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].nr == nr)
			return names[i].name;
	return "?";
}

// result formats a syscall result without run-dependent values.
static const char *result(long nr, long ret)
{
	static char buf[64];
	if (ret < 0 && ret >= -4095) {
		snprintf(buf, sizeof buf, "-1 %s", tap_errname((int)-ret));
		return buf;
	}
	switch (nr) {
	case SYS_getpid:
	case SYS_getppid:
	case SYS_gettid:
	case SYS_fork:
	case SYS_vfork:
	case SYS_clone:
	case 435: // clone3
	case SYS_wait4:
	case SYS_set_tid_address:
		if (ret == 0)
			break;
		if (task_num((pid_t)ret))
			snprintf(buf, sizeof buf, "T%d", task_num((pid_t)ret));
		else if (ret == tracer_pid)
			snprintf(buf, sizeof buf, "TRACER");
		else
			snprintf(buf, sizeof buf, "PID");
		return buf;
	case SYS_mmap:
	case SYS_brk:
	case SYS_mremap:
		if (ret > 0xffff)
			return "ADDR";
		break;
	case SYS_open:
	case SYS_openat:
	case SYS_dup:
		return "FD";
	}
	snprintf(buf, sizeof buf, "%ld", ret);
	return buf;
}

static void child_main(struct gate *g, char **argv)
{
	gate_wait(g);
	if (argv[0]) {
		execv(argv[0], argv);
		_exit(127);
	}
	_exit(strace_sequence());
}

int main(int argc, char **argv)
{
	signal(SIGALRM, tap_alarm);
	alarm(10);
	tracer_pid = getpid();
	struct gate g;
	gate_init(&g);
	fflush(stdout);
	pid_t root = xfork();
	if (root == 0)
		child_main(&g, argv + 1);
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
		    PTRACE_O_TRACEEXEC | PT_O_EXITKILL;
	if (pt(PTRACE_SEIZE, root, 0, opts) != 0) {
		perror("PTRACE_SEIZE");
		return 1;
	}
	struct task *t = task_of(root, 1);
	// T1 is recorded from the sequence's first syscall (getpid) when
	// tracing the built-in sequence, or from its execve otherwise.
	t->recording = 0;
	int exec_mode = argc > 1;
	if (pt(PTRACE_INTERRUPT, root, 0, 0) != 0 || wait_pid(root) != EVENT_STATUS(PT_EVENT_STOP)) {
		fprintf(stderr, "mini_strace: no initial stop\n");
		return 1;
	}
	pt(PTRACE_SYSCALL, root, 0, 0);
	gate_open(&g);

	int root_status = -1, live = 1;
	while (live > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, __WALL);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		t = task_of(pid, 1);
		if (!t)
			break;
		if (t == &tasks[0] && t->live == 1 && ntasks == 1 && pid != root)
			break;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (WIFEXITED(st))
				emit(t, "+++ exited %d", WEXITSTATUS(st));
			else
				emit(t, "+++ killed %d", WTERMSIG(st));
			if (pid == root)
				root_status = st;
			t->live = 0;
			live = 0;
			for (int i = 0; i < ntasks; i++)
				live += tasks[i].live;
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st), ev = STATUS_EVENT(st), inject = 0;
		if (sig == (SIGTRAP | 0x80)) {
			struct sc_info si;
			memset(&si, 0, sizeof si);
			pt(PT_GET_SYSCALL_INFO, pid, sizeof si, (unsigned long)&si);
			if (si.op == PT_SYSCALL_INFO_ENTRY) {
				t->in_syscall = 1;
				t->nr = (long)si.entry.nr;
				if (!exec_mode && !t->recording && t->nr == SYS_getpid)
					t->recording = 1;
				if (t->recording && (t->nr == SYS_exit_group || t->nr == SYS_exit))
					emit(t, "%ld %s = ?", t->nr, sys_name(t->nr));
			} else if (si.op == PT_SYSCALL_INFO_EXIT) {
				// An exit with no entry seen (the syscall the task was
				// in when it was attached) is not printed.
				if (t->in_syscall && t->recording)
					emit(t, "%ld %s = %s", t->nr, sys_name(t->nr), result(t->nr, si.exit.rval));
				t->in_syscall = 0;
			}
		} else if (sig == SIGTRAP && (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK ||
					      ev == PTRACE_EVENT_CLONE)) {
			unsigned long msg = 0;
			pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&msg);
			struct task *n = task_of((pid_t)msg, 1);
			if (n && t->recording)
				emit(t, "+++ %s T%d", ev == PTRACE_EVENT_FORK ? "fork" : ev == PTRACE_EVENT_VFORK ? "vfork" : "clone",
				     task_num((pid_t)msg));
		} else if (sig == SIGTRAP && ev == PTRACE_EVENT_EXEC) {
			if (!t->recording) {
				// exec mode: the trace starts here, with execve's exit.
				t->recording = 1;
				t->in_syscall = 1;
				t->nr = SYS_execve;
			}
			emit(t, "+++ exec");
		} else if (ev == PT_EVENT_STOP) {
			// A new child's first stop, an interrupt or a group-stop:
			// nothing to print; resume it.
		} else {
			if (t->recording)
				emit(t, "--- signal %d", sig);
			inject = sig;
		}
		pt(PTRACE_SYSCALL, pid, 0, inject);
	}

	for (int i = 0; i < ntasks; i++) {
		char *s = tasks[i].out;
		size_t left = tasks[i].len;
		while (left > 0) {
			char *nl = memchr(s, '\n', left);
			size_t l = nl ? (size_t)(nl - s) + 1 : left;
			printf("T%d %.*s", i + 1, (int)l, s);
			s += l;
			left -= l;
		}
	}
	// The trace lines above are compared with a native run; the TAP lines
	// below make the run self-checking.
	int code = root_status >= 0 && WIFEXITED(root_status) ? WEXITSTATUS(root_status) : -1;
	int passed = 0, failed = 0, n = 0;
	printf("# tasks %d\n", ntasks);
	printf("%sok %d - the traced program exits with status 0", code == 0 ? "" : "not ", ++n);
	if (code != 0)
		printf(": got %d", code);
	printf("\n");
	code == 0 ? passed++ : failed++;
	if (!exec_mode) {
		int good = ntasks == 2 && tasks[1].len > 0 && strstr(tasks[1].out, "+++ exited 3") != NULL;
		printf("%sok %d - the forked child is followed as T2 to its exit(3)\n", good ? "" : "not ", ++n);
		good ? passed++ : failed++;
	}
	printf("# passed %d failed %d\n", passed, failed);
	return failed ? 1 : 0;
}

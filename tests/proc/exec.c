/*
 * exec.c - execve/execveat of a static binary (this program re-executes
 * itself with a role argument).
 *
 * Checked after exec, per execve(2) and Linux: fs/exec.c (do_close_on_exec,
 * de_thread, flush_signal_handlers): O_CLOEXEC fds closed and the others
 * kept, handlers reset to SIG_DFL with ignored ones staying ignored, the
 * blocked mask and pending signals kept, the alternate stack cleared, the
 * pid kept, and an exec from a non-leader thread taking the leader's TID.
 * The re-executed image writes one byte per check to an inherited pipe, and
 * the original prints the results.
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

static const char *self;
static char *const envp[] = { "RINGBOX_EXEC_TEST=1", NULL };

/* ---- roles run in the re-executed image ---- */

static int role_fds(char **av)
{
	int out = atoi(av[2]), cloexec_fd = atoi(av[3]), kept_fd = atoi(av[4]);
	char r[3];
	r[0] = fcntl(cloexec_fd, F_GETFD) == -1 && errno == EBADF;
	r[1] = fcntl(kept_fd, F_GETFD) == 0; /* kept, and FD_CLOEXEC clear */
	r[2] = getenv("RINGBOX_EXEC_TEST") != NULL;
	write(out, r, sizeof r);
	return 0;
}

static int role_sig(char **av)
{
	int out = atoi(av[2]);
	pid_t want_pid = atoi(av[3]);
	struct sigaction sa;
	sigset_t m, pend;
	stack_t ss;
	char r[8];
	sigaction(SIGUSR1, NULL, &sa);
	r[0] = sa.sa_handler == SIG_DFL;
	sigaction(SIGUSR2, NULL, &sa);
	r[1] = sa.sa_handler == SIG_IGN;
	sigprocmask(SIG_BLOCK, NULL, &m);
	r[2] = sigismember(&m, SIGTERM) == 1 && sigismember(&m, SIGUSR1) == 0;
	sigpending(&pend);
	r[3] = sigismember(&pend, SIGHUP) == 1;
	sigaltstack(NULL, &ss);
	r[4] = (ss.ss_flags & SS_DISABLE) != 0;
	r[5] = getpid() == want_pid;
	sigaction(SIGPIPE, NULL, &sa);
	r[6] = sa.sa_handler == SIG_DFL; /* was a handler with SA_RESTART */
	unsigned left = alarm(0); /* armed at 8 s before the exec */
	r[7] = left > 0 && left <= 8;
	write(out, r, sizeof r);
	return 0;
}

static int role_thr(char **av)
{
	int out = atoi(av[2]);
	pid_t leader = atoi(av[3]);
	char r[2];
	r[0] = getpid() == leader;
	r[1] = sys_gettid() == leader;
	write(out, r, sizeof r);
	return 0;
}

/* ---- the original image ---- */

static void h(int s) { (void)s; }

static int read_results(int fd, char *r, int n)
{
	int got = 0;
	while (got < n) {
		ssize_t k = read(fd, r + got, n - got);
		if (k <= 0)
			break;
		got += k;
	}
	return got;
}

static int exec_fd;
static char exec_args[4][32];
static void *exec_thread(void *a)
{
	(void)a;
	char *argv[] = { (char *)self, "thr", exec_args[0], exec_args[1], NULL };
	execve(self, argv, envp);
	_exit(98);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "fds") == 0)
		return role_fds(argv);
	if (argc > 1 && strcmp(argv[1], "sig") == 0)
		return role_sig(argv);
	if (argc > 1 && strcmp(argv[1], "thr") == 0)
		return role_thr(argv);
	if (argc > 1 && strcmp(argv[1], "exit7") == 0)
		return 7;
	if (argc > 1 && strcmp(argv[1], "args") == 0) {
		/* argv[2..1001] are "a0".."a999", then an empty string;
		 * envp holds E1=x and an empty-valued E2=. */
		int good = argc == 1003 && argv[argc] == NULL && argv[1002][0] == 0;
		for (int i = 0; good && i < 1000; i++) {
			char want[16];
			snprintf(want, sizeof want, "a%d", i);
			good = strcmp(argv[2 + i], want) == 0;
		}
		const char *e1 = getenv("E1"), *e2 = getenv("E2");
		good = good && e1 && strcmp(e1, "x") == 0 && e2 && e2[0] == 0;
		return good ? 0 : 1;
	}

	tap_init();
	self = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];
	int pfd[2];
	char r[8], a2[16], a3[16], a4[16];

	/* close-on-exec */
	if (pipe(pfd))
		return 1;
	int cfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int kfd = open("/dev/null", O_RDONLY);
	pid_t p = tap_fork();
	if (p == 0) {
		close(pfd[0]);
		snprintf(a2, sizeof a2, "%d", pfd[1]);
		snprintf(a3, sizeof a3, "%d", cfd);
		snprintf(a4, sizeof a4, "%d", kfd);
		char *av[] = { (char *)self, "fds", a2, a3, a4, NULL };
		execve(self, av, envp);
		_exit(99);
	}
	close(pfd[1]);
	memset(r, 0, sizeof r);
	check_eq(read_results(pfd[0], r, 3), 3, "exec'd image reports fd checks");
	ok(r[0], "O_CLOEXEC fd closed by execve");
	ok(r[1], "plain fd kept across execve");
	ok(r[2], "envp passed to the new image");
	check_eq(tap_wait(p), 0, "exec'd image exit status");
	close(pfd[0]);

	/* signal dispositions, mask, pending, altstack */
	if (pipe(pfd))
		return 1;
	p = tap_fork();
	if (p == 0) {
		close(pfd[0]);
		struct sigaction sa = { 0 };
		sa.sa_handler = h;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGPIPE, &sa, NULL);
		signal(SIGUSR2, SIG_IGN);
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGTERM);
		sigaddset(&m, SIGHUP);
		sigprocmask(SIG_BLOCK, &m, NULL);
		kill(getpid(), SIGHUP); /* stays pending */
		static char alt[64 * 1024];
		stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt };
		sigaltstack(&ss, NULL);
		snprintf(a2, sizeof a2, "%d", pfd[1]);
		snprintf(a3, sizeof a3, "%d", getpid());
		alarm(8); /* the alarm survives execve */
		char *av[] = { (char *)self, "sig", a2, a3, NULL };
		execve(self, av, envp);
		_exit(99);
	}
	close(pfd[1]);
	memset(r, 0, sizeof r);
	check_eq(read_results(pfd[0], r, 8), 8, "exec'd image reports signal checks");
	ok(r[0], "caught signal reset to SIG_DFL by execve");
	ok(r[1], "ignored signal stays SIG_IGN across execve");
	ok(r[2], "blocked mask kept across execve");
	ok(r[3], "pending signal kept across execve");
	ok(r[4], "alternate signal stack cleared by execve");
	ok(r[5], "pid kept across execve");
	ok(r[6], "second caught signal reset too");
	ok(r[7], "a pending alarm survives execve");
	check_eq(tap_wait(p), 0, "exec'd image exit status");
	close(pfd[0]);

	/* exec from a non-leader thread: the image takes the leader's TID
	 * and the other threads (the leader included) are gone. */
	if (pipe(pfd))
		return 1;
	p = tap_fork();
	if (p == 0) {
		close(pfd[0]);
		snprintf(exec_args[0], sizeof exec_args[0], "%d", pfd[1]);
		snprintf(exec_args[1], sizeof exec_args[1], "%d", getpid());
		pthread_t t, t2;
		pthread_create(&t2, NULL, (void *(*)(void *))pause, NULL);
		pthread_create(&t, NULL, exec_thread, NULL);
		for (;;)
			pause();
	}
	close(pfd[1]);
	memset(r, 0, sizeof r);
	check_eq(read_results(pfd[0], r, 2), 2, "exec from a thread: new image reports");
	ok(r[0], "exec from a thread: pid unchanged");
	ok(r[1], "exec from a thread: the exec'ing thread takes the leader's TID");
	check_eq(tap_wait(p), 0, "exec from a thread: one exit status, other threads gone");
	close(pfd[0]);

	/* execveat with AT_EMPTY_PATH on an fd of the binary. */
	exec_fd = open(self, O_RDONLY | O_CLOEXEC);
	p = tap_fork();
	if (p == 0) {
		char *av[] = { (char *)self, "exit7", NULL };
		syscall(SYS_execveat, exec_fd, "", av, envp, AT_EMPTY_PATH);
		_exit(99);
	}
	check_eq(tap_wait(p), 7, "execveat(fd, \"\", AT_EMPTY_PATH) runs the binary");
	check_err(syscall(SYS_execveat, exec_fd, "", (char *[]){ NULL }, envp, 0), ENOENT, "execveat empty path without AT_EMPTY_PATH ENOENT");
	check_err(syscall(SYS_execveat, exec_fd, "", (char *[]){ NULL }, envp, AT_EMPTY_PATH | 0x40000), EINVAL, "execveat unknown flag EINVAL");
	close(exec_fd);

	/* argv and envp arrive intact: 1000 arguments and an empty one. */
	p = tap_fork();
	if (p == 0) {
		static char *av[1004];
		static char store[1000][8];
		av[0] = (char *)self;
		av[1] = "args";
		for (int i = 0; i < 1000; i++) {
			snprintf(store[i], sizeof store[i], "a%d", i);
			av[2 + i] = store[i];
		}
		av[1002] = "";
		av[1003] = NULL;
		char *ev[] = { "E1=x", "E2=", NULL };
		execve(self, av, ev);
		_exit(99);
	}
	check_eq(tap_wait(p), 0, "execve passes 1002 arguments (one empty) and the environment intact");
	/* An argument longer than MAX_ARG_STRLEN (32 pages) is E2BIG. */
	{
		size_t n = 33 * 4096;
		char *big = malloc(n + 1);
		memset(big, 'x', n);
		big[n] = 0;
		char *av[] = { (char *)self, big, NULL };
		check_err(execve(self, av, envp), E2BIG, "execve with a 132 KiB argument E2BIG");
		free(big);
	}

	/* Errors leave the caller running. */
	char *nav[] = { "x", NULL };
	check_err(execve("/nonexistent/prog", nav, envp), ENOENT, "execve nonexistent ENOENT");
	check_err(execve("/", nav, envp), EACCES, "execve of a directory EACCES");
	check_err(execve("/dev/null/x", nav, envp), ENOTDIR, "execve through a non-directory ENOTDIR");
	check_err(syscall(SYS_execve, (char *)1, nav, envp), EFAULT, "execve bad path pointer EFAULT");
	check_err(syscall(SYS_execve, self, (char **)1, envp), EFAULT, "execve bad argv pointer EFAULT");
	int mfd = memfd_create("garbage", 0);
	if (mfd < 0) {
		skip("no memfd_create", "execveat of a non-executable format ENOEXEC");
		skip("no memfd_create", "execveat of a file without x bits EACCES");
	} else {
		write(mfd, "\x01\x02garbage-not-elf\n", 19);
		check_err(syscall(SYS_execveat, mfd, "", nav, envp, AT_EMPTY_PATH), ENOEXEC, "execveat of a non-executable format ENOEXEC");
		fchmod(mfd, 0644);
		check_err(syscall(SYS_execveat, mfd, "", nav, envp, AT_EMPTY_PATH), EACCES, "execveat of a file without x bits EACCES");
		close(mfd);
	}
	return tap_done();
}

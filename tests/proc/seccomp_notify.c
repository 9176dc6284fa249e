/*
 * seccomp_notify.c - seccomp user notification (seccomp_unotify(2)): a
 * worker thread installs a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER
 * whose SECCOMP_RET_USER_NOTIF catches getppid, and the main thread, which
 * has no filter, supervises it through the listener: poll, NOTIF_RECV,
 * NOTIF_ID_VALID, NOTIF_SEND (value, error, continue), NOTIF_ADDFD (plain,
 * SETFD with O_CLOEXEC, SEND), a signal restarting the notified call, the
 * killable wait, closing the listener, POLLHUP when no task uses the
 * filter, and the errnos.
 *
 * The threads share one descriptor table, so the listener the worker gets
 * is the supervisor's too.
 *
 * Linux: kernel/seccomp.c (seccomp_do_user_notification(),
 * seccomp_notify_ioctl() and the functions it calls).
 */
#include "tap.h"
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#include "../include/seccomp_abi.h"

static int listener = -1;
static unsigned listen_flags;
static pthread_barrier_t bar;
static volatile pid_t worker_tid;
static volatile long worker_ret;
static volatile int worker_errno;
static volatile int worker_calls = 1;
static volatile sig_atomic_t handled;

static void on_usr1(int s)
{
	(void)s;
	handled++;
}

/* worker installs the filter, hands the listener over and makes its
 * getppid calls; each result is kept for the main thread. */
static void *worker(void *a)
{
	(void)a;
	static struct sf f[] = {
		{0x20, 0, 0, 0},
		{0x15, 0, 1, SYS_getppid},
		{0x06, 0, 0, USER_NOTIF},
		{0x06, 0, 0, ALLOW},
	};
	struct fprog p = {4, f};
	worker_tid = (pid_t)syscall(SYS_gettid);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	listener = (int)syscall(SYS_seccomp, 1, listen_flags, &p);
	pthread_barrier_wait(&bar);
	if (listener < 0)
		return NULL;
	for (int i = 0; i < worker_calls; i++) {
		errno = 0;
		worker_ret = syscall(SYS_getppid);
		worker_errno = errno;
	}
	return NULL;
}

static pthread_t start(unsigned flags, int calls)
{
	pthread_t t;
	listen_flags = flags;
	worker_calls = calls;
	worker_ret = -2;
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, worker, NULL);
	pthread_barrier_wait(&bar);
	pthread_barrier_destroy(&bar);
	return t;
}

/* recv_one waits for a notification and receives it. */
static int recv_one(struct notif *n)
{
	struct pollfd pfd = {listener, POLLIN, 0};
	if (poll(&pfd, 1, 5000) != 1 || !(pfd.revents & POLLIN))
		return -1;
	memset(n, 0, sizeof *n);
	return ioctl(listener, IOC_RECV, n);
}

static long reply(uint64_t id, int64_t val, int32_t error, uint32_t flags)
{
	struct resp r = {id, val, error, flags};
	return ioctl(listener, IOC_SEND, &r);
}

int main(void)
{
	tap_init();
	uint32_t act = USER_NOTIF;
	check_ok(syscall(SYS_seccomp, 2, 0, &act), "GET_ACTION_AVAIL offers SECCOMP_RET_USER_NOTIF");

	/* A value for the call. */
	pthread_t t = start(F_NEW_LISTENER, 1);
	ok(listener >= 0, "NEW_LISTENER returns a descriptor");
	ok(fcntl(listener, F_GETFD) == FD_CLOEXEC, "the listener is close-on-exec");
	struct pollfd pfd = {listener, POLLIN | POLLOUT, 0};
	struct notif n;
	check_ok(recv_one(&n), "NOTIF_RECV after POLLIN");
	ok(n.pid == (uint32_t)worker_tid && n.flags == 0, "the notification names the worker's TID");
	ok(n.data.nr == SYS_getppid && n.data.arch == 0xc000003eu && n.data.ip != 0, "and carries nr, arch and address");
	poll(&pfd, 1, 0);
	ok(pfd.revents == POLLOUT, "received, it makes the listener writable, not readable");
	check_eq(ioctl(listener, IOC_ID_VALID, &n.id), 0, "NOTIF_ID_VALID while the task waits");
	check_eq(reply(n.id, 4242, 0, 0), 0, "NOTIF_SEND");
	pthread_join(t, NULL);
	check_eq(worker_ret, 4242, "the call returns the supervisor's value");
	check_err(ioctl(listener, IOC_ID_VALID, &n.id), ENOENT, "NOTIF_ID_VALID after the reply ENOENT");
	check_err(reply(n.id, 1, 0, 0), ENOENT, "NOTIF_SEND of a finished notification ENOENT");
	pfd.events = POLLIN | POLLOUT;
	poll(&pfd, 1, 1000);
	ok(pfd.revents == POLLHUP, "POLLHUP once no task uses the filter");
	close(listener);

	/* An error, and the errnos of the ioctls. */
	t = start(F_NEW_LISTENER, 1);
	recv_one(&n);
	struct notif dirty = {.id = 1};
	check_err(ioctl(listener, IOC_RECV, &dirty), EINVAL, "NOTIF_RECV into a buffer that is not zeroed EINVAL");
	check_err(ioctl(listener, IOC_RECV, (void *)8), EFAULT, "NOTIF_RECV bad pointer EFAULT");
	check_err(reply(n.id, 5, 0, FLAG_CONTINUE), EINVAL, "CONTINUE with a value EINVAL");
	check_err(reply(n.id, 0, 0, 4), EINVAL, "unknown reply flag EINVAL");
	check_err(reply(n.id + 1000, 0, -EPERM, 0), ENOENT, "NOTIF_SEND of an unknown id ENOENT");
	check_err(ioctl(listener, _IOW('!', 9, uint64_t), &n.id), EINVAL, "unknown ioctl EINVAL");
	char c;
	check_err(read(listener, &c, 1), EINVAL, "read on the listener EINVAL");
	struct addfd af = {n.id, 0, 0, 5, 0};
	check_err(ioctl(listener, IOC_ADDFD, &af), EINVAL, "ADDFD with newfd but no SETFD EINVAL");
	af = (struct addfd){n.id, 0, 9999, 0, 0};
	check_err(ioctl(listener, IOC_ADDFD, &af), EBADF, "ADDFD of a bad source EBADF");
	af = (struct addfd){n.id, 0, 0, 0, O_NONBLOCK};
	check_err(ioctl(listener, IOC_ADDFD, &af), EINVAL, "ADDFD newfd_flags other than O_CLOEXEC EINVAL");
	check_eq(reply(n.id, 0, -EPERM, 0), 0, "NOTIF_SEND with an error");
	pthread_join(t, NULL);
	ok(worker_ret == -1 && worker_errno == EPERM, "the call fails with it");
	close(listener);

	/* Continue. */
	t = start(F_NEW_LISTENER, 1);
	recv_one(&n);
	check_eq(reply(n.id, 0, 0, FLAG_CONTINUE), 0, "NOTIF_SEND with CONTINUE");
	pthread_join(t, NULL);
	check_eq(worker_ret, getppid(), "the call is made");
	close(listener);

	/* Descriptors injected into the task. */
	int pp[2];
	pipe(pp);
	t = start(F_NEW_LISTENER, 3);
	recv_one(&n);
	af = (struct addfd){n.id, 0, (uint32_t)pp[1], 0, 0};
	long fd = ioctl(listener, IOC_ADDFD, &af);
	ok(fd >= 0 && fd != pp[1], "ADDFD returns the new descriptor");
	ok(fd >= 0 && write((int)fd, "x", 1) == 1 && read(pp[0], &c, 1) == 1 && c == 'x', "it is the same pipe");
	close((int)fd);
	reply(n.id, 1, 0, 0);
	recv_one(&n);
	af = (struct addfd){n.id, ADDFD_SETFD, (uint32_t)pp[1], 100, O_CLOEXEC};
	check_eq(ioctl(listener, IOC_ADDFD, &af), 100, "ADDFD with SETFD installs at newfd");
	check_eq(fcntl(100, F_GETFD), FD_CLOEXEC, "with O_CLOEXEC");
	close(100);
	reply(n.id, 2, 0, 0);
	recv_one(&n);
	af = (struct addfd){n.id, ADDFD_SEND, (uint32_t)pp[1], 0, 0};
	fd = ioctl(listener, IOC_ADDFD, &af);
	ok(fd >= 0, "ADDFD with SEND");
	/* Gone (ENOENT) or, while the task has yet to leave, replied
	 * already (EINPROGRESS). */
	errno = 0;
	long r2 = reply(n.id, 3, 0, 0);
	ok(r2 == -1 && (errno == ENOENT || errno == EINPROGRESS), "which was the reply: no other");
	pthread_join(t, NULL);
	check_eq(worker_ret, fd, "the call returns the injected descriptor");
	close((int)fd);
	close(listener);

	/* A signal restarts the notified call, which notifies again. */
	struct sigaction sa = {0};
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	t = start(F_NEW_LISTENER, 1);
	recv_one(&n);
	uint64_t first = n.id;
	syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1);
	check_ok(recv_one(&n), "after a signal the restarted call notifies again");
	ok(n.id != first && handled == 1, "a new notification, after the handler ran");
	check_err(ioctl(listener, IOC_ID_VALID, &first), ENOENT, "the first one is gone");
	reply(n.id, 7, 0, 0);
	pthread_join(t, NULL);
	check_eq(worker_ret, 7, "the restarted call returns the reply");
	close(listener);

	/* WAIT_KILLABLE_RECV: once received, signals wait. */
	handled = 0;
	t = start(F_NEW_LISTENER | F_WAIT_KILLABLE, 1);
	recv_one(&n);
	syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1);
	usleep(50000);
	check_eq(ioctl(listener, IOC_ID_VALID, &n.id), 0, "with WAIT_KILLABLE_RECV a signal does not end the wait");
	reply(n.id, 8, 0, 0);
	pthread_join(t, NULL);
	ok(worker_ret == 8 && handled == 1, "the reply arrives, then the handler runs");
	close(listener);

	/* Closing the listener answers ENOSYS, now and later. */
	t = start(F_NEW_LISTENER, 2);
	recv_one(&n);
	close(listener);
	pthread_join(t, NULL);
	ok(worker_ret == -1 && worker_errno == ENOSYS, "closing the listener fails the waiting call and later ones with ENOSYS");

	/* One listener per chain. */
	pid_t p = tap_fork();
	if (p == 0) {
		static struct sf f[] = {{0x06, 0, 0, ALLOW}};
		struct fprog fp = {1, f};
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (syscall(SYS_seccomp, 1, F_NEW_LISTENER, &fp) < 0)
			_exit(1);
		long r = syscall(SYS_seccomp, 1, F_NEW_LISTENER, &fp);
		_exit(r == -1 && errno == EBUSY ? 0 : 2);
	}
	check_eq(tap_wait(p), 0, "a second listener on the chain EBUSY");
	return tap_done();
}

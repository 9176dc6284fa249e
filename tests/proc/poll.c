/*
 * poll.c - poll and ppoll on pipes: POLLIN, POLLOUT, POLLHUP, POLLERR,
 * POLLNVAL, timeout 0 and small timeouts, wakeup by another process,
 * ppoll's signal mask, and the errnos.
 *
 * Linux: fs/select.c, fs/pipe.c:pipe_poll(); poll(2).
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

static volatile int hits;
static void on_usr1(int s) { (void)s; hits++; }

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(void)
{
	tap_init();
	int p[2];
	pipe(p);
	struct pollfd f[2] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 } };

	check_eq(poll(f, 2, 0), 1, "empty pipe, timeout 0: one fd ready");
	check_eq(f[0].revents, 0, "read end: no POLLIN when empty");
	check_eq(f[1].revents, POLLOUT, "write end: POLLOUT");
	write(p[1], "x", 1);
	check_eq(poll(f, 2, 0), 2, "after a write both are ready");
	check_eq(f[0].revents, POLLIN, "read end: POLLIN");

	int64_t t0 = now_ns();
	f[1].fd = -1; /* negative fds are ignored */
	read(p[0], (char[1]){ 0 }, 1);
	check_eq(poll(f, 2, 30), 0, "nothing ready: a 30 ms timeout expires with 0");
	ok(now_ns() - t0 >= 30 * 1000 * 1000, "poll waited at least its timeout");
	check_eq(f[1].revents, 0, "negative fd: revents 0");

	/* Woken by another process's write. */
	pid_t c = tap_fork();
	if (c == 0) {
		usleep(30000);
		write(p[1], "y", 1);
		_exit(0);
	}
	f[1].fd = p[1];
	f[1].events = 0;
	check_eq(poll(f, 1, 5000), 1, "poll woken by another process's write");
	check_eq(f[0].revents, POLLIN, "POLLIN after the wakeup");
	tap_wait(c);

	/* POLLHUP when the writers are gone; data still readable. */
	close(p[1]);
	check_eq(poll(f, 1, 0), 1, "read end ready after the last writer closed");
	check_eq(f[0].revents, POLLIN | POLLHUP, "data left: POLLIN|POLLHUP");
	read(p[0], (char[1]){ 0 }, 1);
	poll(f, 1, 0);
	check_eq(f[0].revents, POLLHUP, "drained: POLLHUP alone");
	close(p[0]);

	/* POLLERR on the write end without readers. */
	pipe(p);
	close(p[0]);
	struct pollfd w = { p[1], POLLOUT, 0 };
	poll(&w, 1, 0);
	check_eq(w.revents, POLLOUT | POLLERR, "write end without readers: POLLOUT|POLLERR");
	close(p[1]);

	/* A full pipe is not writable. */
	pipe2(p, O_NONBLOCK);
	char buf[4096] = { 0 };
	while (write(p[1], buf, sizeof buf) > 0)
		;
	w.fd = p[1];
	check_eq(poll(&w, 1, 0), 0, "full pipe: no POLLOUT");
	close(p[0]);
	close(p[1]);

	/* POLLNVAL for a closed descriptor. */
	struct pollfd nv = { 999, POLLIN, 0 };
	check_eq(poll(&nv, 1, 0), 1, "closed fd counts as ready");
	check_eq(nv.revents, POLLNVAL, "closed fd: POLLNVAL");

	/* ppoll: the signal blocked outside is let in during the call. */
	signal(SIGUSR1, on_usr1);
	sigset_t blk, none;
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	kill(getpid(), SIGUSR1);
	sigemptyset(&none);
	pipe(p);
	struct pollfd r = { p[0], POLLIN, 0 };
	struct timespec ts = { 2, 0 };
	hits = 0;
	check_err(ppoll(&r, 1, &ts, &none), EINTR, "ppoll with an unblocking mask: EINTR");
	check_eq(hits, 1, "the pending signal was handled during ppoll");
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	check_eq(sigismember(&cur, SIGUSR1), 1, "the mask is restored after ppoll");
	ts.tv_sec = 0;
	ts.tv_nsec = 20 * 1000 * 1000;
	check_eq(ppoll(&r, 1, &ts, NULL), 0, "ppoll 20 ms timeout returns 0");
	write(p[1], "z", 1);
	check_eq(ppoll(&r, 1, NULL, NULL), 1, "ppoll with NULL timeout returns when ready");
	ts.tv_nsec = 1000000000;
	check_err(ppoll(&r, 1, &ts, NULL), EINVAL, "ppoll tv_nsec 1e9 EINVAL");
	check_err(syscall(SYS_poll, (struct pollfd *)8, 1, 0), EFAULT, "poll bad pointer EFAULT");
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	check_err(poll(&r, rl.rlim_cur + 1, 0), EINVAL, "nfds above RLIMIT_NOFILE EINVAL");
	check_eq(poll(NULL, 0, 10), 0, "poll with no fds sleeps and returns 0");
	return tap_done();
}

/*
 * pipe.c - pipes: pipe/pipe2 flags, O_NONBLOCK (EAGAIN), capacity,
 * PIPE_BUF atomicity with concurrent writers, EOF, EPIPE and SIGPIPE,
 * blocked readers and writers woken.
 *
 * Linux: fs/pipe.c; pipe(7).
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>

#ifndef F_GETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif

static volatile int n_pipe;
static void on_pipe(int s) { (void)s; n_pipe++; }

static ssize_t read_full(int fd, char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

int main(void)
{
	tap_init();
	int p[2];
	char buf[8192];

	check_ok(pipe(p), "pipe");
	check_eq(write(p[1], "hello", 5), 5, "write 5 bytes");
	int avail = -1;
	ioctl(p[0], FIONREAD, &avail);
	check_eq(avail, 5, "FIONREAD reports 5 bytes");
	check_eq(read(p[0], buf, sizeof buf), 5, "read returns what is there, not the full request");
	check_eq(memcmp(buf, "hello", 5), 0, "data round trip");
	check_eq(write(p[1], buf, 0), 0, "zero-byte write returns 0");
	check_err(read(p[1], buf, 1), EBADF, "read from the write end EBADF");
	check_err(write(p[0], buf, 1), EBADF, "write to the read end EBADF");
	check_err(lseek(p[0], 0, SEEK_SET), ESPIPE, "lseek on a pipe ESPIPE");
	check_eq(fcntl(p[0], F_GETFD), 0, "plain pipe: no FD_CLOEXEC");
	close(p[0]);
	close(p[1]);

	check_ok(pipe2(p, O_CLOEXEC | O_NONBLOCK), "pipe2 O_CLOEXEC|O_NONBLOCK");
	ok(fcntl(p[0], F_GETFD) == FD_CLOEXEC && fcntl(p[1], F_GETFD) == FD_CLOEXEC, "pipe2 O_CLOEXEC on both ends");
	ok((fcntl(p[0], F_GETFL) & O_NONBLOCK) && (fcntl(p[1], F_GETFL) & O_NONBLOCK), "pipe2 O_NONBLOCK on both ends");
	check_err(read(p[0], buf, 1), EAGAIN, "O_NONBLOCK read of an empty pipe EAGAIN");
	check_eq(fcntl(p[1], F_GETPIPE_SZ), 65536, "default capacity 64 KiB");
	long total = 0;
	memset(buf, 'x', sizeof buf);
	for (;;) {
		/* Whole pages: Linux packs a pipe by page buffers, so the
		 * byte capacity seen depends on the write sizes. */
		ssize_t w = write(p[1], buf, 4096);
		if (w <= 0)
			break;
		total += w;
	}
	check_eq(total, 65536, "a 64 KiB pipe takes 16 page-sized writes");
	check_err(write(p[1], buf, 1), EAGAIN, "O_NONBLOCK write to a full pipe EAGAIN");
	read_full(p[0], buf, 100);
	check_err(write(p[1], buf, 200), EAGAIN, "O_NONBLOCK write of <= PIPE_BUF without room for all of it EAGAIN");
	close(p[0]);
	close(p[1]);
	check_err(pipe2(p, 0x4000000), EINVAL, "pipe2 unknown flag EINVAL");
	check_err(syscall(SYS_pipe2, (int *)8, 0), EFAULT, "pipe2 bad pointer EFAULT");

	pipe(p);
	check_eq(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096, "F_SETPIPE_SZ 4096");
	check_eq(fcntl(p[0], F_GETPIPE_SZ), 4096, "F_GETPIPE_SZ reads it from either end");
	close(p[0]);
	close(p[1]);

	/* EOF once every writer is gone. */
	pipe(p);
	pid_t c = tap_fork();
	if (c == 0) {
		close(p[0]);
		write(p[1], "abc", 3);
		_exit(0);
	}
	close(p[1]);
	check_eq(read_full(p[0], buf, 10), 3, "reader gets the data then EOF after the writer exits");
	check_eq(read(p[0], buf, 10), 0, "read at EOF returns 0");
	tap_wait(c);
	close(p[0]);

	/* EPIPE and SIGPIPE. */
	pipe(p);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	check_err(write(p[1], "x", 1), EPIPE, "write with no reader, SIGPIPE ignored: EPIPE");
	signal(SIGPIPE, on_pipe);
	n_pipe = 0;
	check_err(write(p[1], "x", 1), EPIPE, "write with no reader, SIGPIPE caught: EPIPE");
	check_eq(n_pipe, 1, "SIGPIPE handler ran");
	signal(SIGPIPE, SIG_DFL);
	c = tap_fork();
	if (c == 0) {
		write(p[1], "x", 1);
		_exit(0);
	}
	check_eq(tap_wait(c), 1000 + SIGPIPE, "write with no reader, SIGPIPE default: killed by SIGPIPE");
	close(p[1]);

	/* Blocked reader woken by a write, and by the last close. */
	int go[2];
	pipe(p);
	pipe(go);
	c = tap_fork();
	if (c == 0) {
		close(p[1]);
		write(go[1], "r", 1);
		char b[4];
		ssize_t r1 = read(p[0], b, 4);
		ssize_t r2 = read(p[0], b, 4);
		_exit(r1 == 2 && r2 == 0 ? 0 : 1);
	}
	read(go[0], buf, 1);
	usleep(20000);
	write(p[1], "hi", 2);
	usleep(20000);
	close(p[1]);
	close(p[0]);
	check_eq(tap_wait(c), 0, "blocked reader woken by a write, then by the last writer's close");

	/* Blocked writer woken by a reader draining the pipe. */
	pipe(p);
	c = tap_fork();
	if (c == 0) {
		close(p[0]);
		static char big[65536 + 4096];
		memset(big, 'w', sizeof big);
		ssize_t w = write(p[1], big, sizeof big);
		_exit(w == (ssize_t)sizeof big ? 0 : 1);
	}
	close(p[1]);
	usleep(20000);
	static char sink[65536 + 4096];
	check_eq(read_full(p[0], sink, sizeof sink), (long)sizeof sink, "reader drains a writer blocked on a full pipe");
	check_eq(tap_wait(c), 0, "blocked writer completes its whole write");
	close(p[0]);

	/* PIPE_BUF atomicity: 4 writers, 64 records each of PIPE_BUF bytes. */
	pipe(p);
	pid_t w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = tap_fork();
		if (w[i] == 0) {
			close(p[0]);
			char rec[PIPE_BUF];
			memset(rec, 'A' + i, sizeof rec);
			for (int k = 0; k < 64; k++)
				if (write(p[1], rec, sizeof rec) != (ssize_t)sizeof rec)
					_exit(1);
			_exit(0);
		}
	}
	close(p[1]);
	int counts[4] = { 0 }, torn = 0, recs = 0;
	char rec[PIPE_BUF];
	while (read_full(p[0], rec, sizeof rec) == (ssize_t)sizeof rec) {
		recs++;
		int id = rec[0] - 'A';
		if (id < 0 || id > 3) {
			torn++;
			continue;
		}
		for (int k = 1; k < PIPE_BUF; k++)
			if (rec[k] != rec[0]) {
				torn++;
				break;
			}
		counts[id]++;
	}
	close(p[0]);
	int wst = 0;
	for (int i = 0; i < 4; i++)
		wst |= tap_wait(w[i]);
	check_eq(recs, 256, "PIPE_BUF: all 256 records arrive");
	check_eq(torn, 0, "PIPE_BUF: no record interleaved with another");
	ok(counts[0] == 64 && counts[1] == 64 && counts[2] == 64 && counts[3] == 64, "PIPE_BUF: 64 records from each writer");
	check_eq(wst, 0, "writers exit cleanly");
	return tap_done();
}

/*
 * pipe_pingpong.c - two processes pass one byte back and forth over two
 * pipes, argv[1] (default 20000) times; mean ns per round trip.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 20000);
	int ab[2], ba[2];
	if (pipe(ab) || pipe(ba))
		die("pipe");
	alarm(600);
	pid_t p = fork();
	if (p < 0)
		die("fork");
	char c = 'x';
	if (p == 0) {
		for (long i = 0; i < n; i++) {
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			die("ping-pong");
	}
	int64_t t1 = now_ns();
	int st;
	waitpid(p, &st, 0);
	printf("pipe_pingpong: %ld round trips, %.0f ns/round trip\n", n, (double)(t1 - t0) / (double)n);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

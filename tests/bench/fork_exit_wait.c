/*
 * fork_exit_wait.c - argv[1] (default 2000) rounds of fork, _exit in the
 * child and waitpid in the parent; mean ns per round.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 2000);
	alarm(600);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0)
			die("fork");
		if (p == 0)
			_exit(7);
		int st;
		if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
			die("waitpid");
	}
	int64_t t1 = now_ns();
	printf("fork_exit_wait: %ld rounds, %.0f ns/round\n", n, (double)(t1 - t0) / (double)n);
	return 0;
}

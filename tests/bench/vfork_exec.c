/*
 * vfork_exec.c - argv[1] (default 1000) rounds of vfork + execve of this
 * same static binary with the argument "true" (so it exits at once, a
 * static /bin/true) + waitpid; mean ns per round.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "true") == 0)
		return 0;
	long n = iterations(argc, argv, 1000);
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len < 0)
		die("readlink /proc/self/exe");
	self[len] = 0;
	char *args[] = {self, "true", NULL};
	char *env[] = {NULL};
	alarm(600);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		pid_t p = vfork();
		if (p < 0)
			die("vfork");
		if (p == 0) {
			execve(self, args, env);
			_exit(127);
		}
		int st;
		if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("waitpid");
	}
	int64_t t1 = now_ns();
	printf("vfork_exec: %ld rounds, %.0f ns/round\n", n, (double)(t1 - t0) / (double)n);
	return 0;
}

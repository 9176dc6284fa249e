/*
 * signal_rt.c - argv[1] (default 20000) signals sent to self with tgkill
 * and delivered to a handler, which returns through rt_sigreturn; mean ns
 * per delivery and return.
 */
#include "bench.h"

static volatile long hits;
static void on_usr1(int sig) { (void)sig; hits++; }

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 20000);
	struct sigaction sa = {0};
	sa.sa_handler = on_usr1;
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction");
	pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
	alarm(600);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_tgkill, pid, tid, SIGUSR1);
	int64_t t1 = now_ns();
	printf("signal_rt: %ld signals, %.0f ns/signal\n", n, (double)(t1 - t0) / (double)n);
	return hits == n ? 0 : 1;
}

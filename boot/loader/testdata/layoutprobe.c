// layoutprobe prints where Linux loaded it: the address of its own ELF
// header and the start of its brk area (mm->start_brk, field 47 of
// /proc/self/stat, see proc(5)). It re-executes itself once with
// ADDR_NO_RANDOMIZE so that both are deterministic.
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <unistd.h>

extern char __ehdr_start[];

int main(int argc, char **argv, char **envp) {
	(void)argc;
	int pers = personality(0xffffffff);
	if (pers < 0)
		return 3;
	if (!(pers & ADDR_NO_RANDOMIZE)) {
		if (personality(pers | ADDR_NO_RANDOMIZE) < 0)
			return 4;
		execve("/proc/self/exe", argv, envp);
		return 5;
	}
	char buf[4096];
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f || !fgets(buf, sizeof buf, f))
		return 6;
	// Fields after the command name, which ends with the last ')'.
	char *p = strrchr(buf, ')');
	if (!p)
		return 7;
	unsigned long long v = 0;
	int field = 2;
	for (p++; *p && field < 47; p++)
		if (*p == ' ')
			field++;
	if (sscanf(p, "%llu", &v) != 1)
		return 8;
	printf("%#llx %#llx\n", (unsigned long long)(unsigned long)__ehdr_start, v);
	return 0;
}

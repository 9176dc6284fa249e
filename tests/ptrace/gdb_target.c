// gdb_target.c: the debuggee of mini_gdb (see gdb_seq.h).
//
// "gdb_target --report-fd N" sends its symbol addresses on fd N, stops
// itself for a debugger and prints what it computed. Run alone, it checks
// its undebugged results TAP-style: bp_func(20) = 45, watched = 77.
#include "gdb_seq.h"
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--report-fd") == 0)
		return gdb_target_run(atoi(argv[2]));
	long r = bp_func(20);
	watched = 77;
	int good1 = r == 45, good2 = watched == 77;
	printf("%sok 1 - bp_func(20) = 2*20 + counter(5)\n", good1 ? "" : "not ");
	printf("%sok 2 - watched is written\n", good2 ? "" : "not ");
	printf("# passed %d failed %d\n", good1 + good2, 2 - good1 - good2);
	return good1 && good2 ? 0 : 1;
}

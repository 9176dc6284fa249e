// strace_target.c: the target of mini_strace: runs the fixed syscall
// sequence of strace_seq.h (including a fork) and reports, TAP-style, that
// every result was as expected. mini_strace traces the same sequence (by
// default in a forked copy of itself, or this program given as argv).
#include "strace_seq.h"
#include <stdio.h>

int main(void)
{
	int bad = strace_sequence();
	printf("%sok 1 - the syscall sequence gives the expected results\n# passed %d failed %d\n", bad ? "not " : "",
	       !bad, bad);
	return bad ? 1 : 0;
}

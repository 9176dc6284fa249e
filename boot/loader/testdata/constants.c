// constants prints the header values of the constants the loader and its
// tests define themselves, one "NAME VALUE" per line.
#include <linux/limits.h>
#include <stdio.h>
#include <sys/personality.h>
// PAGE_SIZE is a kernel-internal macro; binfmts.h uses it unexpanded.
#define PAGE_SIZE 4096
#include <linux/binfmts.h>

int main(void) {
	printf("ARG_MAX %d\n", ARG_MAX);
	printf("PATH_MAX %d\n", PATH_MAX);
	printf("MAX_ARG_STRLEN %d\n", MAX_ARG_STRLEN);
	printf("ADDR_NO_RANDOMIZE %d\n", ADDR_NO_RANDOMIZE);
	return 0;
}

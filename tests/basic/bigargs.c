/*
 * bigargs.c - a large initial stack: the harness passes 2000 arguments and
 * a 64 KiB environment string (more than the 16 pages below the stack top
 * that a kernel may pre-fault). The program prints counts and a checksum
 * of every string, so that a lost, truncated or misplaced string shows up,
 * and checks that the strings are laid out as Linux lays them out:
 * contiguous, in order, argv's before envp's, and AT_EXECFN's after them
 * (Linux: fs/exec.c:copy_strings(), fs/binfmt_elf.c:create_elf_tables()).
 */
#include "tap.h"

#include <stdint.h>
#include <sys/auxv.h>

/* fnv folds s (with its NUL) into h. */
static uint64_t fnv(uint64_t h, const char *s)
{
	do {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	} while (*s++);
	return h;
}

int main(int argc, char **argv, char **envp)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t abytes = 0, ebytes = 0;
	int envc = 0, contiguous = 1;
	const char *next = argv[0];

	tap_init();
	/* argv[0] (the path) differs between hosts: not in the checksum. */
	for (int i = 1; i < argc; i++) {
		h = fnv(h, argv[i]);
		abytes += strlen(argv[i]) + 1;
	}
	for (int i = 0; i < argc; i++) {
		contiguous &= argv[i] == next;
		next = argv[i] + strlen(argv[i]) + 1;
	}
	for (char **e = envp; *e; e++, envc++) {
		h = fnv(h, *e);
		ebytes += strlen(*e) + 1;
		contiguous &= *e == next;
		next = *e + strlen(*e) + 1;
	}
	printf("argc %d, %zu bytes of arguments after argv[0]\n", argc, abytes);
	printf("envc %d, %zu bytes of environment\n", envc, ebytes);
	printf("fnv1a64 %016llx\n", (unsigned long long)h);
	ok(contiguous, "argv and envp strings are contiguous and in order");
	const char *execfn = (const char *)getauxval(AT_EXECFN);
	ok(execfn == next, "AT_EXECFN's string follows the last environment string");
	check_eq(((uintptr_t)argv - 8) % 16, 0,
		 "initial stack pointer is 16-byte aligned");
	return tap_done();
}

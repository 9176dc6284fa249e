/*
 * echo.c - prints what the kernel put on the initial stack: argc, argv,
 * envp and the auxiliary vector entries that do not vary between runs, and
 * checks the stack's shape.
 *
 * The auxv is read twice, with getauxval(3) and by walking past the NULL
 * that ends envp (the initial stack is argc, argv[], NULL, envp[], NULL,
 * auxv pairs, AT_NULL - Linux: fs/binfmt_elf.c:create_elf_tables()), and
 * the two must agree. Values that differ from run to run (AT_RANDOM's
 * bytes, AT_SYSINFO_EHDR, the stack addresses) or with the host CPU
 * (AT_HWCAP*, AT_MINSIGSTKSZ) are reported only as present or absent.
 */
#include "tap.h"

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>

/* The keys printed, in this order; the last ones by presence only. */
static const struct {
	unsigned long key;
	const char *name;
	enum { VALUE, STRING, PRESENCE } how;
} keys[] = {
	{AT_PAGESZ, "AT_PAGESZ", VALUE},
	{AT_PHENT, "AT_PHENT", VALUE},
	{AT_PHNUM, "AT_PHNUM", VALUE},
	{AT_UID, "AT_UID", VALUE},
	{AT_EUID, "AT_EUID", VALUE},
	{AT_GID, "AT_GID", VALUE},
	{AT_EGID, "AT_EGID", VALUE},
	{AT_SECURE, "AT_SECURE", VALUE},
	{AT_CLKTCK, "AT_CLKTCK", VALUE},
	{AT_FLAGS, "AT_FLAGS", VALUE},
	{AT_EXECFN, "AT_EXECFN", STRING},
	{AT_PLATFORM, "AT_PLATFORM", STRING},
	{AT_RANDOM, "AT_RANDOM", PRESENCE},
	{AT_PHDR, "AT_PHDR", PRESENCE},
	{AT_ENTRY, "AT_ENTRY", PRESENCE},
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* walk_auxv looks key up in the vector that follows envp on the stack;
 * it returns 0 and sets *found to 0 when the key is absent. */
static unsigned long walk_auxv(Elf64_auxv_t *auxv, unsigned long key,
			       int *found)
{
	*found = 0;
	for (Elf64_auxv_t *a = auxv; a->a_type != AT_NULL; a++) {
		if (a->a_type == key) {
			*found = 1;
			return a->a_un.a_val;
		}
	}
	return 0;
}

/* elf_entry finds this program's ELF header from its program headers (the
 * PT_LOAD that maps file offset 0) and returns e_entry plus the load bias,
 * or 0 if the headers are not where AT_PHDR says. */
static unsigned long elf_entry(void)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
	unsigned long n = getauxval(AT_PHNUM), bias = 0;
	const Elf64_Ehdr *eh = NULL;

	if (ph == NULL)
		return 0;
	/* A static-pie or PIE has PT_PHDR, which gives the bias; a
	 * static ET_EXEC is loaded where it is linked. */
	for (unsigned long i = 0; i < n; i++)
		if (ph[i].p_type == PT_PHDR)
			bias = (unsigned long)ph - ph[i].p_vaddr;
	for (unsigned long i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0)
			eh = (const Elf64_Ehdr *)(ph[i].p_vaddr + bias);
	if (eh == NULL || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    (const char *)eh + eh->e_phoff != (const char *)ph)
		return 0;
	return eh->e_entry + bias;
}

int main(int argc, char **argv, char **envp)
{
	char **p = envp;
	Elf64_auxv_t *auxv;
	int n = 0, agree = 1;

	tap_init();
	printf("argc %d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d] \"%s\"\n", i, argv[i]);
	for (n = 0; p[n] != NULL; n++)
		printf("envp[%d] \"%s\"\n", n, p[n]);
	auxv = (Elf64_auxv_t *)(p + n + 1);

	for (size_t i = 0; i < NKEYS; i++) {
		int found;
		unsigned long w = walk_auxv(auxv, keys[i].key, &found);

		errno = 0;
		unsigned long g = getauxval(keys[i].key);
		int gfound = !(g == 0 && errno == ENOENT);
		if (gfound != found || g != w) {
			agree = 0;
			printf("# %s: getauxval %lu (found %d) stack %lu (found %d)\n",
			       keys[i].name, g, gfound, w, found);
		}
		if (!found) {
			printf("auxv %s absent\n", keys[i].name);
			continue;
		}
		switch (keys[i].how) {
		case VALUE:
			printf("auxv %s %lu\n", keys[i].name, w);
			break;
		case STRING:
			printf("auxv %s \"%s\"\n", keys[i].name,
			       w ? (const char *)w : "(null)");
			break;
		case PRESENCE:
			printf("auxv %s present\n", keys[i].name);
			break;
		}
	}

	ok(agree, "getauxval and the auxv after envp agree");
	check_eq(argv[argc] == NULL, 1, "argv is NULL-terminated");
	check_eq(argv + argc + 1 == envp, 1, "envp follows argv's NULL");
	/* "%rsp ... is 16-byte aligned" at process entry, where it points
	 * at argc - System V ABI AMD64, 3.4.1; argv is the next word. */
	check_eq(((uintptr_t)argv - 8) % 16, 0,
		 "initial stack pointer is 16-byte aligned");
	check_eq(((long *)argv)[-1], argc, "argc sits just below argv");
	check_eq(environ == envp, 1, "environ is the initial envp");
	unsigned long entry = elf_entry();
	ok(entry != 0, "ELF header found through AT_PHDR");
	ok(entry == getauxval(AT_ENTRY), "AT_ENTRY is the ELF header's entry");
	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	if (rnd != NULL) {
		/* Not checked for randomness: 16 readable bytes, and the
		 * kernel did not leave them all zero. */
		int nz = 0;
		for (int i = 0; i < 16; i++)
			nz |= rnd[i];
		ok(nz != 0, "AT_RANDOM points at 16 bytes, not all zero");
	}
	return tap_done();
}

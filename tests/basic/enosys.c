/*
 * enosys.c - system call numbers that Linux does not implement return
 * ENOSYS and leave the program running: numbers past the table's end,
 * 512 (the first x32-only number, not a 64-bit system call), and -1, the
 * number a tracer writes to skip a system call.
 *
 * Linux: arch/x86/entry/common.c:do_syscall_64() - "Out-of-range
 * syscalls return -ENOSYS".
 */
#include "tap.h"

#include <sys/syscall.h>

int main(void)
{
	static const long nrs[] = {1000, 512, 100000, -1};

	tap_init();
	for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
		check_err(syscall(nrs[i], 0, 0, 0, 0, 0, 0), ENOSYS,
			  "syscall %ld", nrs[i]);
	check_ok(syscall(SYS_getpid), "a known system call still works");
	return tap_done();
}

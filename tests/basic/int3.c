/*
 * int3.c - a breakpoint instruction kills the program with SIGTRAP.
 *
 * Linux: arch/x86/kernel/traps.c:do_int3_user() -> do_trap(SIGTRAP).
 */
#include <unistd.h>

int main(void)
{
	static const char msg[] = "executing int3\n";

	write(1, msg, sizeof msg - 1);
	alarm(10);
	__asm__ volatile("int3");
	write(1, "survived\n", 9);
	return 1;
}

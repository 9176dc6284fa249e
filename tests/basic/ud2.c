/*
 * ud2.c - an invalid opcode (#UD) kills the program with SIGILL.
 *
 * Linux: arch/x86/kernel/traps.c:exc_invalid_op() -> do_error_trap(SIGILL).
 */
#include <unistd.h>

int main(void)
{
	static const char msg[] = "executing ud2\n";

	write(1, msg, sizeof msg - 1);
	alarm(10);
	__asm__ volatile("ud2");
	write(1, "survived\n", 9);
	return 1;
}

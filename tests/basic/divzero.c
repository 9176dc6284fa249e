/*
 * divzero.c - an integer division by zero (#DE) kills the program with
 * SIGFPE.
 *
 * Linux: arch/x86/kernel/traps.c:exc_divide_error() -> do_error_trap(SIGFPE).
 */
#include <unistd.h>

int main(void)
{
	static const char msg[] = "dividing by zero\n";
	int q = 1;

	write(1, msg, sizeof msg - 1);
	alarm(10);
	/* In assembly: the compiler may not fold what C calls undefined. */
	__asm__ volatile("xorl %%ecx, %%ecx\n\t"
			 "cltd\n\t"
			 "idivl %%ecx"
			 : "+a"(q)
			 :
			 : "ecx", "edx", "cc");
	write(1, "survived\n", 9);
	return q;
}

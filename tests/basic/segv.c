/*
 * segv.c - a write to an unmapped low address kills the program with
 * SIGSEGV (no handler installed): the harness expects 128+11.
 *
 * Linux: arch/x86/mm/fault.c:bad_area_nosemaphore() -> force_sig_fault().
 */
#include <stdint.h>
#include <unistd.h>

int main(void)
{
	static const char msg[] = "writing to address 16\n";
	/* volatile: the compiler must emit the store it can prove bad. */
	volatile uintptr_t addr = 16;

	/* write(2), not stdio: the line must be out before the fault. */
	write(1, msg, sizeof msg - 1);
	alarm(10);
	*(volatile int *)addr = 1;
	write(1, "survived\n", 9);
	return 1;
}

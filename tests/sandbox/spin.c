// spin.c - prints "ready" and spins in user mode until killed: the
// containment test SIGKILLs ringbox while it runs.
#include <stdio.h>

int main(void)
{
	printf("ready\n");
	fflush(stdout);
	for (volatile unsigned long i = 0;; i++)
		;
}

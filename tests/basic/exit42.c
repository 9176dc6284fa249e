/*
 * exit42.c - the exit status reaches the caller: exit_group(42).
 */
#include <stdlib.h>

int main(void)
{
	exit(42);
}

/*
 * hello.c - the smallest end-to-end program: libc start-up, one buffered
 * write flushed by exit, exit status 0.
 */
#include <stdio.h>

int main(void)
{
	puts("hello, world");
	return 0;
}

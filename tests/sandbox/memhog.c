// memhog.c - allocates and touches memory until it fails. Never run it
// natively: it is for ringbox's containment test (tests/e2e), which runs it
// with a small --memory and checks that the program dies alone, leaving no
// stub process behind.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	for (long mib = 0;; mib++) {
		char *p = malloc(1 << 20);
		if (p == NULL) {
			printf("malloc failed after %ld MiB\n", mib);
			return 3;
		}
		memset(p, 0x5a, 1 << 20);
	}
}

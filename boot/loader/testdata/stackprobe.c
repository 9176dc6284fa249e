// stackprobe dumps its initial stack, from the rsp at entry up to the top of
// the stack, to stdout, so that a test can compare Linux's layout byte by
// byte with loader.BuildStack's. It runs without libc so that nothing
// touches the stack before the dump, and re-executes itself once with
// ADDR_NO_RANDOMIZE so that Linux leaves out its random stack offsets.
// It then copies /proc/self/stat to stderr, for mm->arg_start and friends.
//
// Build: gcc -static -no-pie -nostdlib -ffreestanding -fno-stack-protector -O2

typedef unsigned long u64;

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_execve 59
#define SYS_exit 60
#define SYS_personality 135
#define ADDR_NO_RANDOMIZE 0x0040000
#define AT_NULL 0
#define AT_EXECFN 31

static long sys3(long nr, long a, long b, long c) {
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

static void die(int code) {
	for (;;)
		sys3(SYS_exit, code, 0, 0);
}

static void writeall(int fd, const char *p, const char *end) {
	while (p < end) {
		long n = sys3(SYS_write, fd, (long)p, end - p);
		if (n <= 0)
			die(6);
		p += n;
	}
}

__attribute__((used)) void probe(u64 *sp) {
	u64 argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	char **e = envp;
	while (*e)
		e++;
	u64 *auxv = (u64 *)(e + 1);
	char *execfn = 0;
	for (u64 *a = auxv; a[0] != AT_NULL; a += 2)
		if (a[0] == AT_EXECFN)
			execfn = (char *)a[1];
	if (!execfn)
		die(2);

	long pers = sys3(SYS_personality, 0xffffffff, 0, 0);
	if (pers < 0)
		die(3);
	if (!(pers & ADDR_NO_RANDOMIZE)) {
		if (sys3(SYS_personality, pers | ADDR_NO_RANDOMIZE, 0, 0) < 0)
			die(4);
		sys3(SYS_execve, (long)execfn, (long)argv, (long)envp);
		die(5);
	}

	// The execfn string ends one NULL word below the top.
	char *end = execfn;
	while (*end)
		end++;
	char *top = end + 1 + sizeof(u64);
	writeall(1, (char *)sp, top);

	static char stat[4096];
	long fd = sys3(SYS_open, (long)"/proc/self/stat", 0, 0);
	if (fd < 0)
		die(7);
	long n = sys3(SYS_read, fd, (long)stat, sizeof stat);
	if (n <= 0)
		die(8);
	writeall(2, stat, stat + n);
	die(0);
}

__attribute__((naked, noreturn)) void _start(void) {
	__asm__("mov %rsp, %rdi\n"
		"and $-16, %rsp\n"
		"call probe\n"
		"ud2\n");
}

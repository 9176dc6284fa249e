// procfs.c: what /proc shows of tracing: State "t (tracing stop)", TracerPid,
// and /proc/[pid]/mem for a tracer (read, write into read-only text) and for
// processes without access.
//
// Linux: fs/proc/array.c:task_state() (task_state_array), fs/proc/base.c:
// mem_open() (PTRACE_MODE_ATTACH), mem_rw() (FOLL_FORCE); proc(5).
#include "tap.h"
#include <sys/mman.h>

long var = 0x1111222233334444L;
extern char ro_code[];
int ro_fn(void);
__asm__(".text\n.globl ro_fn\n.globl ro_code\nro_fn:\nro_code:\n  mov $1, %eax\n  ret\n");
static char *holey; // a page followed by an unmapped page

static int t_check(void *arg)
{
	(void)arg;
	kill(getpid(), SIGSTOP);
	return (var == 0x5555666677778888L ? 0 : 1) | (ro_fn() == 9 ? 0 : 2);
}

static int open_mem(pid_t pid, int flags)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	return open(path, flags);
}

int main(void)
{
	tap_init();
	char buf[64];
	holey = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(holey + 4096, 4096);

	// Status lines.
	pid_t c = spawn_traceme(t_check, NULL);
	check_eq(proc_state(c), 't', "a tracee in a ptrace-stop has State t");
	ok(proc_field(c, "State", buf, sizeof buf) && strcmp(buf, "t (tracing stop)") == 0,
	   "the State line reads \"t (tracing stop)\"", "got \"%s\"", buf);
	check_eq(proc_tracer(c) == getpid(), 1, "TracerPid is the tracer's pid");
	check_eq(proc_tracer(getpid()), 0, "an untraced process has TracerPid 0");
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // t_check's own stop

	// /proc/pid/mem of the tracee.
	int fd = open_mem(c, O_RDWR);
	check_eq(fd >= 0, 1, "the tracer opens /proc/pid/mem read-write");
	long w = 0;
	check_eq(pread(fd, &w, sizeof w, (off_t)(uintptr_t)&var), 8, "pread of /proc/pid/mem reads 8 bytes");
	check_hex(w, 0x1111222233334444L, "the tracee's variable");
	w = 0x5555666677778888L;
	check_eq(pwrite(fd, &w, sizeof w, (off_t)(uintptr_t)&var), 8, "pwrite of /proc/pid/mem writes it");
	unsigned char code[6];
	memcpy(code, ro_code, 6);
	code[1] = 9; // mov $9, %eax
	check_eq(pwrite(fd, code, 6, (off_t)(uintptr_t)ro_code), 6, "pwrite into read-only text (FOLL_FORCE)");
	check_err(pread(fd, &w, sizeof w, (off_t)(uintptr_t)holey + 4096), EIO, "pread of an unmapped address is EIO");
	check_eq(pread(fd, buf, 16, (off_t)(uintptr_t)holey + 4088), 8, "a read crossing into a hole is short");
	close(fd);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees both writes");
	check_eq(ro_fn(), 1, "the tracer's own text is unchanged");

	// Group-stop of an untraced child; detach clears TracerPid.
	c = spawn_sleeper();
	kill(c, SIGSTOP);
	int st;
	waitpid(c, &st, WUNTRACED);
	ok(proc_field(c, "State", buf, sizeof buf) && strcmp(buf, "T (stopped)") == 0,
	   "a stopped untraced child reads \"T (stopped)\"", "got \"%s\"", buf);
	kill(c, SIGCONT);
	attach_stopped(c);
	pt(PTRACE_DETACH, c, 0, 0);
	check_eq(proc_tracer(c), 0, "TracerPid is 0 again after detach");

	// Access without being the tracer.
	pid_t victim = c;
	pid_t t = xfork();
	if (t == 0) {
		if (drop_creds(NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, NOBODY, 1) != 0)
			_exit(100);
		int f = open_mem(victim, O_RDONLY);
		_exit(f >= 0 ? 0 : errno);
	}
	st = wait_pid(t);
	ok(WEXITSTATUS(st) == EACCES, "an unprivileged process cannot open a root process's mem: EACCES",
	   "got %s", tap_errname(WEXITSTATUS(st)));
	fd = open_mem(victim, O_RDONLY);
	check_eq(fd >= 0, 1, "root opens an untraced process's mem (CAP_SYS_PTRACE)");
	w = 0;
	ok(pread(fd, &w, 8, (off_t)(uintptr_t)&var) == 8 && w == 0x1111222233334444L, "and reads it", "got %#lx", w);
	close(fd);
	kill_reap(victim);

	// A mem fd keeps the mm it was opened for: after the process exits,
	// reads return 0 (end of file).
	c = spawn_sleeper();
	fd = open_mem(c, O_RDONLY);
	kill_reap(c);
	check_eq(pread(fd, &w, 8, (off_t)(uintptr_t)&var), 0, "mem of an exited process reads 0 bytes");
	close(fd);

	return tap_done();
}

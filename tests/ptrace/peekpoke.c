// peekpoke.c: PTRACE_PEEKTEXT/PEEKDATA/POKETEXT/POKEDATA and PEEKUSER bounds.
//
// PEEK* as a raw syscall store the word at data and return 0 (the libc
// wrapper returns the word instead). POKE* use FOLL_FORCE: they write
// read-only mappings, breaking copy-on-write so the change stays private.
//
// Linux: kernel/ptrace.c:generic_ptrace_peekdata(), generic_ptrace_pokedata(),
// mm/memory.c:access_remote_vm(); arch/x86/kernel/ptrace.c:arch_ptrace()
// (PTRACE_PEEKUSR); ptrace(2) "PTRACE_PEEKTEXT", "C library/kernel differences".
#include "tap.h"
#include <sys/mman.h>

// data_words[1]'s low byte follows data_word[0] for the unaligned peek.
long data_words[2] = {0x1122334455667788L, 0xaaL};
#define data_word data_words[0]
// The kernel's struct user (arch/x86/include/asm/user_64.h) ends with
// error_code and fault_address after u_debugreg: 16 bytes more than libc's.
#define KERNEL_USER_SIZE (sizeof(struct user) + 16)
static const volatile long ro_word = 0x0102030405060708L;
static char *page2; // a mapped page followed by an unmapped one

// text_fn returns 1; its code is "mov $1,%eax; ret" (b8 01 00 00 00 c3).
extern char text_fn_code[];
int text_fn(void);
__asm__(".text\n.globl text_fn\n.globl text_fn_code\ntext_fn:\ntext_fn_code:\n"
	"  mov $1, %eax\n  ret\n  nop\n  nop\n");

static int t_check(void *arg)
{
	(void)arg;
	// The tracer changed data_word, ro_word and text_fn in this stop.
	kill(getpid(), SIGSTOP);
	int bad = 0;
	if (data_word != 0x55aa55aa55aa55aaL)
		bad |= 1;
	if (ro_word != 0x0a0b0c0d0e0f1011L)
		bad |= 2;
	if (text_fn() != 2)
		bad |= 4;
	return bad;
}

// sibling stays stopped until the tracee's text was poked, then checks it
// still sees the original text: the poke is private to the tracee.
static int t_sibling(void *arg)
{
	(void)arg;
	kill(getpid(), SIGSTOP);
	return text_fn() == 1 && ro_word == 0x0102030405060708L ? 0 : 1;
}

int main(void)
{
	tap_init();
	long w = 0;
	long r;

	page2 = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(page2 + 4096, 4096);
	memset(page2, 0x5a, 4096);

	pid_t sib = xfork();
	if (sib == 0)
		_exit(t_sibling(NULL));
	int st;
	waitpid(sib, &st, WUNTRACED);

	pid_t c = spawn_traceme(t_check, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // t_check's SIGSTOP

	// PEEKDATA and its ABI.
	r = pt(PTRACE_PEEKDATA, c, (unsigned long)&data_word, (unsigned long)&w);
	check_eq(r, 0, "raw PTRACE_PEEKDATA returns 0");
	check_hex(w, 0x1122334455667788L, "raw PTRACE_PEEKDATA stores the word at data");
	errno = 0;
	r = ptrace(PTRACE_PEEKDATA, c, &data_word, 0);
	ok(r == 0x1122334455667788L && errno == 0, "libc ptrace(PEEKDATA) returns the word", "got %#lx", r);
	pt(PTRACE_PEEKDATA, c, (unsigned long)&data_word + 1, (unsigned long)&w);
	check_hex(w, (long)0xaa11223344556677UL, "an unaligned PEEKDATA reads the bytes there");

	// PEEKTEXT reads code.
	pt(PTRACE_PEEKTEXT, c, (unsigned long)text_fn_code, (unsigned long)&w);
	long mine;
	memcpy(&mine, text_fn_code, sizeof mine);
	check_hex(w, mine, "PTRACE_PEEKTEXT reads the tracee's code");

	// Errors.
	check_err(pt(PTRACE_PEEKDATA, c, 0, (unsigned long)&w), EIO, "PEEKDATA at address 0 is EIO");
	check_err(pt(PTRACE_PEEKDATA, c, (unsigned long)page2 + 4092, (unsigned long)&w), EIO,
		  "PEEKDATA of a word straddling into an unmapped page is EIO");
	check_err(pt(PTRACE_POKEDATA, c, 0, 1), EIO, "POKEDATA at address 0 is EIO");
	check_err(pt(PTRACE_PEEKDATA, c, (unsigned long)&data_word, 8), EFAULT,
		  "raw PEEKDATA with a bad data pointer is EFAULT");
	pt(PTRACE_PEEKDATA, c, (unsigned long)page2 + 4088, (unsigned long)&w);
	check_hex(w, 0x5a5a5a5a5a5a5a5aL, "PEEKDATA of the last word of a page");

	// POKEDATA of data and of a read-only mapping, POKETEXT of text.
	check_eq(pt(PTRACE_POKEDATA, c, (unsigned long)&data_word, 0x55aa55aa55aa55aaL), 0,
		 "POKEDATA of a writable word");
	check_eq(pt(PTRACE_POKEDATA, c, (unsigned long)&ro_word, 0x0a0b0c0d0e0f1011L), 0,
		 "POKEDATA of a read-only word (FOLL_FORCE)");
	long code = mine;
	((unsigned char *)&code)[1] = 2; // mov $2, %eax
	check_eq(pt(PTRACE_POKETEXT, c, (unsigned long)text_fn_code, code), 0, "POKETEXT into read-only text");
	pt(PTRACE_PEEKTEXT, c, (unsigned long)text_fn_code, (unsigned long)&w);
	check_hex(w, code, "PEEKTEXT reads the poked code back");

	// The tracee sees all three changes; its sibling and we do not.
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees the poked data, rodata and code");
	kill(sib, SIGCONT);
	check_status(wait_pid(sib), EXITED(0), "a forked sibling still runs the original text");
	check_eq(text_fn() * 10 + (ro_word == 0x0102030405060708L), 11, "the tracer's own text is unchanged");

	// PEEKUSER bounds over struct user.
	c = spawn_traceme(NULL, NULL);
	struct user_regs_struct regs;
	getregs(c, &regs);
	pt(PTRACE_PEEKUSER, c, offsetof(struct user_regs_struct, rip), (unsigned long)&w);
	check_hex(w, regs.rip, "PEEKUSER at offsetof(rip) is rip");
	check_err(pt(PTRACE_PEEKUSER, c, 3, (unsigned long)&w), EIO, "PEEKUSER at an unaligned offset is EIO");
	check_err(pt(PTRACE_PEEKUSER, c, KERNEL_USER_SIZE, (unsigned long)&w), EIO,
		  "PEEKUSER past the kernel's struct user is EIO");
	check_err(pt(PTRACE_POKEUSER, c, KERNEL_USER_SIZE, 0), EIO,
		  "POKEUSER past the kernel's struct user is EIO");
	w = -1;
	pt(PTRACE_PEEKUSER, c, offsetof(struct user, u_tsize), (unsigned long)&w);
	check_eq(w, 0, "PEEKUSER of a non-register field of struct user reads 0");
	kill_reap(c);

	return tap_done();
}

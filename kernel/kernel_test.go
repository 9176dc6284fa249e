package kernel

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// newTestKernel returns a kernel on the fake platform with one task whose
// address space has a read-write vma at dataAddr, and the read end of a
// pipe behind the task's stdout.
func newTestKernel(t *testing.T, script func(c *fakeContext, st *arch.State) platform.Event) (*Kernel, *Task, *os.File) {
	t.Helper()
	mf, err := memfile.New("test", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p := &fakePlatform{script: script}
	k, err := New(Config{Platform: p, MemoryFile: mf, Stdio: [3]int{-1, int(w.Fd()), -1}})
	if err != nil {
		t.Fatal(err)
	}
	task, err := k.newTask(1, nil)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	mm, err := k.newMM()
	if err != nil {
		t.Fatal(err)
	}
	mm.mmapBase = 0x7f0000000000
	mm.insertLocked(&vma{start: dataAddr, end: dataAddr + 16*pageSize, perms: platform.ReadWrite, maxPerms: platform.AnyAccess})
	task.mm = mm
	k.tasks[1] = task
	k.init = task.tg
	return k, task, r
}

const dataAddr = 0x400000

func TestWriteAndExitGroup(t *testing.T) {
	msg := []byte("hello, world\n")
	k, task, out := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		switch c.step {
		case 0:
			return syscallEvent(st, unix.SYS_WRITE, 1, dataAddr, uint64(len(msg)))
		case 1:
			if got := int64(st.Regs.Rax); got != int64(len(msg)) {
				return syscallEvent(st, unix.SYS_EXIT_GROUP, 100+uint64(-got))
			}
			return syscallEvent(st, unix.SYS_EXIT_GROUP, 42)
		}
		panic("ran past exit_group")
	})
	if err := task.CopyOut(dataAddr, msg); err != nil {
		t.Fatal(err)
	}
	task.start()
	st := k.Wait()
	if got, want := st, (ExitStatus{Code: 42}); got != want {
		t.Fatalf("exit status = %v, want %v", got, want)
	}
	buf := make([]byte, 100)
	n, _ := out.Read(buf)
	if got := string(buf[:n]); got != string(msg) {
		t.Errorf("stdout = %q, want %q", got, msg)
	}
}

// runSyscalls runs a scripted program that makes the given calls in order
// and returns their results.
func runSyscalls(t *testing.T, setup func(task *Task), calls [][]uint64) []int64 {
	t.Helper()
	var results []int64
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		if c.step > 0 {
			results = append(results, int64(st.Regs.Rax))
		}
		if c.step < len(calls) {
			return syscallEvent(st, calls[c.step][0], calls[c.step][1:]...)
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	if setup != nil {
		setup(task)
	}
	task.start()
	k.Wait()
	return results
}

func errno(e unix.Errno) int64 { return -int64(e) }

func TestSyscallErrnos(t *testing.T) {
	const kernelHalf = 0xffff800000000000
	tests := []struct {
		name string
		call []uint64
		want int64
	}{
		{"unknown syscall", []uint64{1000}, errno(unix.ENOSYS)},
		{"unimplemented but known", []uint64{unix.SYS_ACCT, 0}, errno(unix.ENOSYS)},
		{"write bad fd", []uint64{unix.SYS_WRITE, 77, dataAddr, 1}, errno(unix.EBADF)},
		{"write negative fd", []uint64{unix.SYS_WRITE, ^uint64(0), dataAddr, 1}, errno(unix.EBADF)},
		{"write kernel pointer", []uint64{unix.SYS_WRITE, 1, kernelHalf, 4}, errno(unix.EFAULT)},
		{"write unmapped", []uint64{unix.SYS_WRITE, 1, 0x10000, 4}, errno(unix.EFAULT)},
		{"write zero length", []uint64{unix.SYS_WRITE, 1, 0, 0}, 0},
		{"read bad fd", []uint64{unix.SYS_READ, 5, dataAddr, 1}, errno(unix.EBADF)},
		{"close bad fd", []uint64{unix.SYS_CLOSE, 9}, errno(unix.EBADF)},
		{"mmap zero length", []uint64{unix.SYS_MMAP, 0, 0, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS, ^uint64(0), 0}, errno(unix.EINVAL)},
		{"mmap no type", []uint64{unix.SYS_MMAP, 0, 4096, unix.PROT_READ, unix.MAP_ANONYMOUS, ^uint64(0), 0}, errno(unix.EINVAL)},
		{"mmap huge", []uint64{unix.SYS_MMAP, 0, 1 << 62, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS, ^uint64(0), 0}, errno(unix.ENOMEM)},
		{"mmap fixed unaligned", []uint64{unix.SYS_MMAP, 0x500001, 4096, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, ^uint64(0), 0}, errno(unix.EINVAL)},
		{"mmap fixed noreplace taken", []uint64{unix.SYS_MMAP, dataAddr, 4096, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0}, errno(unix.EEXIST)},
		{"mmap fixed below min", []uint64{unix.SYS_MMAP, 0x1000, 4096, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, ^uint64(0), 0}, errno(unix.EPERM)},
		{"mmap file bad fd", []uint64{unix.SYS_MMAP, 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE, 55, 0}, errno(unix.EBADF)},
		{"mmap unaligned offset", []uint64{unix.SYS_MMAP, 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS, ^uint64(0), 3}, errno(unix.EINVAL)},
		{"munmap unaligned", []uint64{unix.SYS_MUNMAP, dataAddr + 1, 4096}, errno(unix.EINVAL)},
		{"munmap zero", []uint64{unix.SYS_MUNMAP, dataAddr, 0}, errno(unix.EINVAL)},
		{"munmap kernel half", []uint64{unix.SYS_MUNMAP, kernelHalf, 4096}, errno(unix.EINVAL)},
		{"mprotect unmapped", []uint64{unix.SYS_MPROTECT, 0x900000, 4096, unix.PROT_READ}, errno(unix.ENOMEM)},
		{"mprotect bad prot", []uint64{unix.SYS_MPROTECT, dataAddr, 4096, 0x100}, errno(unix.EINVAL)},
		{"arch_prctl bad code", []uint64{unix.SYS_ARCH_PRCTL, 0x9999, 0}, errno(unix.EINVAL)},
		{"arch_prctl kernel fs", []uint64{unix.SYS_ARCH_PRCTL, archSetFS, kernelHalf}, errno(unix.EPERM)},
		{"arch_prctl get fs fault", []uint64{unix.SYS_ARCH_PRCTL, archGetFS, 0}, errno(unix.EFAULT)},
		{"uname fault", []uint64{unix.SYS_UNAME, kernelHalf}, errno(unix.EFAULT)},
		{"set_robust_list bad len", []uint64{unix.SYS_SET_ROBUST_LIST, dataAddr, 23}, errno(unix.EINVAL)},
		{"rt_sigaction SIGKILL", []uint64{unix.SYS_RT_SIGACTION, uint64(unix.SIGKILL), dataAddr, 0, 8}, errno(unix.EINVAL)},
		{"rt_sigaction bad signal", []uint64{unix.SYS_RT_SIGACTION, 65, 0, 0, 8}, errno(unix.EINVAL)},
		{"rt_sigaction bad size", []uint64{unix.SYS_RT_SIGACTION, 10, 0, 0, 4}, errno(unix.EINVAL)},
		{"rt_sigprocmask bad how", []uint64{unix.SYS_RT_SIGPROCMASK, 7, dataAddr, 0, 8}, errno(unix.EINVAL)},
		{"clock_gettime bad clock", []uint64{unix.SYS_CLOCK_GETTIME, 99, dataAddr}, errno(unix.EINVAL)},
		{"clock_gettime fault", []uint64{unix.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, kernelHalf}, errno(unix.EFAULT)},
		{"getrandom bad flags", []uint64{unix.SYS_GETRANDOM, dataAddr, 4, 0x80}, errno(unix.EINVAL)},
		{"getrandom fault", []uint64{unix.SYS_GETRANDOM, kernelHalf, 4, 0}, errno(unix.EFAULT)},
		{"prlimit bad resource", []uint64{unix.SYS_PRLIMIT64, 0, 99, 0, dataAddr}, errno(unix.EINVAL)},
		{"prlimit no such pid", []uint64{unix.SYS_PRLIMIT64, 4242, unix.RLIMIT_NOFILE, 0, dataAddr}, errno(unix.ESRCH)},
		{"ioctl bad fd", []uint64{unix.SYS_IOCTL, 40, unix.TCGETS, dataAddr}, errno(unix.EBADF)},
		{"ioctl unknown request", []uint64{unix.SYS_IOCTL, 1, 0x1234, dataAddr}, errno(unix.ENOTTY)},
		{"writev too many", []uint64{unix.SYS_WRITEV, 1, dataAddr, 1025}, errno(unix.EINVAL)},
		{"writev fault", []uint64{unix.SYS_WRITEV, 1, kernelHalf, 1}, errno(unix.EFAULT)},
		{"readlink unknown", []uint64{unix.SYS_READLINK, dataAddr + 8*pageSize, dataAddr, 64}, errno(unix.ENOENT)},
		{"getpid", []uint64{unix.SYS_GETPID}, 1},
		{"getppid of init", []uint64{unix.SYS_GETPPID}, 0},
	}
	calls := make([][]uint64, len(tests))
	for i, tc := range tests {
		calls[i] = tc.call
	}
	got := runSyscalls(t, func(task *Task) {
		task.CopyOut(dataAddr+8*pageSize, []byte("/nonexistent\x00"))
	}, calls)
	if len(got) != len(tests) {
		t.Fatalf("got %d results, want %d", len(got), len(tests))
	}
	for i, tc := range tests {
		if got[i] != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got[i], tc.want)
		}
	}
}

func TestMmapMunmapBrk(t *testing.T) {
	anon := uint64(unix.MAP_PRIVATE | unix.MAP_ANONYMOUS)
	got := runSyscalls(t, nil, [][]uint64{
		{unix.SYS_MMAP, 0, 3 * pageSize, unix.PROT_READ | unix.PROT_WRITE, anon, ^uint64(0), 0},
		{unix.SYS_MMAP, 0x600000, pageSize, unix.PROT_READ, anon | unix.MAP_FIXED, ^uint64(0), 0},
		{unix.SYS_MUNMAP, 0x600000, pageSize},
		{unix.SYS_MUNMAP, 0x600000, pageSize}, // unmapping nothing is fine
		{unix.SYS_MPROTECT, dataAddr, pageSize, unix.PROT_READ},
	})
	want := []int64{0x7f0000000000 - 3*pageSize, 0x600000, 0, 0, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: got %#x, want %#x", i, got[i], want[i])
		}
	}
}

func TestFaultPopulatesAndSegv(t *testing.T) {
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		switch c.step {
		case 0:
			return platform.Event{Kind: platform.EventFault, Addr: dataAddr + 5, Access: platform.Write, NotPresent: true}
		case 1:
			return platform.Event{Kind: platform.EventFault, Addr: 0x10, Access: platform.Read, NotPresent: true}
		}
		panic("ran after SIGSEGV")
	})
	task.start()
	st := k.Wait()
	if got, want := st, (ExitStatus{Signal: unix.SIGSEGV}); got != want {
		t.Fatalf("status = %v, want %v", got, want)
	}
	p := k.cfg.Platform.(*fakePlatform)
	if len(p.maps) == 0 || p.maps[0].addr != dataAddr || p.maps[0].at != platform.ReadWrite {
		t.Fatalf("first mapping = %+v, want page at %#x rw", p.maps, dataAddr)
	}
	if got, want := p.maps[0].fr.Length(), uint64(faultAround*pageSize); got != want {
		t.Errorf("fault-around length = %d, want %d", got, want)
	}
}

func TestExceptionSignals(t *testing.T) {
	tests := []struct {
		vec  arch.Vector
		want unix.Signal
	}{
		{arch.VectorDE, unix.SIGFPE},
		{arch.VectorUD, unix.SIGILL},
		{arch.VectorBP, unix.SIGTRAP},
		{arch.VectorGP, unix.SIGSEGV},
		{arch.VectorDB, unix.SIGTRAP},
		{arch.VectorAC, unix.SIGBUS},
		{arch.VectorXM, unix.SIGFPE},
	}
	for _, tc := range tests {
		k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
			return platform.Event{Kind: platform.EventException, Vector: tc.vec}
		})
		task.start()
		if got := k.Wait(); got.Signal != tc.want {
			t.Errorf("vector %d: killed by %v, want %v", tc.vec, got.Signal, tc.want)
		}
	}
}

func TestUnameAndArchPrctl(t *testing.T) {
	var fs uint64
	var uts unix.Utsname
	var task *Task
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		switch c.step {
		case 0:
			return syscallEvent(st, unix.SYS_ARCH_PRCTL, archSetFS, 0x1234000)
		case 1:
			fs = st.Regs.FsBase
			return syscallEvent(st, unix.SYS_UNAME, dataAddr)
		case 2:
			task.CopyIn(dataAddr, utsnameBytes(&uts))
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	task.start()
	k.Wait()
	if fs != 0x1234000 {
		t.Errorf("FsBase = %#x, want 0x1234000", fs)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{{"sysname", uts.Sysname[:], "Linux"}, {"release", uts.Release[:], utsRelease}, {"machine", uts.Machine[:], "x86_64"}} {
		if got := unix.ByteSliceToString(c.got); got != c.want {
			t.Errorf("uname %s = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestKernelImportsNoMechanism keeps the layering of DESIGN.md: the kernel
// knows the platform interface, never KVM or ptrace.
func TestKernelImportsNoMechanism(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ringbox/ringbox/kernel").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"ringbox/vmm", "ringbox/platform/ptrace", "ringbox/guest", "gokvm"} {
			if strings.Contains(dep, banned) {
				t.Errorf("kernel depends on %s", dep)
			}
		}
	}
}

package ptrace

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
	"github.com/ringbox/ringbox/platform/platformtest"
)

// newTestPlatform is the platformtest constructor for ptrace.
func newTestPlatform(t *testing.T, mf *memfile.MemoryFile) platform.Platform {
	t.Helper()
	p, err := New(mf, Options{CPUs: 2})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	platformtest.Run(t, newTestPlatform)
}

// progSyscallLoop makes system calls forever.
var progSyscallLoop = []byte{
	0x0f, 0x05, // 0x0: syscall
	0xeb, 0xfc, // 0x2: jmp 0x0
}

// BenchmarkSyscallRoundTrip measures one trapped system call through
// Switch: the program's syscall, the event, a return value written back
// (as getppid would), and the program running on to its next syscall.
// Compare with a C tracer doing PTRACE_SYSEMU, waitpid, PTRACE_GETREGS
// and PTRACE_SETREGS per call (tests/bench/sysemu_floor.c) on the same
// machine in the same run.
func BenchmarkSyscallRoundTrip(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := newFixture(b)
	defer f.close()
	as, c := f.as, f.ctx
	st := f.state(progSyscallLoop)
	if _, err := c.Switch(as, st); err != nil {
		b.Fatalf("Switch: %v", err)
	}
	// On-CPU time of the tracer and the stub thread, which unlike wall
	// time does not count waiting for a CPU on a busy machine.
	threads := []string{
		"/proc/thread-self/schedstat",
		fmt.Sprintf("/proc/%d/task/%d/schedstat", stubPID(as), stubTID(c)),
	}
	cpu0 := onCPUNanos(b, threads)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev, err := c.Switch(as, st)
		if err != nil || ev.Kind != platform.EventSyscall {
			b.Fatalf("Switch: event %v, err %v; want a syscall", ev.Kind, err)
		}
		st.Regs.SetReturn(1)
	}
	b.StopTimer()
	b.ReportMetric(float64(onCPUNanos(b, threads)-cpu0)/float64(b.N), "cpu-ns/op")
	var reqs, exits uint64
	for _, s := range f.p.Stats() {
		reqs += s.Ioctls
		exits += s.Exits[platform.ExitSyscall]
	}
	b.ReportMetric(float64(reqs)/float64(exits), "ptrace-reqs/syscall")
}

// onCPUNanos sums the time the threads ran, from the first field of
// /proc/<pid>/task/<tid>/schedstat (Documentation/scheduler/sched-stats.rst).
func onCPUNanos(tb testing.TB, paths []string) uint64 {
	var sum uint64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatalf("read %s: %v", p, err)
		}
		var ns uint64
		if _, err := fmt.Sscan(string(b), &ns); err != nil {
			tb.Fatalf("parse %s: %v", p, err)
		}
		sum += ns
	}
	return sum
}

// BenchmarkNewAddressSpace measures starting a stub (fork, exec, walls)
// and killing and reaping it.
func BenchmarkNewAddressSpace(b *testing.B) {
	f := newFixture(b)
	defer f.close()
	for i := 0; i < b.N; i++ {
		as, err := f.p.NewAddressSpace()
		if err != nil {
			b.Fatalf("NewAddressSpace: %v", err)
		}
		as.Release()
	}
}

// BenchmarkMapFile measures one injected mmap: from the task whose stub
// thread is stopped in the address space (direct), and from a goroutine
// without one (through the control goroutine).
func BenchmarkMapFile(b *testing.B) {
	for _, direct := range []bool{true, false} {
		b.Run(map[bool]string{true: "direct", false: "control"}[direct], func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f := newFixture(b)
			defer f.close()
			st := f.state(progSyscallLoop)
			if direct {
				if _, err := f.ctx.Switch(f.as, st); err != nil {
					b.Fatalf("Switch: %v", err)
				}
			}
			fr, err := f.mf.Allocate(1)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := f.as.MapFile(testCode+arch.PageSize, fr, platform.ReadWrite); err != nil {
					b.Fatalf("MapFile: %v", err)
				}
			}
		})
	}
}

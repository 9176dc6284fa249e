package ptrace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// procStatus returns the fields of /proc/pid/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read status of stub %d: %v", pid, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// gone reports whether the thread no longer runs: absent from /proc, or a
// zombie waiting for a parent that is not us.
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the ")" that ends the command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// reaped reports whether ringbox has no child or tracee left with id pid.
func reaped(pid int) bool {
	_, err := unix.Wait4(pid, nil, unix.WNOHANG|unix.WALL, nil)
	return errors.Is(err, unix.ECHILD)
}

// TestStubWalls checks what a started stub may reach: no capabilities,
// no_new_privs, a seccomp filter, the memory file as its only descriptor,
// nothing mapped in the lower half but its own two pages.
func TestStubWalls(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := newFixture(t)
	defer f.close()
	pid := stubPID(f.as)

	st := procStatus(t, pid)
	want := map[string]string{
		"NoNewPrivs": "1",
		"Seccomp":    "2", // SECCOMP_MODE_FILTER
		"CapEff":     "0000000000000000",
		"CapPrm":     "0000000000000000",
		"Threads":    "1",
	}
	if os.Getuid() == 0 {
		want["Uid"] = "65534\t65534\t65534\t65534"
		want["Gid"] = "65534\t65534\t65534\t65534"
		want["Groups"] = ""
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("stub %s = %q, want %q", k, st[k], v)
		}
	}

	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatalf("read stub limits: %v", err)
	}
	if !regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s`).Match(limits) {
		t.Errorf("stub core file size limit is not 0:\n%s", limits)
	}

	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("list stub fds: %v", err)
	}
	if len(fds) != 1 || fds[0].Name() != strconv.Itoa(stubFD) {
		var names []string
		for _, d := range fds {
			names = append(names, d.Name())
		}
		t.Errorf("stub fds = %v, want [%d]", names, stubFD)
	}

	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatalf("read stub maps: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		var start, end uint64
		if _, err := fmt.Sscanf(l, "%x-%x", &start, &end); err != nil {
			t.Fatalf("parse maps line %q: %v", l, err)
		}
		if start < arch.MaxUserAddress && (start < stubStart || end > stubEnd) {
			t.Errorf("stub mapping %q outside [%#x, %#x)", l, uint64(stubStart), uint64(stubEnd))
		}
	}
}

// progSyscallInt3 is a syscall outside the stub's code, as the program
// could place one: the filter must kill the stub if it ever ran.
var progSyscallInt3 = []byte{
	0x0f, 0x05, // syscall
	0xcc, // int3
}

// TestSeccompKillsStrayCalls runs system calls in the stub that the
// filter does not allow and expects SIGSYS to kill the stub.
func TestSeccompKillsStrayCalls(t *testing.T) {
	tests := []struct {
		name string
		rip  uint64
		nr   uintptr
	}{
		{"getpid from the inject site", stubInjectSyscall, unix.SYS_GETPID},
		{"clone from the inject site", stubInjectSyscall, unix.SYS_CLONE},
		{"mprotect from the inject site", stubInjectSyscall, unix.SYS_MPROTECT},
		{"mmap from the clone site", stubCloneSyscall, unix.SYS_MMAP},
		{"getpid from the wait loop", stubWaitSyscall, unix.SYS_GETPID},
		{"mmap from program memory", testCode, unix.SYS_MMAP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f := newFixture(t)
			defer f.close()
			f.state(progSyscallInt3)
			a := f.as.(*addressSpace)
			done := make(chan error, 1)
			go func() {
				done <- a.call(func(l *tracee) error {
					_, err := l.inject(tc.rip, tc.nr)
					return err
				})
			}()
			select {
			case err := <-done:
				if err == nil || !errors.Is(err, errStubDied) || !strings.Contains(err.Error(), unix.SIGSYS.String()) {
					t.Errorf("injected syscall %d at %#x: error %v, want the stub killed by %v", tc.nr, tc.rip, err, unix.SIGSYS)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("injected syscall %d at %#x never came back: the filter let it run", tc.nr, tc.rip)
			}
		})
	}
}

// TestStubKilledFromOutside kills the stub under a stopped and under a
// running context; Switch reports ErrContextKilled and Release reaps
// everything.
func TestStubKilledFromOutside(t *testing.T) {
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("running=%v", running), func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f := newFixture(t)
			defer f.close()
			// jmp . after a syscall: the first Switch stops at the
			// syscall, the second spins.
			st := f.state([]byte{0x0f, 0x05, 0xeb, 0xfe})
			if ev, err := f.ctx.Switch(f.as, st); err != nil || ev.Kind != platform.EventSyscall {
				t.Fatalf("Switch: %v, %v; want a syscall", ev.Kind, err)
			}
			pid, tid := stubPID(f.as), stubTID(f.ctx)
			kill := func() {
				if err := unix.Kill(pid, unix.SIGKILL); err != nil {
					t.Errorf("kill stub: %v", err)
				}
			}
			if running {
				go func() {
					// Wait until the thread spins in user mode.
					for !strings.Contains(readStat(tid, pid), ") R") {
						time.Sleep(time.Millisecond)
					}
					kill()
				}()
			} else {
				kill()
			}
			_, err := f.ctx.Switch(f.as, st)
			if !errors.Is(err, platform.ErrContextKilled) {
				t.Fatalf("Switch after kill: %v, want ErrContextKilled", err)
			}
			f.ctx.Release()
			f.as.Release()
			for _, id := range []int{pid, tid} {
				if !gone(id) || !reaped(id) {
					t.Errorf("stub thread %d still there after Release (gone %v, reaped %v)", id, gone(id), reaped(id))
				}
			}
		})
	}
}

func readStat(tid, pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	return string(b)
}

// taskCount is the number of threads of the stub.
func taskCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatalf("list stub threads: %v", err)
	}
	return len(ents)
}

// TestReleaseLeavesNothing checks that stub threads exit with their
// contexts (and when a context moves to another address space), and
// stubs with their address spaces or the platform's Close.
func TestReleaseLeavesNothing(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := newFixture(t)
	defer f.close()
	pid := stubPID(f.as)
	st := f.state([]byte{0x0f, 0x05}) // syscall
	var ctxs []platform.Context
	for i := 0; i < 3; i++ {
		c, err := f.p.NewContext()
		if err != nil {
			t.Fatalf("NewContext: %v", err)
		}
		s := *st
		if _, err := c.Switch(f.as, &s); err != nil {
			t.Fatalf("Switch: %v", err)
		}
		ctxs = append(ctxs, c)
	}
	if got, want := taskCount(t, pid), 4; got != want {
		t.Fatalf("stub threads = %d, want %d (leader and three contexts)", got, want)
	}

	tid := stubTID(ctxs[0])
	ctxs[0].Release()
	if got, want := taskCount(t, pid), 3; got != want {
		t.Errorf("stub threads after a context's Release = %d, want %d", got, want)
	}
	if !gone(tid) || !reaped(tid) {
		t.Errorf("released stub thread %d not reaped", tid)
	}

	// Moving to another address space: the old thread exits.
	other, err := f.p.NewAddressSpace()
	if err != nil {
		t.Fatalf("NewAddressSpace: %v", err)
	}
	tid = stubTID(ctxs[1])
	s := *st
	if _, err := ctxs[1].Switch(other, &s); err != nil {
		t.Fatalf("Switch to the other address space: %v", err)
	}
	if !gone(tid) || !reaped(tid) {
		t.Errorf("stub thread %d left behind by a move to another address space", tid)
	}
	if got, want := taskCount(t, pid), 2; got != want {
		t.Errorf("stub threads after the move = %d, want %d", got, want)
	}
	ctxs[1].Release()
	ctxs[2].Release()

	otherPID := stubPID(other)
	other.Release()
	if !gone(otherPID) || !reaped(otherPID) {
		t.Errorf("stub %d still there after Release", otherPID)
	}
	// Close releases what the kernel forgot.
	leftover, err := f.p.NewAddressSpace()
	if err != nil {
		t.Fatalf("NewAddressSpace: %v", err)
	}
	leftPID := stubPID(leftover)
	f.ctx.Release()
	f.as.Release()
	if err := f.p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, id := range []int{pid, leftPID} {
		if !gone(id) || !reaped(id) {
			t.Errorf("stub %d still there after Close", id)
		}
	}
}

// helperEnv makes the test binary act as a ringbox that starts a stub and
// waits to be killed (see TestMain).
const helperEnv = "RINGBOX_PTRACE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		runHelper()
		return
	}
	os.Exit(m.Run())
}

// runHelper starts a stub with a stopped stub thread, prints "pid tid"
// and blocks.
func runHelper() {
	runtime.LockOSThread()
	f := newFixture(&testing.B{})
	st := f.state([]byte{0x0f, 0x05})
	if _, err := f.ctx.Switch(f.as, st); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(stubPID(f.as), stubTID(f.ctx))
	select {}
}

// TestStubDiesWithRingbox SIGKILLs a process that runs a stub: the stub
// must not survive it (PTRACE_O_EXITKILL, PR_SET_PDEATHSIG).
func TestStubDiesWithRingbox(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	var pid, tid int
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscan(line, &pid, &tid); err != nil || serr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q (%v, %v), want \"pid tid\"", line, err, serr)
	}
	if gone(pid) || gone(tid) {
		t.Fatalf("stub %d/%d not running before the kill", pid, tid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for !(gone(pid) && gone(tid)) {
		if time.Now().After(deadline) {
			t.Fatalf("stub %d (thread %d) outlived its ringbox", pid, tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The containment tests of the ptrace platform (issue: "a stub that is
// killed from outside, a program that exhausts memory, and ringbox killed
// with SIGKILL leave no stub process behind"). The test process becomes a
// child subreaper, so a stub that outlived its ringbox would be
// reparented to it, where orphanStubs finds it. (A stub killed from
// outside is covered by platform/ptrace's own tests.)

// orphanStubs lists the stub processes reparented to this process.
func orphanStubs(t *testing.T) []int {
	t.Helper()
	return stubsOf(t, os.Getpid())
}

// stubsOf lists the stub processes whose parent is pid.
func stubsOf(t *testing.T, parent int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A stub runs the executable ringbox writes to a memfd named
		// ringbox-stub (its comm is the descriptor number).
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if !strings.Contains(exe, "ringbox-stub") {
			continue
		}
		if ppid(pid) == parent {
			out = append(out, pid)
		}
	}
	return out
}

func ppid(pid int) int {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

// noStubsLeft waits up to 3 s for orphaned stubs to disappear.
func noStubsLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := orphanStubs(t)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				unix.Kill(pid, unix.SIGKILL)
			}
			t.Fatalf("stub processes left behind: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containmentProgram(t *testing.T, name string) string {
	p := filepath.Join(binDir(t), "sandbox", name+"-glibc")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not built (make -C tests): %v", p, err)
	}
	return p
}

func becomeSubreaper(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
}

func TestContainmentMemoryExhausted(t *testing.T) {
	becomeSubreaper(t)
	cmd := exec.Command(ringboxBin(t), "run", "--platform", "ptrace", "--memory", "64MiB", "--", containmentProgram(t, "memhog"))
	out, err := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	// The program is killed (the sandbox is out of memory: 128+9) or sees
	// malloc fail; ringbox itself must not fail or be OOM-killed.
	if code != 128+int(syscall.SIGKILL) && code != 3 {
		t.Fatalf("ringbox exit %d (%v), want 137 or 3; output:\n%s", code, err, out)
	}
	noStubsLeft(t)
}

func TestContainmentRingboxKilled(t *testing.T) {
	becomeSubreaper(t)
	cmd := exec.Command(ringboxBin(t), "run", "--platform", "ptrace", "--", containmentProgram(t, "spin"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("program said %q, want ready", line)
	}
	// The check must be able to see a stub: ringbox's own is there.
	if len(stubsOf(t, cmd.Process.Pid)) == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no stub process found under ringbox (pid %d): the check cannot see stubs", cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	noStubsLeft(t)
}

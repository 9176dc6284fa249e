package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// selfChecking returns the test of a self-checking program (tests/README.md):
// exit status 0 and TAP-like stdout in which every check passed.
func selfChecking(path string) *program {
	return &program{name: filepath.Base(path), path: path, tap: true}
}

// runSuite runs every program in bin/<suite> as a self-checking program;
// a suite with no programs built is skipped, saying so.
func runSuite(t *testing.T, suite string) {
	skipHeavyInVM(t)
	paths := executables(t, filepath.Join(binDir(t), suite))
	if len(paths) == 0 {
		t.Skipf("no programs in %s", filepath.Join(binDir(t), suite))
	}
	var progs []*program
	for _, path := range paths {
		p := selfChecking(path)
		adjust(suite, p)
		progs = append(progs, p)
	}
	runPrograms(t, progs)
}

// adjust applies what a suite's programs need beyond a plain comparison.
func adjust(suite string, p *program) {
	name := strings.TrimSuffix(strings.TrimSuffix(p.name, "-glibc"), "-musl")
	if suite == "proc" && name == "smp" && os.Getenv("RINGBOX_VM_SERIAL_CPUS") != "" {
		// The VM's CPUs take turns on one host thread: smp cannot
		// prove two threads at the same instant there (make test-kvm
		// runs it again in a VM with multi-threaded TCG).
		p.env = append(p.env, "RINGBOX_SERIAL_CPUS=1")
	}
	if suite != "ptrace" {
		return
	}
	switch name {
	case "yama":
		// The host has no YAMA, so its cases SKIP natively and run in
		// the sandbox (default scope 1): only the status is compared.
		p.statusOnly = true
	default:
		// The native oracle has no YAMA, which is scope 0 ("classic");
		// the sandbox's default is 1.
		p.flags = []string{"--ptrace-scope", "0"}
	}
	if (name == "hwbreak" || name == "mini_gdb") && os.Getenv("RINGBOX_VM_NO_HWBP") != "" {
		// The test VM's QEMU (before 10) does not fire hardware
		// breakpoints in nested guests (scripts/testvm: qemuArmsNestedDR7).
		p.skipPlatform = map[string]string{"kvm": "the test VM's QEMU does not fire hardware breakpoints in nested guests"}
	}
}

// TestProc runs the process-model suite (tests/proc).
func TestProc(t *testing.T) { runSuite(t, "proc") }

// TestPtrace runs the ptrace suite (tests/ptrace).
func TestPtrace(t *testing.T) { runSuite(t, "ptrace") }

// TestGo runs the Go test programs (tests/go/<name>, built CGO_ENABLED=0).
func TestGo(t *testing.T) { runSuite(t, "go") }

// benchIterations keeps the benchmark programs' smoke runs short: they are
// run here to prove that they work, not to measure.
const benchIterations = "200"

// TestBench runs each benchmark program briefly (tests/bench). Their
// timings differ from run to run, so only the exit status is compared with
// the native run, and stdout must carry the program's result line.
func TestBench(t *testing.T) {
	skipHeavyInVM(t)
	paths := executables(t, filepath.Join(binDir(t), "bench"))
	if len(paths) == 0 {
		t.Skip("no benchmark programs built")
	}
	var progs []*program
	for _, path := range paths {
		base := filepath.Base(path)
		prefix := base + ": "
		if i := strings.LastIndexByte(base, '-'); i > 0 {
			prefix = base[:i] + ": " // without the -glibc or -musl
		}
		progs = append(progs, &program{
			name: base, path: path, args: []string{benchIterations},
			statusOnly: true,
			check: func(r result) error {
				if !bytes.HasPrefix(r.stdout, []byte(prefix)) {
					return fmt.Errorf("stdout %q does not start with %q", r.stdout, prefix)
				}
				return nil
			},
		})
	}
	runPrograms(t, progs)
}

// skipHeavyInVM keeps a quick test-VM run (make test-kvm-quick) to
// tests/basic on kvm; make test-kvm (and so make test) sets ringbox.full=1
// and runs every suite there.
func skipHeavyInVM(t *testing.T) {
	if os.Getenv("RINGBOX_TESTVM") != "" && os.Getenv("RINGBOX_VM_FULL") == "" {
		t.Skip("a quick test-VM run (make test-kvm-quick) runs only tests/basic on kvm; make test-kvm runs this suite")
	}
}

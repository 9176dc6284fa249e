// Command vminit is /init of the nested-KVM test VM that scripts/testvm
// boots: a static Go program (CGO_ENABLED=0) that makes a bare initramfs
// into a place where ringbox's KVM tests can run, runs them, reports on the
// serial console and powers the VM off.
//
// In order, it:
//
//  1. mounts proc, sysfs, devtmpfs on /dev and tmpfs on /tmp;
//  2. loads the kernel modules of suite.Modules from /lib/modules with
//     finit_module(2), in order, reporting each failure and going on, so that
//     the console shows every problem at once;
//  3. checks /dev/kvm: KVM_GET_API_VERSION must be 12 and KVM_CREATE_VM must
//     work (the "kvm self-check", counted as a test in suite mode);
//  4. sets PATH=/tests/bin:/tests, RINGBOX_TEST_BIN=/tests/bin and
//     RINGBOX_BIN=/tests/bin/ringbox, the variables the end-to-end harness
//     reads;
//  5. runs either the single command of the kernel parameter ringbox.cmd or
//     the commands of /tests/suite.list, one at a time, each under the
//     timeout of ringbox.timeout (default 10m), with its output going
//     straight to the console, and reports each with a PASS or FAIL line;
//  6. prints the summary and the exit line (see package suite) and powers
//     off.
//
// If init itself dies, the kernel panics ("Attempted to kill init"); testvm
// boots with panic=-1 and -no-reboot, so QEMU then exits and testvm reports
// a VM that ended without an exit line.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
	"golang.org/x/sys/unix"
)

// defaultTimeout bounds one command when the kernel command line names
// none.
const defaultTimeout = 10 * time.Minute

func main() {
	ensureConsole()
	// The console line may still hold the firmware's last words (SeaBIOS
	// ends "Booting from ROM.." without a newline before a PVH boot, and
	// quiet leaves the kernel silent): start init's report on a line of
	// its own.
	fmt.Println()
	logf("init %s (%s), %d CPUs, up %s", kernelRelease(), runtime.Version(), runtime.NumCPU(), uptime())
	os.Exit(run())
}

// run does everything but the power-off and returns the exit code to
// announce.
func run() int {
	for _, err := range mountAll() {
		logf("mount: %v", err)
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		logf("reading the kernel command line: %v", err)
	}

	loadStart := time.Now()
	var loaded []string
	for _, m := range suite.Modules {
		if err := loadModule(suite.ModuleDir, m); err != nil {
			logf("module %s: %v", m, err)
			// quiet hides the kernel's own explanation (kvm_amd:
			// "SVM not supported", ...): show it.
			for _, l := range kmsgTail(5) {
				logf("  kernel: %s", l)
			}
			continue
		}
		loaded = append(loaded, m)
	}
	logf("modules loaded: %s (%s)", strings.Join(loaded, " "), time.Since(loadStart).Round(time.Millisecond))
	kvmErr := kvmSelfCheck()
	if kvmErr != nil {
		logf("kvm self-check: %v", kvmErr)
	}

	env := []string{
		"PATH=" + suite.BinDir + ":" + suite.Root,
		"RINGBOX_TEST_BIN=" + suite.BinDir,
		"RINGBOX_BIN=" + suite.RingboxBin,
		// The VM exists to test the KVM platform; the ptrace platform is
		// tested on the host. Guest exits are slow under emulation.
		"RINGBOX_TEST_PLATFORMS=kvm",
		"RINGBOX_TEST_TIMEOUT=300s",
		"TAP_WATCHDOG=120",
		// Tests skip what the emulated CPU cannot do (hardware
		// breakpoints under nested SVM).
		"RINGBOX_TESTVM=1",
		"HOME=/",
		"TMPDIR=/tmp",
		"TERM=dumb",
	}
	// exec.LookPath reads PATH from init's own environment.
	if err := os.Setenv("PATH", suite.BinDir+":"+suite.Root); err != nil {
		logf("setting PATH: %v", err)
	}

	timeout := defaultTimeout
	// ringbox.full=1 (make test-kvm) asks the e2e suites to run every
	// program on kvm, not only tests/basic (make test-kvm-quick).
	if v, ok := suite.CmdlineParam(string(cmdline), "ringbox.full"); ok && v == "1" {
		env = append(env, "RINGBOX_VM_FULL=1")
	}
	if v, ok := suite.CmdlineParam(string(cmdline), suite.ParamNoHWBreakpoints); ok && v == "1" {
		env = append(env, suite.EnvNoHWBreakpoints+"=1")
	}
	if v, ok := suite.CmdlineParam(string(cmdline), suite.ParamSerialCPUs); ok && v == "1" {
		env = append(env, suite.EnvSerialCPUs+"=1")
	}
	if v, ok := suite.CmdlineParam(string(cmdline), suite.ParamTimeout); ok {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			logf("%s=%q is not a positive duration; using %s", suite.ParamTimeout, v, timeout)
		} else {
			timeout = d
		}
	}
	r := &runner{out: os.Stdout, env: env, timeout: timeout, root: suite.Root}

	if enc, ok := suite.CmdlineParam(string(cmdline), suite.ParamCmd); ok {
		argv, err := suite.DecodeCmd(enc)
		if err != nil {
			logf("%v", err)
			return finish(0, 1, 1)
		}
		code := r.run(suite.Command{Argv: argv})
		passed, failed := 0, 0
		if code == 0 {
			passed = 1
		} else {
			failed = 1
		}
		return finish(passed, failed, code)
	}

	passed, failed := 0, 0
	if kvmErr != nil {
		logf("FAIL kvm self-check")
		failed++
	} else {
		logf("PASS kvm self-check")
		passed++
	}
	cmds, err := readSuite(suite.ListFile)
	if err != nil {
		logf("%v", err)
		failed++
	}
	for _, c := range cmds {
		if r.run(c) == 0 {
			passed++
		} else {
			failed++
		}
	}
	code := 0
	if failed > 0 {
		code = 1
	}
	return finish(passed, failed, code)
}

// readSuite parses the suite file.
func readSuite(name string) ([]suite.Command, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	defer f.Close() // read-only: a close error loses nothing
	return suite.Parse(f, name)
}

// finish prints the summary and the exit line, then powers off; it returns
// only if the power-off fails.
func finish(passed, failed, code int) int {
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	fmt.Printf("%s%d\n", suite.ExitMarker, code)
	powerOff()
	return code
}

// logf prints one report line on the console.
func logf(format string, args ...any) {
	fmt.Printf(suite.Marker+format+"\n", args...)
}

// powerOff flushes the file systems and asks the kernel to power off. "If
// not preceded by a sync(2), data will be lost." - reboot(2).
func powerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		// main exits next, the kernel panics on init's death and
		// panic=-1 ends the VM anyway.
		logf("power off: %v", err)
	}
}

// kernelRelease returns uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown kernel"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// uptime returns the time since the kernel started, which at init's start is
// the boot time.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}

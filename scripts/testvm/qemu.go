package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

// vmConfig is what one boot needs.
type vmConfig struct {
	qemu string
	// kernel is the bzImage or the PVH-bootable ELF vmlinux.
	kernel string
	initrd string
	cpu    string
	smp    int
	memMiB int
	// cmdTimeout bounds each command inside the VM.
	cmdTimeout time.Duration
	// cmd is the single command to run instead of the suite, if any.
	cmd []string
	// extraAppend is added to the kernel command line.
	extraAppend string
	// noHWBreakpoints: the emulator does not fire hardware breakpoints
	// in nested guests (qemuArmsNestedDR7).
	noHWBreakpoints bool
	// tcgThread is TCG's thread mode: "single" or "multi" (see
	// tcgThreadHelp).
	tcgThread string
}

// tcgThreadHelp explains the -tcg-thread default. With multi-threaded TCG
// (one host thread per vCPU, QEMU's default) the nested guest's state
// switch is not safe: about once in 300,000 of ringbox's KVM_RUNs the
// innermost guest takes a page fault on an address that is mapped, with
// registers half its own and half its hypervisor's (CR3, RIP and IDT of the
// guest kernel, GPRs and TR of ringbox's guest, in QEMU's -d int log), and
// triple-faults. It happens with QEMU 7.2 and 10.0 and with guest kernels
// 6.1 and 6.12; with one TCG thread for both vCPUs, 6 million trapped
// system calls ran without one (getppid loops in the VM).
const tcgThreadHelp = "TCG thread mode, single or multi (multi-threaded TCG corrupts nested SVM state switches: see tcgThreadHelp in qemu.go)"

// kernelCmdline returns the guest kernel's command line.
//
// panic=-1 reboots at once if init dies, and QEMU's -no-reboot turns that
// reboot into QEMU's exit, so a broken init cannot hang the run.
// random.trust_cpu=on seeds the guest's random pool from RDRAND (which
// -cpu max emulates) at boot: without it, getrandom(2) blocks for minutes
// in an emulated guest with no entropy source, and so does everything
// that needs random bytes (ringbox's AT_RANDOM at every exec).
func kernelCmdline(c vmConfig) (string, error) {
	parts := []string{"console=ttyS0", "panic=-1", "quiet", "random.trust_cpu=on",
		suite.ParamTimeout + "=" + suite.FormatTimeout(c.cmdTimeout)}
	if len(c.cmd) > 0 {
		enc, err := suite.EncodeCmd(c.cmd)
		if err != nil {
			return "", err
		}
		parts = append(parts, suite.ParamCmd+"="+enc)
	}
	if c.noHWBreakpoints {
		parts = append(parts, suite.ParamNoHWBreakpoints+"=1")
	}
	if c.tcgThread == "single" {
		parts = append(parts, suite.ParamSerialCPUs+"=1")
	}
	if c.extraAppend != "" {
		parts = append(parts, c.extraAppend)
	}
	s := strings.Join(parts, " ")
	// Linux: arch/x86/include/asm/setup.h: COMMAND_LINE_SIZE is 2048,
	// and the boot protocol truncates longer lines.
	if len(s) >= 2048 {
		return "", fmt.Errorf("kernel command line is %d bytes, the x86 limit is 2047: shorten the command", len(s))
	}
	return s, nil
}

// qemuArgs returns QEMU's arguments. TCG with -cpu max emulates AMD SVM,
// which is what lets the guest load kvm-amd.
func qemuArgs(c vmConfig) ([]string, error) {
	cmdline, err := kernelCmdline(c)
	if err != nil {
		return nil, err
	}
	return []string{
		"-accel", "tcg,thread=" + c.tcgThread,
		"-cpu", c.cpu,
		"-m", strconv.Itoa(c.memMiB),
		"-smp", strconv.Itoa(c.smp),
		"-nographic",
		// No network: the tests need none, and the NIC's option ROM
		// (iPXE) costs seconds of emulated firmware time.
		"-nic", "none",
		"-no-reboot",
		"-kernel", c.kernel,
		"-initrd", c.initrd,
		"-append", cmdline,
	}, nil
}

// qemuVersion returns the major and minor version `qemu --version`
// reports ("QEMU emulator version 10.0.2 (...)").
func qemuVersion(name string) (major, minor int, err error) {
	out, err := exec.Command(name, "--version").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("%s --version: %w", name, err)
	}
	return parseQEMUVersion(string(out))
}

// parseQEMUVersion reads the version from qemu --version's first line.
func parseQEMUVersion(s string) (major, minor int, err error) {
	m := qemuVersionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("no version in %q", firstLine(s))
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, nil
}

var qemuVersionRE = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)`)

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// qemuArmsNestedDR7 reports whether QEMU's TCG fires the hardware
// breakpoints a nested guest's hypervisor loads: QEMU 7.2 (Debian 12)
// takes DR7 from the VMCB on VMRUN without arming the breakpoints
// (target/i386/tcg/sysemu/svm_helper.c:helper_vmrun()), QEMU 10.0
// (bookworm-backports) arms them: ringbox's hwbreak suite passes on kvm
// with 10.0.2 and fails with 7.2. Versions between are not known to work.
func qemuArmsNestedDR7(major int) bool { return major >= 10 }

// qemuMissingHelp is printed when QEMU is not installed.
const qemuMissingHelp = "QEMU is not installed: run `apt-get install qemu-system-x86` (Debian package providing qemu-system-x86_64)"

// result is how a VM run ended.
type result struct {
	// code is init's announced exit code, valid if announced.
	code      int
	announced bool
	// bootTime is the time from QEMU's start to init's first line, zero
	// if init never spoke.
	bootTime time.Duration
}

// errBoot, errTimeout, errStopped and errNoExit are the ways a run fails
// without an exit code from init.
var (
	errBoot    = errors.New("the VM failed to boot: init did not announce itself")
	errTimeout = errors.New("the VM run timed out")
	errNoExit  = errors.New("the VM stopped without init's exit line")
	errStopped = errors.New("the VM run was interrupted")
)

// runVM boots the VM, copies its console to out and waits for init's exit
// line, the boot timeout, the overall timeout or a value on stop (a signal
// to testvm), whichever comes first. It never leaves QEMU running.
func runVM(c vmConfig, out io.Writer, bootTimeout, timeout time.Duration, stop <-chan os.Signal) (res result, con *console, err error) {
	con = newConsole(out)
	qemu, err := exec.LookPath(c.qemu)
	if err != nil {
		return result{}, con, fmt.Errorf("%s: %w\n%s", c.qemu, err, qemuMissingHelp)
	}
	args, err := qemuArgs(c)
	if err != nil {
		return result{}, con, err
	}
	cmd := exec.Command(qemu, args...)
	cmd.Stdin = nil // -nographic reads the monitor from stdin: give it nothing
	cmd.Stdout = con
	cmd.Stderr = con
	// Wait returns once the output is copied; if anything QEMU started
	// kept the pipe open, stop waiting for it after a while.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, con, fmt.Errorf("starting %s: %w", qemu, err)
	}
	defer func() {
		if at := con.initTime(); !at.IsZero() {
			res.bootTime = at.Sub(start)
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	boot := time.NewTimer(bootTimeout)
	defer boot.Stop()
	total := time.NewTimer(timeout)
	defer total.Stop()
	initSeen := con.initSeen
	kill := func() {
		// Kill fails only if QEMU already exited, which is what we want.
		_ = cmd.Process.Kill()
		<-exited
	}
	for {
		select {
		case <-initSeen:
			boot.Stop()
			initSeen = nil
		case code := <-con.exitSeen:
			res.code, res.announced = code, true
			// init powers off right after its exit line; give QEMU a
			// moment to notice, then make sure.
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				kill()
			}
			return res, con, nil
		case <-boot.C:
			kill()
			return res, con, fmt.Errorf("%w within %s", errBoot, bootTimeout)
		case <-total.C:
			kill()
			return res, con, fmt.Errorf("%w after %s (-timeout); QEMU killed", errTimeout, timeout)
		case sig := <-stop:
			kill()
			return res, con, fmt.Errorf("%w by %v; QEMU killed", errStopped, sig)
		case err := <-exited:
			// Lines written just before the exit may still be
			// pending in exitSeen.
			select {
			case code := <-con.exitSeen:
				res.code, res.announced = code, true
				return res, con, nil
			default:
			}
			if err != nil {
				return res, con, fmt.Errorf("%w: qemu: %v", errNoExit, err)
			}
			return res, con, errNoExit
		}
	}
}

// console is the io.Writer receiving QEMU's output: it copies the output,
// without the serial line's carriage returns, to out, keeps the last lines
// for error reports, and signals init's first line and its exit line.
type console struct {
	out io.Writer

	mu sync.Mutex
	// line is the current, unfinished line (capped at maxLine bytes).
	line []byte
	// tail holds the last tailLines complete lines.
	tail []string
	// outErr is the first error writing to out.
	outErr error
	esc    escFilter

	// initSeen is closed at init's first report line; exitSeen receives
	// the code of the exit line. Only the run loop reads them.
	initSeen   chan struct{}
	initClosed bool
	exitSeen   chan int
	// initAt is when init's first line arrived.
	initAt time.Time
}

// escFilter drops the terminal control sequences SeaBIOS prints, ESC c
// (reset) and CSI sequences such as ESC [2J (clear), even when QEMU writes
// them a byte at a time.
type escFilter struct {
	// state is 0 outside a sequence, 1 after ESC, 2 inside a CSI
	// sequence (after ESC [).
	state int
}

// filter returns p without control sequences.
func (f *escFilter) filter(p []byte) []byte {
	out := p[:0:0]
	for _, b := range p {
		switch f.state {
		case 0:
			if b == 0x1b {
				f.state = 1
				continue
			}
			out = append(out, b)
		case 1:
			switch b {
			case '[':
				f.state = 2
			case 'c':
				f.state = 0
			default:
				f.state = 0
				out = append(out, 0x1b, b)
			}
		case 2:
			// A CSI sequence ends with a byte in 0x40-0x7e (ECMA-48).
			if b >= 0x40 && b <= 0x7e {
				f.state = 0
			}
		}
	}
	return out
}

const (
	maxLine   = 4096
	tailLines = 40
)

func newConsole(out io.Writer) *console {
	return &console{out: out, initSeen: make(chan struct{}), exitSeen: make(chan int, 1)}
}

// Write implements io.Writer.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := bytes.ReplaceAll(p, []byte("\r"), nil)
	if !c.initClosed {
		// The firmware resets and clears the terminal; keep the
		// user's terminal (and CI logs) free of that.
		clean = c.esc.filter(clean)
	}
	if c.outErr == nil {
		// A reader that went away (testvm | head) must not stop the
		// run: QEMU would block on a full pipe. Keep watching the
		// lines, and stop copying them.
		_, c.outErr = c.out.Write(clean)
	}
	for _, b := range clean {
		if b != '\n' {
			if len(c.line) < maxLine {
				c.line = append(c.line, b)
			}
			continue
		}
		c.endLineLocked(string(c.line))
		c.line = c.line[:0]
	}
	return len(p), nil
}

// endLineLocked handles one complete line.
//
// Preconditions: c.mu is held.
func (c *console) endLineLocked(line string) {
	if len(c.tail) == tailLines {
		c.tail = c.tail[1:]
	}
	c.tail = append(c.tail, line)
	if !c.initClosed && strings.Contains(line, suite.Marker+"init ") {
		close(c.initSeen)
		c.initClosed = true
		c.initAt = time.Now()
	}
	if code, ok := suite.ParseExitLine(line); ok {
		select {
		case c.exitSeen <- code:
		default: // a second exit line changes nothing
		}
	}
}

// initTime returns when init's first line arrived, zero if it did not.
func (c *console) initTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.initAt
}

// lastLines returns the last complete lines and the unfinished one.
func (c *console) lastLines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := append([]string(nil), c.tail...)
	if len(c.line) > 0 {
		lines = append(lines, string(c.line))
	}
	return lines
}

// printTail writes the console's last lines to w, to explain a failure.
func printTail(w io.Writer, c *console) {
	lines := c.lastLines()
	if len(lines) == 0 {
		fmt.Fprintln(w, "testvm: the console stayed silent")
		return
	}
	fmt.Fprintf(w, "testvm: last %d console lines:\n", len(lines))
	for _, l := range lines {
		fmt.Fprintf(w, "  | %s\n", l)
	}
}

// qemuAvailable reports whether the QEMU binary can be found, for a
// clear message before any build work.
func qemuAvailable(name string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s not found: %s", name, qemuMissingHelp)
	}
	return nil
}

// exitCode maps init's announced code to testvm's exit status.
func exitCode(code int) int {
	if code < 0 || code > 255 {
		return 1
	}
	return code
}

// Package suite is the contract between the host side of the nested-KVM test
// VM (scripts/testvm) and the VM's init (scripts/vminit): where the image
// keeps the tests, how a suite file and a single command are written, and the
// console lines by which init reports.
//
// A suite file has one command per line, its argv separated by blanks; a line
// whose first non-blank character is '#' is a comment, and blank lines are
// ignored. There is no quoting: a test that needs an argument containing
// blanks is run as a single command instead, which travels on the kernel
// command line as ringbox.cmd=<base64 of the argv joined by NUL bytes>.
//
// Init's console protocol, one line each:
//
//	RINGBOX-VM: init <version>        init is running (the boot has finished)
//	RINGBOX-VM: PASS <cmd>            a command exited 0
//	RINGBOX-VM: FAIL <cmd> (exit N)   a command failed (N is -1 if it never ran or was killed)
//	N passed, N failed                the summary
//	RINGBOX-VM-EXIT: <code>           the last line; the host exits with <code>
package suite

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Paths inside the image.
const (
	// Root is where the tests live.
	Root = "/tests"
	// BinDir holds the test programs (the host's tests/bin tree) and the
	// ringbox binary.
	BinDir = "/tests/bin"
	// RingboxBin is the ringbox binary.
	RingboxBin = "/tests/bin/ringbox"
	// GoTestDir holds one directory per Go test binary, named after the
	// package, with the package's testdata beside the binary, because go
	// test runs a test binary in its package directory.
	GoTestDir = "/tests/gotest"
	// ListFile is the suite that init runs.
	ListFile = "/tests/suite.list"
	// ModuleDir holds the kernel modules to load, as <name>.ko.
	ModuleDir = "/lib/modules"
)

// Modules are the kernel modules init loads, in order: each depends only on
// those before it (kvm needs irqbypass; kvm_amd needs kvm and, for SEV, ccp).
var Modules = []string{"irqbypass", "ccp", "kvm", "kvm-amd"}

// Kernel command line parameters read by init from /proc/cmdline. They
// contain a dot, so the kernel takes them for module parameters and neither
// passes them to init's argv nor to its environment (Linux:
// init/main.c:unknown_bootoption()).
const (
	// ParamCmd carries a single command (see EncodeCmd).
	ParamCmd = "ringbox.cmd"
	// ParamTimeout is the per-command timeout, in Go duration syntax.
	ParamTimeout = "ringbox.timeout"
	// ParamNoHWBreakpoints=1 says that the emulator does not fire
	// hardware breakpoints in nested guests (QEMU before 10; see
	// testvm's qemuArmsNestedDR7): init then sets EnvNoHWBreakpoints.
	ParamNoHWBreakpoints = "ringbox.nohwbp"
	// EnvNoHWBreakpoints is set for the commands of a VM whose emulator
	// does not fire hardware breakpoints in nested guests; the tests of
	// KVM's debug registers skip there.
	EnvNoHWBreakpoints = "RINGBOX_VM_NO_HWBP"
	// ParamSerialCPUs=1 says that the VM's CPUs take turns on one host
	// thread (single-threaded TCG): two guest threads never run at the
	// same instant. Init then sets EnvSerialCPUs.
	ParamSerialCPUs = "ringbox.serialcpus"
	// EnvSerialCPUs is set for the commands of such a VM; tests that
	// prove simultaneous execution skip there.
	EnvSerialCPUs = "RINGBOX_VM_SERIAL_CPUS"
)

// Console markers.
const (
	// Marker starts every report line of init but the last two.
	Marker = "RINGBOX-VM: "
	// ExitMarker starts the last line, followed by the exit code.
	ExitMarker = "RINGBOX-VM-EXIT: "
)

// Command is one command of a suite.
type Command struct {
	// Argv is the program and its arguments.
	Argv []string
	// Line is the 1-based line number in the suite file, 0 if none.
	Line int
}

// String returns the command as a suite line.
func (c Command) String() string { return strings.Join(c.Argv, " ") }

// Parse reads a suite file. name is used in error messages.
func Parse(r io.Reader, name string) ([]Command, error) {
	var cmds []Command
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		argv := strings.Fields(line)
		if !strings.HasPrefix(argv[0], "/") && strings.Contains(argv[0], "/") {
			return nil, fmt.Errorf("%s:%d: program %q must be absolute or a bare name looked up in PATH", name, n, argv[0])
		}
		cmds = append(cmds, Command{Argv: argv, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return cmds, nil
}

// Format writes cmds as a suite file.
func Format(cmds []Command) []byte {
	var b bytes.Buffer
	for _, c := range cmds {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// EncodeCmd encodes argv for ParamCmd. The kernel command line splits at
// blanks and strips quotes, so the argv is joined by NUL bytes and base64
// encoded, which leaves no character the kernel would interpret.
func EncodeCmd(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("argument %q contains a NUL byte", a)
		}
	}
	return base64.StdEncoding.EncodeToString([]byte(strings.Join(argv, "\x00"))), nil
}

// DecodeCmd reverses EncodeCmd.
func DecodeCmd(s string) ([]string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", ParamCmd, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("decoding %s: empty command", ParamCmd)
	}
	return strings.Split(string(b), "\x00"), nil
}

// CmdlineParam returns the value of the last key=value word of a kernel
// command line (as read from /proc/cmdline), like the kernel's own parser
// lets a later parameter override an earlier one.
//
// TODO: the kernel also accepts double-quoted values containing blanks
// (Linux: lib/cmdline.c:next_arg()); the values written by testvm never need
// them, so quotes are not parsed here.
func CmdlineParam(cmdline, key string) (string, bool) {
	val, found := "", false
	for _, w := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(w, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}

// FormatTimeout formats d for ParamTimeout.
func FormatTimeout(d time.Duration) string { return d.String() }

// ParseExitLine reports whether line is init's exit line, and its code. The
// line may carry a trailing carriage return from the serial console, and
// leading garbage from kernel messages interleaved on the same line.
func ParseExitLine(line string) (code int, ok bool) {
	i := strings.LastIndex(line, ExitMarker)
	if i < 0 {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(line[i+len(ExitMarker):]))
	if err != nil {
		return 0, false
	}
	return code, true
}

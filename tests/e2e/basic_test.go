package e2e

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// basicCase is what tests/basic/<name>.c must do, natively and under
// ringbox.
type basicCase struct {
	name   string
	args   []string
	env    []string
	stdin  []byte
	status int
	tap    bool
	stdout *string
	check  func(result) error
}

// Exit statuses of programs killed by a signal: 128+N.
const (
	killedSIGILL  = 128 + 4
	killedSIGTRAP = 128 + 5
	killedSIGFPE  = 128 + 8
	killedSIGSEGV = 128 + 11
)

// bigwriteSize is what tests/basic/bigwrite.c writes.
const bigwriteSize = 1 << 20

// stdinPattern is the input fed to readstdin: not periodic at any power of
// two, so that a misplaced page or chunk changes the checksum.
var stdinPattern = func() []byte {
	b := make([]byte, 100000)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}()

// text returns a pointer for the stdout field.
func text(s string) *string { return &s }

// basicCases lists every program of tests/basic. A binary found there
// without an entry is run as a plain self-checking program.
var basicCases = []basicCase{
	{name: "hello", stdout: text("hello, world\n")},
	{name: "exit42", status: 42, stdout: text("")},
	{name: "bigwrite", check: checkBigwrite},
	{
		name: "echo",
		// An empty argument, spaces, and environment strings that
		// are empty or hold '=' test the initial stack's layout.
		args:  []string{"one", "two words", ""},
		env:   []string{"EMPTY=", "EQUALS=a=b=c"},
		tap:   true,
		check: contains("argc 4\n", "argv[2] \"two words\"\n", "argv[3] \"\"\n", "\"EQUALS=a=b=c\"\n", "auxv AT_PAGESZ 4096\n"),
	},
	{name: "segv", status: killedSIGSEGV, stdout: text("writing to address 16\n")},
	{name: "int3", status: killedSIGTRAP, stdout: text("executing int3\n")},
	{name: "divzero", status: killedSIGFPE, stdout: text("dividing by zero\n")},
	{name: "ud2", status: killedSIGILL, stdout: text("executing ud2\n")},
	{
		name:   "mprotect_segv",
		status: killedSIGSEGV,
		stdout: text("ok 1 - mprotect read-only\nok 2 - the read-only page is readable\n"),
	},
	{name: "mm", tap: true},
	{name: "malloc4m", tap: true},
	{name: "clock", tap: true},
	{name: "getrandom", tap: true},
	{name: "uname", tap: true, check: contains("sysname Linux\n", "machine x86_64\n")},
	{name: "selfexe", tap: true},
	{name: "writev", tap: true, check: contains("writev: one two three\n")},
	{name: "notty", tap: true},
	{name: "enosys", tap: true},
	{name: "readstdin", stdin: stdinPattern, tap: true, check: checkReadstdin},
	{name: "bigargs", args: bigArgs, env: bigEnv, tap: true, check: checkBigargs},
	{name: "fpu", tap: true},
}

// bigArgs are bigargs' 2000 arguments, "1" to "2000".
var bigArgs = func() []string {
	a := make([]string, 2000)
	for i := range a {
		a[i] = strconv.Itoa(i + 1)
	}
	return a
}()

// bigEnv is bigargs' 64 KiB environment string.
var bigEnv = []string{"BIG=" + strings.Repeat("x", 64<<10)}

// checkBigargs checks that bigargs counted every string it was given.
func checkBigargs(r result) error {
	abytes, ebytes := 0, 0
	for _, a := range bigArgs {
		abytes += len(a) + 1
	}
	env := append(append([]string(nil), testEnv...), bigEnv...)
	for _, e := range env {
		ebytes += len(e) + 1
	}
	return contains(
		fmt.Sprintf("argc %d, %d bytes of arguments after argv[0]\n", len(bigArgs)+1, abytes),
		fmt.Sprintf("envc %d, %d bytes of environment\n", len(env), ebytes),
	)(r)
}

// libcs are the variants tests/Makefile builds of every C program.
var libcs = []string{"glibc", "musl"}

// TestBasic runs the first end-to-end programs (tests/basic).
func TestBasic(t *testing.T) {
	dir := filepath.Join(binDir(t), "basic")
	known := map[string]bool{}
	var progs []*program
	for _, c := range basicCases {
		found := false
		for _, libc := range libcs {
			name := c.name + "-" + libc
			path := filepath.Join(dir, name)
			known[path] = true
			if _, err := os.Stat(path); err != nil {
				continue
			}
			found = true
			progs = append(progs, &program{
				name: name, path: path, args: c.args, env: c.env, stdin: c.stdin,
				status: c.status, tap: c.tap, stdout: c.stdout, check: c.check,
			})
		}
		if !found {
			t.Errorf("%s: no %s-glibc or %s-musl in %s: is tests/basic/%s.c built (make -C tests)?", c.name, c.name, c.name, dir, c.name)
		}
	}
	for _, path := range executables(t, dir) {
		if !known[path] {
			progs = append(progs, selfChecking(path))
		}
	}
	runPrograms(t, progs)
}

// contains returns a check that stdout holds each of the strings.
func contains(subs ...string) func(result) error {
	return func(r result) error {
		for _, s := range subs {
			if !bytes.Contains(r.stdout, []byte(s)) {
				return fmt.Errorf("stdout lacks %q", s)
			}
		}
		return nil
	}
}

// fnv1a64 is the checksum the basic programs print.
func fnv1a64(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// checkBigwrite checks that exactly 1 MiB arrived on the pipe and that it
// is what the program says it wrote: its stderr line carries the checksum.
func checkBigwrite(r result) error {
	if len(r.stdout) != bigwriteSize {
		return fmt.Errorf("stdout has %d bytes, want %d", len(r.stdout), bigwriteSize)
	}
	want := fmt.Sprintf("bigwrite: %d bytes fnv1a64 %016x\n", bigwriteSize, fnv1a64(r.stdout))
	// ringbox may log on the same stderr, so look for the line anywhere.
	if !bytes.Contains(r.stderr, []byte(want)) {
		return fmt.Errorf("stderr lacks %q: the bytes received are not the bytes written", strings.TrimSpace(want))
	}
	return nil
}

// checkReadstdin checks that readstdin saw exactly the input it was fed.
func checkReadstdin(r result) error {
	want := fmt.Sprintf("read %d bytes fnv1a64 %016x\n", len(stdinPattern), fnv1a64(stdinPattern))
	if !bytes.Contains(r.stdout, []byte(want)) {
		return fmt.Errorf("stdout lacks %q", strings.TrimSpace(want))
	}
	return nil
}

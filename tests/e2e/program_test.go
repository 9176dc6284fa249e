package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// program is one test binary with what a run of it must produce.
type program struct {
	// name is the subtest name: the binary's file name.
	name string
	// path is the binary, absolute.
	path string
	args []string
	// env is added to the fixed test environment.
	env   []string
	stdin []byte
	// status is the expected exit status (128+N for death by signal N).
	status int
	// tap: stdout carries TAP-like results that must all pass, ending
	// with "# passed P failed 0".
	tap bool
	// stdout, when not nil, is the exact expected stdout.
	stdout *string
	// check, when set, makes further checks of a run (native or not).
	check func(r result) error
	// statusOnly compares only the exit status with the native run, for
	// programs whose output varies between runs (benchmarks).
	statusOnly bool
	// flags are extra `ringbox run` flags for this program.
	flags []string
	// skipRingbox, when set, skips the platform subtests with this reason
	// (a feature ringbox does not have yet; the README lists it).
	skipRingbox string
	// skipPlatform skips one platform's subtest with a reason.
	skipPlatform map[string]string

	// native is the native run, made once and shared by the subtests.
	native *result
}

// argv returns the command line of the program itself.
func (p *program) argv() []string {
	return append([]string{p.path}, p.args...)
}

// nativeRun runs the program natively once; every platform's subtest
// compares against this run, even when -run filtered the native subtest.
func (p *program) nativeRun(timeout time.Duration) *result {
	if p.native == nil {
		r := runCommand(p.argv(), p.env, p.stdin, timeout)
		p.native = &r
	}
	return p.native
}

// verify checks a run against the program's expectations and returns
// everything that is wrong, or nil.
func (p *program) verify(r *result) error {
	if r.err != nil {
		return fmt.Errorf("%w%s", r.err, lastLines(r.stdout))
	}
	var errs []error
	if r.status != p.status {
		errs = append(errs, fmt.Errorf("exit status %d (%s), want %d (%s)", r.status, describeStatus(r.status), p.status, describeStatus(p.status)))
	}
	if p.stdout != nil && string(r.stdout) != *p.stdout {
		errs = append(errs, fmt.Errorf("stdout differs from the expected text: %s", firstDiff(r.stdout, []byte(*p.stdout))))
	}
	if p.tap {
		if err := checkTAP(r.stdout); err != nil {
			errs = append(errs, err)
		}
	} else if bytes.Contains(r.stdout, []byte("not ok ")) {
		errs = append(errs, fmt.Errorf("stdout has a failed check:\n%s", failedLines(r.stdout)))
	}
	if p.check != nil {
		if err := p.check(*r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lastLines returns the end of a run's stdout, for a run that never
// finished.
func lastLines(stdout []byte) string {
	const keep = 1024
	if len(stdout) == 0 {
		return ""
	}
	if len(stdout) > keep {
		stdout = stdout[len(stdout)-keep:]
	}
	return "\nlast stdout:\n" + string(stdout)
}

// run is the body of one program's test: the native subtest, then one
// subtest per platform that compares with the native run.
func (p *program) run(t *testing.T, platforms []platformInfo, timeout time.Duration) {
	// In the nested-KVM test VM the guest's kernel (Debian's Linux 6.1)
	// is not the oracle the suites were written against (the host's
	// Linux): there the programs are held to their own checks (every TAP
	// case passes, the expected status and output) instead of to a
	// native run.
	selfChecked := os.Getenv("RINGBOX_TESTVM") != ""
	t.Run("native", func(t *testing.T) {
		if selfChecked {
			t.Skip("in the test VM the guest kernel is not the oracle; the programs check themselves")
		}
		r := p.nativeRun(timeout)
		if err := p.verify(r); err != nil {
			t.Fatalf("native run fails, so the test itself is wrong: %v%s", err, stderrTail(r))
		}
		t.Logf("native: exit %d, %d bytes of stdout, %v", r.status, len(r.stdout), r.elapsed.Round(time.Millisecond))
		// A second run proves the output deterministic, so that a
		// difference under ringbox is ringbox's and not the test's.
		again := runCommand(p.argv(), p.env, p.stdin, timeout)
		if err := p.verify(&again); err != nil {
			t.Fatalf("second native run fails, so the test itself is flaky: %v%s", err, stderrTail(&again))
		}
		if again.status != r.status || (!p.statusOnly && !bytes.Equal(again.stdout, r.stdout)) {
			t.Fatalf("two native runs differ, so the test is not deterministic: exit %d then %d; stdout: %s", r.status, again.status, firstDiff(again.stdout, r.stdout))
		}
	})
	for _, pl := range platforms {
		t.Run(pl.name, func(t *testing.T) {
			if p.skipRingbox != "" {
				t.Skip(p.skipRingbox)
			}
			if reason, ok := p.skipPlatform[pl.name]; ok {
				t.Skip(reason)
			}
			if pl.needsKVM {
				requireKVMPlatform(t)
			}
			if selfChecked {
				argv := append([]string{ringboxBin(t), "run"}, pl.flags...)
				argv = append(argv, p.flags...)
				argv = append(argv, "--user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "--")
				argv = append(argv, p.argv()...)
				got := runCommand(argv, p.env, p.stdin, timeout)
				if err := p.verify(&got); err != nil {
					t.Errorf("ringbox %s: %v%s", pl.name, err, stderrTail(&got))
				}
				return
			}
			want := p.nativeRun(timeout)
			if err := p.verify(want); err != nil {
				// Fatal, not Skip: -run may have filtered the native
				// subtest out, and this must not pass silently.
				t.Fatalf("native run fails, so there is nothing to compare with: %v", err)
			}
			argv := append([]string{ringboxBin(t), "run"}, pl.flags...)
			argv = append(argv, p.flags...)
			// The sandbox's credentials are the native run's, or
			// every id the programs see (auxv, getuid) would differ
			// when the tests do not run as root.
			argv = append(argv, "--user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "--")
			argv = append(argv, p.argv()...)
			got := runCommand(argv, p.env, p.stdin, timeout)
			if got.err != nil {
				t.Fatalf("ringbox %s: %v%s", pl.name, got.err, stderrTail(&got))
			}
			if got.status != want.status {
				t.Errorf("ringbox %s: exit status %d (%s), native %d (%s)", pl.name, got.status, describeStatus(got.status), want.status, describeStatus(want.status))
			}
			if !p.statusOnly && !bytes.Equal(got.stdout, want.stdout) {
				t.Errorf("ringbox %s: stdout differs from native: %s", pl.name, firstDiff(got.stdout, want.stdout))
			}
			if !t.Failed() && p.check != nil {
				if err := p.check(got); err != nil {
					t.Errorf("ringbox %s: %v", pl.name, err)
				}
			}
			if t.Failed() {
				t.Logf("ringbox command: %q%s", argv, stderrTail(&got))
				return
			}
			t.Logf("ringbox %s: %v (native %v)", pl.name, got.elapsed.Round(time.Millisecond), want.elapsed.Round(time.Millisecond))
		})
	}
}

// runPrograms runs each program's test as a parallel subtest of t.
func runPrograms(t *testing.T, progs []*program) {
	platforms, err := selectedPlatforms()
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := runTimeout()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range progs {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			p.run(t, platforms, timeout)
		})
	}
}

// executables lists the executable regular files directly in dir, sorted;
// a missing directory has none.
func executables(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("listing test programs: %v", err)
	}
	var paths []string
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatalf("listing test programs: %v", err)
		}
		if info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths
}

// tapSummary is the last line of a self-checking program's stdout.
var tapSummary = regexp.MustCompile(`^# passed (\d+) failed (\d+)$`)

// checkTAP checks TAP-like stdout: every "ok"/"not ok" line counted, no
// failure, and a final summary that agrees with the counts.
func checkTAP(stdout []byte) error {
	lines := strings.Split(strings.TrimSuffix(string(stdout), "\n"), "\n")
	okN, notOK := 0, 0
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "ok "):
			okN++
		case strings.HasPrefix(l, "not ok "):
			notOK++
		}
	}
	if notOK > 0 {
		return fmt.Errorf("%d check(s) failed:\n%s", notOK, failedLines(stdout))
	}
	if len(stdout) == 0 || stdout[len(stdout)-1] != '\n' {
		return fmt.Errorf("stdout does not end with a complete summary line (%d ok lines seen)", okN)
	}
	m := tapSummary.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		return fmt.Errorf("last line %q is not \"# passed P failed F\" (%d ok lines seen)", lines[len(lines)-1], okN)
	}
	passed, _ := strconv.Atoi(m[1])
	failed, _ := strconv.Atoi(m[2])
	if passed != okN || failed != 0 {
		return fmt.Errorf("summary %q, but %d ok and %d not ok lines", lines[len(lines)-1], okN, notOK)
	}
	if okN == 0 {
		return fmt.Errorf("no checks ran")
	}
	return nil
}

// failedLines returns the "not ok" lines of stdout.
func failedLines(stdout []byte) string {
	var b strings.Builder
	for _, l := range strings.Split(string(stdout), "\n") {
		if strings.HasPrefix(l, "not ok ") {
			b.WriteString("\t" + l + "\n")
		}
	}
	return b.String()
}

// firstDiff describes where got and want first differ: the line (when the
// outputs are text) and the byte offset, with both sizes.
func firstDiff(got, want []byte) string {
	n := min(len(got), len(want))
	off := n
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			off = i
			break
		}
	}
	line := bytes.Count(want[:off], []byte("\n")) + 1
	gl, wl := lineAt(got, off), lineAt(want, off)
	return fmt.Sprintf("got %d bytes, want %d; first difference at byte %d, line %d:\n\tgot:  %q\n\twant: %q", len(got), len(want), off, line, gl, wl)
}

// lineAt returns the line of b that holds offset off (empty past the end),
// cut to a readable length.
func lineAt(b []byte, off int) string {
	if off >= len(b) {
		return "<end of output>"
	}
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	end := bytes.IndexByte(b[off:], '\n')
	if end < 0 {
		end = len(b)
	} else {
		end += off + 1
	}
	const maxLine = 200
	if end-start > maxLine {
		start = max(start, off-maxLine/2)
		end = min(end, start+maxLine)
	}
	return string(b[start:end])
}

// stderrTail returns the end of a run's stderr for a failure message.
func stderrTail(r *result) string {
	const keep = 4096
	s := r.stderr
	if len(s) == 0 {
		return ""
	}
	prefix := ""
	if len(s) > keep {
		s, prefix = s[len(s)-keep:], "...\n"
	}
	return "\nstderr:\n" + prefix + string(s)
}

// describeStatus names an exit status for messages: "killed by SIGSEGV"
// for 128+11.
func describeStatus(status int) string {
	if status > 128 && status < 128+65 {
		return "killed by " + unix.SignalName(syscall.Signal(status-128))
	}
	return "exit " + strconv.Itoa(status)
}

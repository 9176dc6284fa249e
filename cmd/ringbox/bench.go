package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// benchCase is one measurement: a program printing "<value> ns/<unit>",
// run natively and under ringbox.
type benchCase struct {
	name string
	// prog is the program's path under the programs directory.
	prog string
	// args are its arguments.
	args []string
	// native also runs it natively; inside only runs it under ringbox.
	native, inside bool
}

var nsRE = regexp.MustCompile(`([0-9.]+) ns/`)

// cmdBench compares native execution with ringbox on one platform, as
// ratios measured in one run (absolute numbers differ between hosts and
// runs; ratios from one run are what to compare).
func cmdBench(args []string) int {
	fset := flag.NewFlagSet("ringbox bench", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	plat := fset.String("platform", "auto", "platform to measure: auto, kvm or ptrace")
	progs := fset.String("programs", "tests/bin", "directory of the built test programs (make programs)")
	iters := fset.Int("iterations", 20000, "system calls per measurement")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "Usage: ringbox bench [--platform P] [--programs DIR] [--iterations N]")
			fset.SetOutput(os.Stderr)
			fset.PrintDefaults()
			return 0
		}
		fmt.Fprintf(os.Stderr, "ringbox bench: %v\n", err)
		return exitUsage
	}
	if *iters < 1 {
		fmt.Fprintln(os.Stderr, "ringbox bench: --iterations must be positive")
		return exitUsage
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ringbox bench: %v\n", err)
		return exitSetup
	}
	n := strconv.Itoa(*iters)
	// Process creation is three orders of magnitude dearer than a
	// system call: fewer rounds.
	small := strconv.Itoa(max(*iters/20, 10))
	cases := []benchCase{
		{name: "SYSEMU floor (C tracer)", prog: "bench/sysemu_floor-glibc", args: []string{n}, native: true},
		{name: "getppid round trip", prog: "bench/getppid_loop-glibc", args: []string{n}, native: true, inside: true},
		{name: "PTRACE_SYSCALL stop round trip", prog: "bench/ptrace_syscall_rt-glibc", args: []string{n}, native: true, inside: true},
		{name: "PTRACE_SYSEMU round trip", prog: "bench/sysemu_rt-glibc", args: []string{n}, native: true, inside: true},
		{name: "fork+exit+wait", prog: "bench/fork_exit_wait-glibc", args: []string{small}, native: true, inside: true},
		{name: "vfork+exec+wait", prog: "bench/vfork_exec-glibc", args: []string{small}, native: true, inside: true},
		{name: "pipe ping-pong", prog: "bench/pipe_pingpong-glibc", args: []string{n}, native: true, inside: true},
		{name: "signal delivery+return", prog: "bench/signal_rt-glibc", args: []string{n}, native: true, inside: true},
		{name: "page fault", prog: "bench/pagefault-glibc", args: []string{n}, native: true, inside: true},
		{name: "futex wake/wait ping-pong", prog: "bench/futex_pingpong-glibc", args: []string{n}, native: true, inside: true},
	}
	fmt.Printf("ringbox bench: platform %s, %d iterations, programs in %s\n", *plat, *iters, *progs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tnative ns\tringbox ns\tringbox/native\tringbox/floor\tioctls/trap\texits\tstops")
	var floor float64
	failed := false
	for _, c := range cases {
		path := filepath.Join(*progs, c.prog)
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(tw, "%s\tmissing %s (run make programs)\t\t\t\t\n", c.name, path)
			failed = true
			continue
		}
		var native, inside float64
		ioctls, exits, stops := "-", "-", "-"
		if c.native {
			out, err := exec.Command(path, c.args...).Output()
			if native, err = parseNs(out, err); err != nil {
				fmt.Fprintf(tw, "%s\tnative run failed: %v\t\t\t\t\n", c.name, err)
				failed = true
				continue
			}
		}
		if c.prog == "bench/sysemu_floor-glibc" {
			floor = native
		}
		if c.inside {
			cmd := exec.Command(self, append([]string{"run", "--platform", *plat, "--cpus", "2", "--stats", "--", path}, c.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if inside, err = parseNs(out, err); err != nil {
				fmt.Fprintf(tw, "%s\t%.0f\tringbox run failed: %v: %s\t\t\t\n", c.name, native, err, lastLine(stderr.String()))
				failed = true
				continue
			}
			ioctls = statsColumn(stderr.String(), "ioctls/trap")
			stops = statsSum(stderr.String(), "stops")
			exits = exitsSum(stderr.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.name, num(native), num(inside), ratio(inside, native), ratio(inside, floorFor(c, floor)), ioctls, exits, stops)
	}
	tw.Flush()
	if failed {
		return 1
	}
	return 0
}

// floorFor returns the SYSEMU floor for the getppid case, which is what
// the ptrace platform's round trip is compared with.
func floorFor(c benchCase, floor float64) float64 {
	if c.prog == "bench/getppid_loop-glibc" {
		return floor
	}
	return 0
}

func parseNs(out []byte, err error) (float64, error) {
	if err != nil {
		return 0, err
	}
	m := nsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no \"ns/\" figure in %q", strings.TrimSpace(string(out)))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func num(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// statsColumn extracts a column of --stats' first table for the busiest
// vCPU (the one with the most syscall exits).
func statsColumn(stderr, name string) string {
	lines := strings.Split(stderr, "\n")
	col := -1
	best, bestTraps := "-", -1
	for _, l := range lines {
		f := strings.Fields(l)
		if col < 0 {
			for i, h := range f {
				if h == name {
					col = i
				}
			}
			continue
		}
		if len(f) == 0 || f[0] == "stops" {
			break
		}
		if len(f) <= col || f[col] == "-" {
			continue
		}
		if traps, err := strconv.Atoi(f[1]); err == nil && traps > bestTraps {
			best, bestTraps = f[col], traps
		}
	}
	return best
}

// statsSum adds up a column of --stats' first table over the vCPUs.
func statsSum(stderr, name string) string {
	col, sum, found := -1, 0, false
	for _, l := range strings.Split(stderr, "\n") {
		f := strings.Fields(l)
		if col < 0 {
			for i, h := range f {
				if h == name {
					col = i
				}
			}
			continue
		}
		if len(f) == 0 || f[0] == "stops" {
			break
		}
		if len(f) > col {
			if n, err := strconv.Atoi(f[col]); err == nil {
				sum += n
				found = true
			}
		}
	}
	if !found {
		return "-"
	}
	return strconv.Itoa(sum)
}

// exitsSum is the total of the exit:* columns of --stats over the vCPUs:
// the traps of the whole run, for exits per operation.
func exitsSum(stderr string) string {
	total, found := 0, false
	for _, name := range []string{"exit:syscall", "exit:page_fault", "exit:exception", "exit:interrupt", "exit:other"} {
		if v := statsSum(stderr, name); v != "-" {
			n, _ := strconv.Atoi(v)
			total += n
			found = true
		}
	}
	if !found {
		return "-"
	}
	return strconv.Itoa(total)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

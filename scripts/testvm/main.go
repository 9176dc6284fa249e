// Command testvm runs ringbox's KVM tests on a machine without /dev/kvm, in
// the nested-KVM test VM of DESIGN.md ("Tests"): QEMU with TCG and -cpu max
// (which emulates AMD SVM) boots Debian's kernel with an initramfs whose
// /init (scripts/vminit) loads kvm-amd and runs the tests, reporting on the
// serial console.
//
// Usage:
//
//	go run ./scripts/testvm [flags] [-- CMD ARGS...]
//
// Typical uses:
//
//	go run ./scripts/testvm -gotest ./vmm/...,./platform/...,./tests/e2e -suite tests/kvm.suite
//	go run ./scripts/testvm -- ringbox run --stats -- /tests/bin/basic/hello-glibc
//	go run ./scripts/testvm                  # boot, load KVM, self-check only
//
// Steps:
//
//  1. The kernel: the package that linux-image-amd64 depends on
//     (`apt-cache depends`; run `apt-get update` first on a fresh machine),
//     fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
//     -cache, which keeps only the kernel and the four modules and is
//     reused while the package name stays the same. When apt-cache cannot
//     answer, the newest cached kernel is used. The kernel is also kept
//     uncompressed (unpacked with xz) and booted through its PVH entry,
//     which saves the guest's slow emulated decompression (about 3.5 s a
//     boot); without xz, the bzImage is booted.
//  2. The binaries, all with CGO_ENABLED=0 (the VM has no C library):
//     scripts/vminit as /init; ./cmd/ringbox as /tests/bin/ringbox (a build
//     failure is reported and skipped); one `go test -c` binary per package
//     with tests matched by -gotest, as /tests/gotest/<name>/<name>.test
//     next to a copy of the package's testdata (<name> is the package path
//     in the module with '/' turned into '-', e.g. vmm-kvm). A test package
//     that does not build is reported, skipped, and makes the run fail
//     (status 1 at least) after the others have run.
//  3. The suite (/tests/suite.list): one line
//     `/tests/gotest/<name>/<name>.test -test.v -test.timeout=<-gotimeout>
//     [-test.run=<-run>]` per Go test binary, then the lines of each -suite
//     file. Arguments after `--` form a single command run instead of the
//     suite (passed on the kernel command line).
//  4. The initramfs (images/initramfs), then QEMU: `qemu-system-x86_64
//     -accel tcg,thread=<-tcg-thread> -cpu <-cpu> -m <-mem> -smp <-smp> -nographic -nic none -no-reboot
//     -kernel vmlinux|vmlinuz -initrd <cpio> -append "console=ttyS0 panic=-1 quiet random.trust_cpu=on
//     ringbox.timeout=<-cmdtimeout> [ringbox.cmd=<base64>]"`.
//
// Inside the VM, commands run one at a time with PATH=/tests/bin:/tests,
// RINGBOX_TEST_BIN=/tests/bin and RINGBOX_BIN=/tests/bin/ringbox, each in the
// directory of its program when named by an absolute path; the -files tree
// (default tests/bin) is at /tests/bin. See scripts/vminit.
//
// The console is copied to standard output; testvm's own messages go to
// standard error, prefixed "testvm: ". The exit status is init's
// (RINGBOX-VM-EXIT: N): 0 iff the KVM self-check and every command passed,
// or, with `--`, the command's own status. Status 2 means that the run
// itself failed: build error, no kernel, no QEMU, a boot that did not reach
// init within -boot-timeout, the VM run exceeding -timeout (QEMU is
// killed), an interrupt (SIGINT, SIGTERM: QEMU is killed), or a VM that
// stopped without init's exit line; the last console lines are then shown.
//
// Host requirements (Debian 12): `apt-get update && apt-get install
// --no-install-recommends qemu-system-x86 xz-utils` (apt and dpkg-deb are
// always there). No /dev/kvm is needed on the host.
//
// `go run` turns any non-zero status into 1; run a built binary for the
// exact status. Kernel messages are quiet; `-append loglevel=7` shows them.
//
// Flags:
//
//	-gotest PKGS       comma-separated go package patterns to build test binaries of
//	-run REGEX         -test.run for those binaries (no blanks)
//	-gotimeout D       -test.timeout for those binaries (default 8m: below -cmdtimeout, so that
//	                   a hung test ends with its goroutine dump, not a kill)
//	-suite FILE        add the commands of a suite file (repeatable)
//	-files DIR         host tree packed at /tests/bin (default tests/bin if it exists; "" for none)
//	-cache DIR         kernel cache (default <repo>/.cache/testvm)
//	-kernel-pkg NAME   boot this kernel package instead of asking apt-cache
//	-cpu MODEL         QEMU CPU model (default max; `max,-svm` shows a KVM-less failure)
//	-tcg-thread MODE   single (default) or multi: QEMU's multi-threaded TCG
//	                   intermittently corrupts the nested guest's state
//	                   (triple faults; see tcgThreadHelp in qemu.go)
//	-smp N             vCPUs (default 2)
//	-mem MiB           guest memory (default 2048)
//	-timeout D         limit for the VM run, boot included, from QEMU's start (default 25m)
//	-boot-timeout D    limit for the boot, up to init's first line (default 180s)
//	-cmdtimeout D      limit for each command inside the VM (default 10m)
//	-append STR        extra kernel command line parameters
//	-qemu PATH         QEMU binary (default qemu-system-x86_64)
//	-keep              keep the work directory (initramfs, binaries) and print its path
//	-pvh=false         boot the bzImage rather than the uncompressed kernel
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ringbox/ringbox/images/initramfs"
	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

// options are the command line flags.
type options struct {
	goTest      string
	run         string
	goTimeout   time.Duration
	suites      []string
	files       string
	filesSet    bool
	cache       string
	kernelPkg   string
	cpu         string
	tcgThread   string
	smp         int
	mem         int
	timeout     time.Duration
	bootTimeout time.Duration
	cmdTimeout  time.Duration
	appendStr   string
	qemu        string
	keep        bool
	pvh         bool
	cmd         []string
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// parseFlags parses args (without the program name).
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("testvm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.goTest, "gotest", "", "comma-separated Go package patterns whose test binaries run in the VM")
	fs.StringVar(&o.run, "run", "", "-test.run `REGEX` for the Go test binaries")
	fs.DurationVar(&o.goTimeout, "gotimeout", 8*time.Minute, "-test.timeout for the Go test binaries")
	fs.Var((*stringList)(&o.suites), "suite", "suite `FILE` whose commands run in the VM (repeatable)")
	fs.StringVar(&o.files, "files", "", "host `DIR` packed at /tests/bin (default tests/bin if it exists)")
	fs.StringVar(&o.cache, "cache", "", "kernel cache `DIR` (default <repo>/.cache/testvm)")
	fs.StringVar(&o.kernelPkg, "kernel-pkg", "", "kernel package `NAME` (default: what linux-image-amd64 depends on)")
	fs.StringVar(&o.cpu, "cpu", "max", "QEMU CPU `model` (it must offer SVM for kvm-amd)")
	fs.StringVar(&o.tcgThread, "tcg-thread", "single", tcgThreadHelp)
	fs.IntVar(&o.smp, "smp", 2, "number of vCPUs")
	fs.IntVar(&o.mem, "mem", 2048, "guest memory in `MiB`")
	fs.DurationVar(&o.timeout, "timeout", 25*time.Minute, "limit for the VM run, from QEMU's start")
	fs.DurationVar(&o.bootTimeout, "boot-timeout", 180*time.Second, "limit for the boot, up to init's first line")
	fs.DurationVar(&o.cmdTimeout, "cmdtimeout", 10*time.Minute, "limit for each command in the VM")
	fs.StringVar(&o.appendStr, "append", "", "extra kernel command line parameters")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&o.pvh, "pvh", true, "boot the uncompressed kernel through PVH when available (false: the bzImage)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "files" {
			o.filesSet = true
		}
	})
	o.cmd = fs.Args()
	switch {
	case o.smp < 1:
		return nil, fmt.Errorf("-smp %d: want at least 1", o.smp)
	case o.mem < 256:
		return nil, fmt.Errorf("-mem %d: want at least 256 MiB", o.mem)
	case o.tcgThread != "single" && o.tcgThread != "multi":
		return nil, fmt.Errorf("-tcg-thread %q: want single or multi", o.tcgThread)
	case o.timeout <= 0 || o.bootTimeout <= 0 || o.cmdTimeout <= 0 || o.goTimeout <= 0:
		return nil, errors.New("timeouts must be positive")
	case strings.ContainsAny(o.run, " \t\n"):
		return nil, fmt.Errorf("-run %q: suite lines split at blanks; use \\s or a single command after --", o.run)
	}
	return o, nil
}

// splitPatterns splits the -gotest value.
func splitPatterns(s string) []string {
	var pats []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			pats = append(pats, p)
		}
	}
	return pats
}

// findRepo returns the directory holding go.mod, from dir upwards.
func findRepo(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above: run testvm inside the ringbox checkout", dir)
		}
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testvm: "+format+"\n", args...)
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		logf("%v", err)
		os.Exit(2)
	}
	os.Exit(run(o))
}

// run does the work and returns the exit status.
func run(o *options) int {
	start := time.Now()
	if err := qemuAvailable(o.qemu); err != nil {
		logf("%v", err)
		return 2
	}
	cwd, err := os.Getwd()
	if err != nil {
		logf("%v", err)
		return 2
	}
	repo, err := findRepo(cwd)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if o.cache == "" {
		o.cache = filepath.Join(repo, ".cache", "testvm")
	}
	if !o.filesSet {
		if st, err := os.Stat(filepath.Join(repo, "tests", "bin")); err == nil && st.IsDir() {
			o.files = filepath.Join(repo, "tests", "bin")
		}
	}

	k, err := getKernel(o.cache, o.kernelPkg, logf)
	if err != nil {
		logf("kernel: %v", err)
		return 2
	}
	logf("kernel %s (%s)", k.release, k.pkg)

	work, err := os.MkdirTemp("", "testvm-")
	if err != nil {
		logf("%v", err)
		return 2
	}
	if o.keep {
		logf("work directory %s (kept)", work)
	} else {
		defer os.RemoveAll(work)
	}

	spec, buildFailures, err := prepare(o, repo, work, k)
	if err != nil {
		logf("%v", err)
		return 2
	}
	// reportBuildFailures repeats, after the console output, what could
	// not run at all, and turns a passing run into a failing one.
	reportBuildFailures := func(code int) int {
		if len(buildFailures) == 0 {
			return code
		}
		logf("%d test packages did not build and did not run:", len(buildFailures))
		for _, e := range buildFailures {
			logf("  %s", strings.SplitN(e.Error(), "\n", 2)[0])
		}
		if code == 0 {
			return 1
		}
		return code
	}
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := initramfs.WriteFile(initrd, spec.entries()); err != nil {
		logf("%v", err)
		return 2
	}
	if st, err := os.Stat(initrd); err == nil {
		logf("initramfs %.1f MiB, %d suite commands; built in %s", float64(st.Size())/(1<<20), len(spec.suite), time.Since(start).Round(100*time.Millisecond))
	}

	kernelImage := k.vmlinuz
	if o.pvh && k.vmlinux != "" {
		kernelImage = k.vmlinux
	}
	cfg := vmConfig{
		qemu: o.qemu, kernel: kernelImage, initrd: initrd,
		cpu: o.cpu, tcgThread: o.tcgThread, smp: o.smp, memMiB: o.mem, cmdTimeout: o.cmdTimeout,
		cmd: o.cmd, extraAppend: o.appendStr,
	}
	if major, minor, err := qemuVersion(o.qemu); err != nil {
		logf("%v; assuming it does not fire hardware breakpoints in nested guests", err)
		cfg.noHWBreakpoints = true
	} else if !qemuArmsNestedDR7(major) {
		logf("QEMU %d.%d does not fire hardware breakpoints in nested guests: the KVM debug-register tests skip (QEMU 10 does: apt-get install -t bookworm-backports qemu-system-x86)", major, minor)
		cfg.noHWBreakpoints = true
	}
	// From here on an interrupt must not leave QEMU behind: runVM kills
	// it and the deferred clean-up runs.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stop)
	// A closed standard output (testvm | head) gives EPIPE, handled by
	// the console, instead of killing testvm before its clean-up.
	signal.Ignore(syscall.SIGPIPE)
	vmStart := time.Now()
	res, con, err := runVM(cfg, os.Stdout, o.bootTimeout, o.timeout, stop)
	if res.bootTime > 0 {
		logf("boot to init: %s", res.bootTime.Round(10*time.Millisecond))
	}
	if err != nil {
		logf("%v", err)
		printTail(os.Stderr, con)
		reportBuildFailures(2)
		return 2
	}
	logf("VM exit %d after %s (total %s)", res.code, time.Since(vmStart).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return reportBuildFailures(exitCode(res.code))
}

// prepare builds the binaries and the suite of the image. buildFailures
// lists the test packages that did not build.
func prepare(o *options, repo, work string, k *kernel) (spec imageSpec, buildFailures []error, err error) {
	b := &builder{repo: repo, out: work}
	spec = imageSpec{kernel: k, files: o.files}
	if spec.init, err = b.program("./scripts/vminit", "init"); err != nil {
		return spec, nil, fmt.Errorf("building vminit: %w", err)
	}
	if spec.ringbox, err = b.program("./cmd/ringbox", "ringbox"); err != nil {
		logf("ringbox does not build, the image has none: %v", err)
		spec.ringbox = ""
	}
	if pats := splitPatterns(o.goTest); len(pats) > 0 {
		if spec.goTests, buildFailures, err = b.goTests(pats, logf); err != nil {
			return spec, nil, err
		}
		for _, t := range spec.goTests {
			spec.suite = append(spec.suite, t.suiteLine(o.goTimeout, o.run))
		}
	}
	for _, name := range o.suites {
		cmds, err := readSuiteFile(name)
		if err != nil {
			return spec, nil, err
		}
		spec.suite = append(spec.suite, cmds...)
	}
	return spec, buildFailures, nil
}

// readSuiteFile parses a -suite file.
func readSuiteFile(name string) ([]suite.Command, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("-suite: %w", err)
	}
	defer f.Close() // read-only: a close error loses nothing
	return suite.Parse(f, name)
}

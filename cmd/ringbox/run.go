package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/boot"
	"github.com/ringbox/ringbox/boot/loader"
	"github.com/ringbox/ringbox/kernel"
)

// runFlags are the flags of "ringbox run".
type runFlags struct {
	platform    string
	cpus        int
	memory      string
	user        string
	strace      bool
	stats       bool
	logLevel    string
	logFormat   string
	ptraceScope int
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.platform, "platform", "auto", "platform: auto (kvm if usable, else ptrace), kvm or ptrace")
	fs.IntVar(&f.cpus, "cpus", runtime.NumCPU(), "number of vCPUs")
	fs.StringVar(&f.memory, "memory", "2GiB", "memory limit of the sandbox (e.g. 512MiB, 2GiB)")
	fs.StringVar(&f.user, "user", "0:0", "UID:GID of the program inside the sandbox")
	fs.BoolVar(&f.strace, "strace", false, "log every system call with its arguments and result to stderr")
	fs.BoolVar(&f.stats, "stats", false, "print per-vCPU statistics to stderr when the program exits")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&f.ptraceScope, "ptrace-scope", 1, "YAMA ptrace scope inside the sandbox: 0 classic, 1 relational (descendants only), 2 CAP_SYS_PTRACE only, 3 no attach")
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func parseUser(s string) (uid, gid uint32, err error) {
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		g = u
	}
	uv, err1 := strconv.ParseUint(u, 10, 32)
	gv, err2 := strconv.ParseUint(g, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, usageError{fmt.Sprintf("--user %q: want UID:GID with numbers, e.g. 1000:1000", s)}
	}
	return uint32(uv), uint32(gv), nil
}

// minMemory is the least memory a sandbox gets: the platform's own
// structures and a small program must fit.
const minMemory = 16 << 20

func parseMemory(s string) (uint64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, usageError{fmt.Sprintf("--memory %q: want a size such as 512MiB or 2GiB", s)}
	}
	if n < minMemory {
		return 0, usageError{fmt.Sprintf("--memory %q: at least %s is needed", s, humanize.IBytes(minMemory))}
	}
	if n > 1<<46 {
		return 0, usageError{fmt.Sprintf("--memory %q: at most 64TiB", s)}
	}
	return n, nil
}

func cmdRun(args []string) int {
	fset := flag.NewFlagSet("ringbox run", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	var f runFlags
	f.register(fset)
	fset.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: ringbox run [flags] -- PROG [ARGS...]\n\nFlags:")
		fset.SetOutput(os.Stderr)
		fset.PrintDefaults()
		fset.SetOutput(io.Discard)
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fset.Usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "ringbox run: %v\n", err)
		fmt.Fprintln(os.Stderr, `run "ringbox run -h" for the flags`)
		return exitUsage
	}
	prog := fset.Args()
	if len(prog) == 0 {
		fmt.Fprintln(os.Stderr, "ringbox run: no program given: ringbox run [flags] -- PROG [ARGS...]")
		return exitUsage
	}
	code, err := run(&f, prog)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ringbox: %v\n", err)
	}
	return code
}

// run executes prog and returns ringbox's exit status.
func run(f *runFlags, prog []string) (int, error) {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return exitUsage, err
	}
	defer log.Sync()
	if f.cpus < 1 || f.cpus > 256 {
		return exitUsage, usageError{fmt.Sprintf("--cpus %d: want 1 to 256", f.cpus)}
	}
	mem, err := parseMemory(f.memory)
	if err != nil {
		return exitUsage, err
	}
	uid, gid, err := parseUser(f.user)
	if err != nil {
		return exitUsage, err
	}
	if f.ptraceScope < 0 || f.ptraceScope > 3 {
		return exitUsage, usageError{fmt.Sprintf("--ptrace-scope %d: want 0, 1, 2 or 3", f.ptraceScope)}
	}
	factory, err := platformFactory(f.platform, f.cpus, log)
	if err != nil {
		return exitUsage, err
	}
	var straceLog *zap.Logger
	if f.strace {
		straceLog = newStraceLogger(f.logFormat)
	}
	sb, err := boot.New(boot.Options{
		NewPlatform:  factory,
		Memory:       mem,
		Strace:       f.strace,
		StraceLogger: straceLog,
		Logger:       log,
		UID:          uid,
		GID:          gid,
		PtraceScope:  f.ptraceScope,
		Stdio:        [3]int{0, 1, 2},
	})
	if err != nil {
		return exitSetup, err
	}
	defer sb.Close()
	log.Info("sandbox ready", zap.String("platform", sb.Platform().Name()), zap.Int("cpus", sb.Platform().NumCPUs()))

	stop := forwardSignals(sb.Kernel())
	defer stop()
	st, err := sb.Run(prog[0], prog, os.Environ())
	if err != nil {
		return execErrorStatus(err), err
	}
	if f.stats {
		printStats(os.Stderr, sb)
	}
	log.Info("program ended", zap.Stringer("status", st))
	return st.ShellCode(), nil
}

// execErrorStatus maps a failure to start the program to a shell's
// status: 127 not found, 126 cannot execute, 125 anything else.
func execErrorStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitNotFound
	case errors.Is(err, kernel.ErrNotExecutable), errors.Is(err, loader.ErrNotELF),
		errors.Is(err, loader.ErrWrongArch), errors.Is(err, loader.ErrBadELF), errors.Is(err, loader.ErrDynamic):
		return exitCannotExec
	}
	return exitSetup
}

// forwardSignals delivers the termination signals ringbox receives to the
// sandbox's first process, as a shell's child would receive them.
func forwardSignals(k *kernel.Kernel) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				k.SignalInit(s.(unix.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

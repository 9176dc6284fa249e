package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
	"golang.org/x/sys/unix"
)

// runner runs suite commands one at a time.
type runner struct {
	// out receives the commands' output and the report lines. With an
	// *os.File (the console) the children write to it directly.
	out io.Writer
	// env is the commands' whole environment.
	env []string
	// timeout bounds each command.
	timeout time.Duration
	// root is the working directory of commands named without a path.
	root string
}

// run runs c, reports PASS or FAIL on r.out and returns the exit code, -1 if
// the command could not start or was killed.
func (r *runner) run(c suite.Command) int {
	name := c.String()
	code, err := r.exec(c.Argv)
	switch {
	case err != nil:
		fmt.Fprintf(r.out, "%sFAIL %s (exit %d): %v\n", suite.Marker, name, code, err)
	case code != 0:
		fmt.Fprintf(r.out, "%sFAIL %s (exit %d)\n", suite.Marker, name, code)
	default:
		fmt.Fprintf(r.out, "%sPASS %s\n", suite.Marker, name)
	}
	return code
}

// exec runs argv in its own process group and returns its exit code. A
// non-nil error says why the command did not run to its own exit.
func (r *runner) exec(argv []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = r.env
	cmd.Dir = workDir(argv[0], r.root)
	cmd.Stdin = nil // /dev/null: tests must not wait for input
	cmd.Stdout = r.out
	cmd.Stderr = r.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On timeout the whole process group goes, not just the leader, so
	// that a test's children cannot outlive it.
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// Output through a pipe (a non-file out) is copied until every holder
	// of the pipe exits; do not wait forever for escaped grandchildren.
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		// Leftovers of a command that exited are killed too.
		if kerr := killGroup(cmd.Process.Pid); kerr != nil && !errors.Is(kerr, unix.ESRCH) {
			fmt.Fprintf(r.out, "%skilling the process group of %s: %v\n", suite.Marker, argv[0], kerr)
		}
	}
	reapOrphans()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return -1, fmt.Errorf("timed out after %s", time.Since(start).Round(time.Second))
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, fmt.Errorf("killed by %v", ws.Signal())
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// workDir is where a command runs: the directory of its program when that
// is an absolute path (a Go test binary finds its testdata there, as under
// go test), otherwise root.
func workDir(program, root string) string {
	if filepath.IsAbs(program) {
		return filepath.Dir(program)
	}
	return root
}

// killGroup sends SIGKILL to the process group pgid.
func killGroup(pgid int) error {
	return unix.Kill(-pgid, unix.SIGKILL)
}

// reapOrphans collects the zombies of processes that were reparented to init
// (PID 1 inherits every orphan). It runs only between commands, when init has
// no child of its own whose status exec.Cmd.Wait could lose to it.
func reapOrphans() {
	if os.Getpid() != 1 {
		return
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// result is what one run of a program left behind.
type result struct {
	stdout, stderr []byte
	// status is the exit status as a shell reports it: the exit code,
	// or 128+N for a death by signal N - the convention `ringbox run`
	// follows for the sandboxed program.
	status int
	// err is set when the run itself went wrong (could not start,
	// timed out, left a descendant holding stdout open); status is
	// then meaningless.
	err error
	// elapsed is the wall time of the run, for the log only.
	elapsed time.Duration
}

// pipeDrain bounds how long a run waits for its stdout and stderr to close
// after the process exited: a descendant that survives the program and
// keeps them open is a failure of the program, not a reason to hang.
const pipeDrain = 5 * time.Second

// runCommand runs argv with the fixed test environment plus env, stdin as
// its standard input (empty means /dev/null), in its own process group,
// which is killed when the run ends or times out so that no descendant
// survives the test.
func runCommand(argv, env []string, stdin []byte, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append([]string(nil), testEnv...), env...)
	cmd.Dir = runDir
	if len(stdin) > 0 {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = pipeDrain

	start := time.Now()
	err := cmd.Run()
	r := result{elapsed: time.Since(start)}
	// Whatever happened, nothing of this run may outlive it.
	_ = killGroup(cmd) // ESRCH when the group is already gone.
	r.stdout, r.stderr = stdout.Bytes(), stderr.Bytes()

	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.err = fmt.Errorf("timed out after %v (raise RINGBOX_TEST_TIMEOUT if the machine is slow)", timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		r.err = fmt.Errorf("exited, but a descendant kept stdout or stderr open for %v", pipeDrain)
	case err == nil:
		r.status = 0
	case errors.As(err, &exitErr):
		r.status = exitStatus(exitErr.Sys().(syscall.WaitStatus))
	default:
		r.err = fmt.Errorf("running %s: %w", argv[0], err)
	}
	return r
}

// killGroup sends SIGKILL to the process group of cmd's process.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	// The child called setpgid(0, 0), so its pid names its group.
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// exitStatus maps a wait status to the shell's convention: the exit code,
// or 128+N for a death by signal N ("The return value of a simple command
// is its exit status, or 128+n if the command is terminated by signal n"
// - bash(1)).
func exitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

package kernel

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// TestPidfdErrnos checks pidfd_open, waitid(P_PIDFD) and
// pidfd_send_signal against the errors Linux 6.18 gives (checked on the
// host). The task is pid 1 and has no children.
func TestPidfdErrnos(t *testing.T) {
	const p = 7 // the first free descriptor after setupFiles
	const pWaitid = 3
	infop := uint64(dataAddr + 10*pageSize)
	cases := []syscallCase{
		{"pidfd_open unknown flag", []uint64{unix.SYS_PIDFD_OPEN, 1, 1}, errno(unix.EINVAL)},
		{"pidfd_open 0", []uint64{unix.SYS_PIDFD_OPEN, 0, 0}, errno(unix.EINVAL)},
		{"pidfd_open -1", []uint64{unix.SYS_PIDFD_OPEN, minus1, 0}, errno(unix.EINVAL)},
		{"pidfd_open no such process", []uint64{unix.SYS_PIDFD_OPEN, 0x3ffffff0, 0}, errno(unix.ESRCH)},
		{"pidfd_open self", []uint64{unix.SYS_PIDFD_OPEN, 1, 0}, p},
		{"close-on-exec", []uint64{unix.SYS_FCNTL, p, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"F_GETFL", []uint64{unix.SYS_FCNTL, p, unix.F_GETFL}, unix.O_RDWR},
		{"read", []uint64{unix.SYS_READ, p, bufAddr, 8}, errno(unix.EINVAL)},
		{"write", []uint64{unix.SYS_WRITE, p, bufAddr, 8}, errno(unix.EINVAL)},
		{"pread", []uint64{unix.SYS_PREAD64, p, bufAddr, 8, 0}, errno(unix.EINVAL)},
		{"lseek", []uint64{unix.SYS_LSEEK, p, 0, unix.SEEK_SET}, errno(unix.ESPIPE)},
		{"nonblocking", []uint64{unix.SYS_PIDFD_OPEN, 1, pidfdNonblock}, p + 1},
		{"F_GETFL nonblocking", []uint64{unix.SYS_FCNTL, p + 1, unix.F_GETFL}, unix.O_RDWR | unix.O_NONBLOCK},
		{"waitid P_PIDFD of self", []uint64{unix.SYS_WAITID, pWaitid, p, infop, wExited}, errno(unix.ECHILD)},
		{"waitid P_PIDFD of a pipe", []uint64{unix.SYS_WAITID, pWaitid, 3, infop, wExited}, errno(unix.EINVAL)},
		{"waitid P_PIDFD closed", []uint64{unix.SYS_WAITID, pWaitid, 99, infop, wExited}, errno(unix.EBADF)},
		{"waitid P_PIDFD -1", []uint64{unix.SYS_WAITID, pWaitid, minus1, infop, wExited}, errno(unix.EINVAL)},
		{"send signal 0", []uint64{unix.SYS_PIDFD_SEND_SIGNAL, p, 0, 0, 0}, 0},
		{"send with flags", []uint64{unix.SYS_PIDFD_SEND_SIGNAL, p, 0, 0, 8}, errno(unix.EINVAL)},
		{"send a bad signal", []uint64{unix.SYS_PIDFD_SEND_SIGNAL, p, 65, 0, 0}, errno(unix.EINVAL)},
		{"send through a pipe", []uint64{unix.SYS_PIDFD_SEND_SIGNAL, 3, 0, 0, 0}, errno(unix.EBADF)},
		{"send through nothing", []uint64{unix.SYS_PIDFD_SEND_SIGNAL, 99, 0, 0, 0}, errno(unix.EBADF)},
		{"clone CLONE_PIDFD|CLONE_PARENT_SETTID", []uint64{unix.SYS_CLONE, unix.CLONE_PIDFD | unix.CLONE_PARENT_SETTID | uint64(unix.SIGCHLD), 0, infop, 0, 0}, errno(unix.EINVAL)},
		{"clone CLONE_PIDFD|CLONE_THREAD", []uint64{unix.SYS_CLONE, unix.CLONE_PIDFD | unix.CLONE_THREAD | unix.CLONE_SIGHAND | unix.CLONE_VM, 0, infop, 0, 0}, errno(unix.EINVAL)},
	}
	runCases(t, func(task *Task) {
		setupFiles(t, task)
		task.k.mu.Lock()
		task.k.groups[1] = task.tg
		task.k.mu.Unlock()
	}, cases)
}

// TestPidfdChildExit creates a child with CLONE_PIDFD, polls the pidfd
// until the child's exit makes it readable, reaps the child through it,
// and finds the pidfd hung up and the process gone afterwards.
func TestPidfdChildExit(t *testing.T) {
	const (
		pidfdAddr = dataAddr + 10*pageSize
		pollAddr  = pidfdAddr + 16
		infoAddr  = pidfdAddr + 64
		pWaitid   = 3
		exitCode  = 23
	)
	var (
		task    *Task
		parent  *fakeContext
		results []int64
		pidfd   uint64
	)
	readPidfd := func() uint64 {
		var b [4]byte
		if err := task.CopyIn(pidfdAddr, b[:]); err != nil {
			t.Errorf("reading the pidfd: %v", err)
		}
		return uint64(binary.LittleEndian.Uint32(b[:]))
	}
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		if parent == nil {
			parent = c
		}
		if c != parent {
			// The child exits at once.
			return syscallEvent(st, unix.SYS_EXIT_GROUP, exitCode)
		}
		if c.step > 0 {
			results = append(results, int64(st.Regs.Rax))
		}
		switch c.step {
		case 0:
			return syscallEvent(st, unix.SYS_CLONE, unix.CLONE_PIDFD|uint64(unix.SIGCHLD), 0, pidfdAddr, 0, 0)
		case 1:
			pidfd = readPidfd()
			var pfd [8]byte
			binary.LittleEndian.PutUint32(pfd[0:], uint32(pidfd))
			binary.LittleEndian.PutUint16(pfd[4:], unix.POLLIN)
			task.CopyOut(pollAddr, pfd[:])
			return syscallEvent(st, unix.SYS_POLL, pollAddr, 1, minus1)
		case 2:
			return syscallEvent(st, unix.SYS_WAITID, pWaitid, pidfd, infoAddr, wExited)
		case 3:
			return syscallEvent(st, unix.SYS_POLL, pollAddr, 1, 0)
		case 4:
			return syscallEvent(st, unix.SYS_PIDFD_SEND_SIGNAL, pidfd, 0, 0, 0)
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	task.start()
	k.Wait()
	if len(results) < 5 {
		t.Fatalf("got %d results, want 5: %v", len(results), results)
	}
	if results[0] <= 1 {
		t.Fatalf("clone: got %d, want a child pid", results[0])
	}
	if got, want := pidfd, uint64(0); got != want {
		t.Errorf("pidfd stored at parent_tid: got %d, want %d (the first free descriptor: only 1 is open)", got, want)
	}
	if got, want := results[1], int64(1); got != want {
		t.Errorf("poll until exit: got %d, want %d", got, want)
	}
	if got, want := results[2], int64(0); got != want {
		t.Errorf("waitid P_PIDFD: got %d, want %d", got, want)
	}
	if got, want := results[3], int64(1); got != want {
		t.Errorf("poll after reaping: got %d, want %d", got, want)
	}
	if got, want := results[4], errno(unix.ESRCH); got != want {
		t.Errorf("pidfd_send_signal to a reaped process: got %d, want %d", got, want)
	}
}

// TestPidfdReadiness checks the poll events of a pidfd in each state of
// its process, without a program.
func TestPidfdReadiness(t *testing.T) {
	_, task, _ := newTestKernel(t, nil)
	tg := task.tg
	f := newPidFD(tg, 0)
	defer f.DecRef()
	const all = unix.POLLIN | unix.POLLOUT | pollRdNorm
	tests := []struct {
		name           string
		zombie, reaped bool
		want           uint32
	}{
		{"running", false, false, 0},
		{"zombie", true, false, unix.POLLIN | pollRdNorm},
		{"reaped", false, true, unix.POLLIN | pollRdNorm | unix.POLLHUP},
	}
	for _, tc := range tests {
		tg.k.mu.Lock()
		tg.zombie, tg.reaped = tc.zombie, tc.reaped
		tg.k.mu.Unlock()
		if got := f.Readiness(all); got != tc.want {
			t.Errorf("%s: Readiness = %#x, want %#x", tc.name, got, tc.want)
		}
	}
	w := NewWaiter()
	f.EventRegister(w, unix.POLLIN)
	tg.notifyPidfds()
	select {
	case <-w.C:
	default:
		t.Errorf("notifyPidfds did not wake a registered waiter")
	}
	f.EventUnregister(w)
	if got, want := f.fdInfo(), "Pid:\t-1\nNSpid:\t-1\n"; got != want {
		t.Errorf("fdinfo of a reaped process = %q, want %q", got, want)
	}
}

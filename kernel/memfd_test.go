package kernel

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

func TestMemfd(t *testing.T) {
	const m, s = 7, 8
	name := pathAddr(0)
	cases := []syscallCase{
		{"unknown flag", []uint64{unix.SYS_MEMFD_CREATE, name, 0x100}, errno(unix.EINVAL)},
		{"MFD_EXEC|MFD_NOEXEC_SEAL", []uint64{unix.SYS_MEMFD_CREATE, name, unix.MFD_EXEC | unix.MFD_NOEXEC_SEAL}, errno(unix.EINVAL)},
		{"name in the kernel half", []uint64{unix.SYS_MEMFD_CREATE, kernelAddr, 0}, errno(unix.EFAULT)},
		{"create", []uint64{unix.SYS_MEMFD_CREATE, name, unix.MFD_CLOEXEC}, m},
		{"F_GETFD", []uint64{unix.SYS_FCNTL, m, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"F_GETFL", []uint64{unix.SYS_FCNTL, m, unix.F_GETFL}, unix.O_RDWR | oLargefile},
		{"sealing not allowed", []uint64{unix.SYS_FCNTL, m, unix.F_GET_SEALS}, unix.F_SEAL_SEAL},
		{"F_ADD_SEALS refused", []uint64{unix.SYS_FCNTL, m, unix.F_ADD_SEALS, unix.F_SEAL_WRITE}, errno(unix.EPERM)},
		{"write", []uint64{unix.SYS_WRITE, m, bufAddr, 5}, 5},
		{"position", []uint64{unix.SYS_LSEEK, m, 0, unix.SEEK_CUR}, 5},
		{"seek past the end", []uint64{unix.SYS_LSEEK, m, 10000, unix.SEEK_SET}, 10000},
		{"write there", []uint64{unix.SYS_WRITE, m, bufAddr, 1}, 1},
		{"SEEK_HOLE", []uint64{unix.SYS_LSEEK, m, 0, unix.SEEK_HOLE}, 4096},
		{"SEEK_DATA in a hole", []uint64{unix.SYS_LSEEK, m, 5000, unix.SEEK_DATA}, 8192},
		{"SEEK_HOLE in a hole", []uint64{unix.SYS_LSEEK, m, 5000, unix.SEEK_HOLE}, 5000},
		{"SEEK_DATA at the end", []uint64{unix.SYS_LSEEK, m, 10001, unix.SEEK_DATA}, errno(unix.ENXIO)},
		{"seek before 0", []uint64{unix.SYS_LSEEK, m, ^uint64(19999), unix.SEEK_END}, errno(unix.EINVAL)},
		{"pread at the last byte", []uint64{unix.SYS_PREAD64, m, bufAddr + 64, 16, 10000}, 1},
		{"pread past the end", []uint64{unix.SYS_PREAD64, m, bufAddr + 64, 16, 20000}, 0},
		{"ftruncate negative", []uint64{unix.SYS_FTRUNCATE, m, minus1}, errno(unix.EINVAL)},
		{"ftruncate", []uint64{unix.SYS_FTRUNCATE, m, 3}, 0},
		{"pread after truncation", []uint64{unix.SYS_PREAD64, m, bufAddr + 64, 16, 0}, 3},
		{"ftruncate a pipe", []uint64{unix.SYS_FTRUNCATE, 4, 0}, errno(unix.EINVAL)},
		{"ftruncate /dev/null", []uint64{unix.SYS_FTRUNCATE, 5, 0}, errno(unix.EINVAL)},
		{"ftruncate closed", []uint64{unix.SYS_FTRUNCATE, 99, 0}, errno(unix.EBADF)},
		{"fsync", []uint64{unix.SYS_FSYNC, m}, 0},
		{"fsync a pipe", []uint64{unix.SYS_FSYNC, 3}, errno(unix.EINVAL)},
		{"sealable", []uint64{unix.SYS_MEMFD_CREATE, name, unix.MFD_ALLOW_SEALING}, s},
		{"no seals yet", []uint64{unix.SYS_FCNTL, s, unix.F_GET_SEALS}, 0},
		{"unknown seal", []uint64{unix.SYS_FCNTL, s, unix.F_ADD_SEALS, 0x1000}, errno(unix.EINVAL)},
		{"seal size", []uint64{unix.SYS_FCNTL, s, unix.F_ADD_SEALS, unix.F_SEAL_GROW | unix.F_SEAL_SHRINK}, 0},
		{"grow sealed", []uint64{unix.SYS_FTRUNCATE, s, 10}, errno(unix.EPERM)},
		{"write sealed by GROW", []uint64{unix.SYS_WRITE, s, bufAddr, 2}, errno(unix.EPERM)},
		{"seal writes and seals", []uint64{unix.SYS_FCNTL, s, unix.F_ADD_SEALS, unix.F_SEAL_WRITE | unix.F_SEAL_SEAL}, 0},
		{"seals", []uint64{unix.SYS_FCNTL, s, unix.F_GET_SEALS}, 15},
		{"empty write when sealed", []uint64{unix.SYS_WRITE, s, bufAddr, 0}, 0},
		{"pwrite sealed", []uint64{unix.SYS_PWRITE64, s, bufAddr, 1, 0}, errno(unix.EPERM)},
		{"seal after F_SEAL_SEAL", []uint64{unix.SYS_FCNTL, s, unix.F_ADD_SEALS, unix.F_SEAL_EXEC}, errno(unix.EPERM)},
		{"F_GET_SEALS of /dev/null", []uint64{unix.SYS_FCNTL, 5, unix.F_GET_SEALS}, errno(unix.EINVAL)},
		{"F_ADD_SEALS of a read end", []uint64{unix.SYS_FCNTL, 3, unix.F_ADD_SEALS, 1}, errno(unix.EPERM)},
		{"F_ADD_SEALS of a write end", []uint64{unix.SYS_FCNTL, 4, unix.F_ADD_SEALS, 1}, errno(unix.EINVAL)},
		{"noexec", []uint64{unix.SYS_MEMFD_CREATE, name, unix.MFD_NOEXEC_SEAL}, 9},
		{"noexec seals", []uint64{unix.SYS_FCNTL, 9, unix.F_GET_SEALS}, unix.F_SEAL_EXEC},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

func TestMemfdFileSizeLimit(t *testing.T) {
	cases := []syscallCase{
		{"create", []uint64{unix.SYS_MEMFD_CREATE, pathAddr(0), 0}, 7},
		{"write cut at RLIMIT_FSIZE", []uint64{unix.SYS_WRITE, 7, bufAddr, 8192}, 4096},
		{"write at the limit", []uint64{unix.SYS_WRITE, 7, bufAddr, 1}, errno(unix.EFBIG)},
		{"grow past the limit", []uint64{unix.SYS_FTRUNCATE, 7, 8192}, errno(unix.EFBIG)},
		{"shrink", []uint64{unix.SYS_FTRUNCATE, 7, 100}, 0},
		{"pwrite across the limit", []uint64{unix.SYS_PWRITE64, 7, bufAddr, 10, 4090}, 6},
	}
	runCases(t, func(task *Task) {
		setupFiles(t, task)
		task.tg.limits.Set(unix.RLIMIT_FSIZE, unix.Rlimit{Cur: 4096, Max: 4096})
		// SIG_IGN: EFBIG without dying of SIGXFSZ.
		h := task.tg.handlers.Load()
		h.mu.Lock()
		h.actions[unix.SIGXFSZ-1].Handler = sigIGN
		h.mu.Unlock()
	}, cases)
}

// TestMemfdSIGXFSZ: a write past RLIMIT_FSIZE raises SIGXFSZ, whose
// default action ends the program.
func TestMemfdSIGXFSZ(t *testing.T) {
	calls := [][]uint64{
		{unix.SYS_MEMFD_CREATE, pathAddr(0), 0},
		{unix.SYS_PWRITE64, 7, bufAddr, 1, 4096},
	}
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		if c.step < len(calls) {
			return syscallEvent(st, calls[c.step][0], calls[c.step][1:]...)
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	setupFiles(t, task)
	task.tg.limits.Set(unix.RLIMIT_FSIZE, unix.Rlimit{Cur: 4096, Max: 4096})
	task.start()
	if got := k.Wait(); got.Signal != unix.SIGXFSZ {
		t.Errorf("exit status %v, want death by SIGXFSZ", got)
	}
}

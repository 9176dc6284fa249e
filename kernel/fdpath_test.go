package kernel

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenByDescriptorPath(t *testing.T) {
	p := func(i int) uint64 { return pathAddr(9 + i) }
	cases := []syscallCase{
		{"a writer of the pipe from its read end", []uint64{unix.SYS_OPEN, p(0), unix.O_WRONLY}, 7},
		{"write through it", []uint64{unix.SYS_WRITE, 7, bufAddr, 2}, 2},
		{"the pipe has both writes", []uint64{unix.SYS_READ, 3, bufAddr + 64, 100}, testPipeLen + 2},
		{"its own flags", []uint64{unix.SYS_FCNTL, 7, unix.F_GETFL}, unix.O_WRONLY | oLargefile},
		{"a reader from the write end", []uint64{unix.SYS_OPEN, p(1), unix.O_RDONLY | unix.O_NONBLOCK}, 8},
		{"nothing to read", []uint64{unix.SYS_READ, 8, bufAddr + 64, 100}, errno(unix.EAGAIN)},
		{"closed descriptor", []uint64{unix.SYS_OPEN, p(2), 0}, errno(unix.ENOENT)},
		{"leading zero", []uint64{unix.SYS_OPEN, p(3), 0}, errno(unix.ENOENT)},
		{"/dev/stdout, a host pipe, opened again", []uint64{unix.SYS_OPEN, p(4), unix.O_WRONLY}, 9},
		{"write it", []uint64{unix.SYS_WRITE, 9, bufAddr, 3}, 3},
		{"memfd", []uint64{unix.SYS_MEMFD_CREATE, pathAddr(0), 0}, 10},
		{"fill it", []uint64{unix.SYS_WRITE, 10, bufAddr, 5}, 5},
		{"open it again", []uint64{unix.SYS_OPEN, p(5), unix.O_RDWR}, 11},
		{"a new position", []uint64{unix.SYS_LSEEK, 11, 0, unix.SEEK_CUR}, 0},
		{"the same data", []uint64{unix.SYS_READ, 11, bufAddr + 64, 100}, 5},
		{"O_TRUNC", []uint64{unix.SYS_OPEN, p(5), unix.O_RDWR | unix.O_TRUNC}, 12},
		{"emptied", []uint64{unix.SYS_LSEEK, 10, 0, unix.SEEK_END}, 0},
		{"eventfd", []uint64{unix.SYS_EVENTFD2, 0, 0}, 13},
		{"nothing to open again", []uint64{unix.SYS_OPEN, p(6), unix.O_RDWR}, errno(unix.ENXIO)},
		{"an O_PATH descriptor opens its file", []uint64{unix.SYS_OPEN, p(7), unix.O_RDONLY}, 14},
		{"read it", []uint64{unix.SYS_READ, 14, bufAddr + 64, 100}, 0},
		{"O_PATH of a pipe", []uint64{unix.SYS_OPEN, p(0), unix.O_PATH}, 15},
		{"stat it", []uint64{unix.SYS_FSTAT, 15, bufAddr + 256}, 0},
		{"not readable", []uint64{unix.SYS_READ, 15, bufAddr + 64, 1}, errno(unix.EBADF)},
		{"trailing slash", []uint64{unix.SYS_OPEN, p(8), 0}, errno(unix.ENOTDIR)},
		{"O_DIRECTORY", []uint64{unix.SYS_OPEN, p(0), unix.O_DIRECTORY}, errno(unix.ENOTDIR)},
		{"our own pid", []uint64{unix.SYS_OPEN, p(9), unix.O_RDONLY}, 16},
		{"readlink /dev/stdout", []uint64{unix.SYS_READLINK, p(4), bufAddr + 512, 64}, int64(len("/proc/self/fd/1"))},
		{"readlink of a memfd's link", []uint64{unix.SYS_READLINK, p(5), bufAddr + 512, 64}, int64(len("/memfd:/dev/null (deleted)"))},
		{"readlink cut to the buffer", []uint64{unix.SYS_READLINK, p(5), bufAddr + 512, 4}, 4},
		{"readlink size 0 before the path", []uint64{unix.SYS_READLINK, kernelAddr, bufAddr + 512, 0}, errno(unix.EINVAL)},
		{"readlink of a closed fd", []uint64{unix.SYS_READLINK, p(2), bufAddr + 512, 64}, errno(unix.ENOENT)},
		{"readlink of a device", []uint64{unix.SYS_READLINK, pathAddr(0), bufAddr + 512, 64}, errno(unix.EINVAL)},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

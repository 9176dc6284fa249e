package kernel

import (
	"encoding/binary"
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// Addresses of the file tests' program: a buffer, strings and structs in
// the test vma, and an address in the kernel half.
const (
	bufAddr     = dataAddr
	iovAddr     = dataAddr + 4*pageSize
	tsAddr      = dataAddr + 5*pageSize // struct timespec {0, 1e9}
	sigsetAddr  = dataAddr + 6*pageSize
	pathsAddr   = dataAddr + 8*pageSize
	kernelAddr  = 0xffff800000000000
	minus1      = ^uint64(0)
	atFDCWD     = ^uint64(99) // AT_FDCWD, -100
	bigMapAddr  = 0x7f0000000000 - 1<<20
	testNOFILE  = 1024 // the default RLIMIT_NOFILE
	testPipeLen = 8
)

// testPaths are NUL-terminated strings at pathsAddr.
var testPaths = []string{"/dev/null", "", "/dev/null/", "dev/null", "/nonexistent", "/dev/./zero", "/dev/full", "/dev/urandom", "/dev/tty",
	"/dev/fd/3", "/proc/self/fd/4", "/dev/fd/99", "/dev/fd/03", "/dev/stdout", "/dev/fd/10", "/dev/fd/13", "/dev/fd/6", "/dev/stdin/", "/proc/1/fd/5"}

// pathAddr returns the address of testPaths[i].
func pathAddr(i int) uint64 {
	a := uint64(pathsAddr)
	for _, p := range testPaths[:i] {
		a += uint64(len(p)) + 1
	}
	return a
}

// setupFiles gives the task, besides stdout at 1: /dev/null O_RDWR at 0,
// 2 and 5, a pipe at 3 (read end, holding testPipeLen bytes) and 4, and
// an O_PATH /dev/null at 6; and writes the strings and structs the tests
// use.
func setupFiles(t *testing.T, task *Task) {
	t.Helper()
	install := func(fd int, f File) {
		if old, err := task.fdt.set(fd, f, false, testNOFILE); err != nil || old != nil {
			t.Fatalf("install fd %d: %v (old %v)", fd, err, old)
		}
	}
	open := func(path string, flags int) File {
		f, err := openFile(task, unix.AT_FDCWD, path, flags)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		return f
	}
	for _, fd := range []int{0, 2, 5} {
		install(fd, open("/dev/null", unix.O_RDWR))
	}
	r, w := newPipeFiles(task, 0)
	w.Write(task, []byte("abcdefgh"))
	install(3, r)
	install(4, w)
	install(6, open("/dev/null", unix.O_PATH|unix.O_RDWR))

	var b []byte
	for _, p := range testPaths {
		b = append(append(b, p...), 0)
	}
	task.CopyOut(pathsAddr, b)
	var iov [16]byte
	binary.LittleEndian.PutUint64(iov[0:], bufAddr)
	binary.LittleEndian.PutUint64(iov[8:], 3)
	task.CopyOut(iovAddr, iov[:])
	// Two halves of the MiB that TestFileSyscallErrnos maps.
	var big [32]byte
	binary.LittleEndian.PutUint64(big[0:], bigMapAddr)
	binary.LittleEndian.PutUint64(big[8:], 1<<19)
	binary.LittleEndian.PutUint64(big[16:], bigMapAddr+1<<19)
	binary.LittleEndian.PutUint64(big[24:], 1<<19)
	task.CopyOut(iovAddr+64, big[:])
	var ts [16]byte
	binary.LittleEndian.PutUint64(ts[8:], 1e9)
	task.CopyOut(tsAddr, ts[:])
}

// syscallCase is one call of a scripted program and its expected result.
type syscallCase struct {
	name string
	call []uint64
	want int64
}

// runCases runs the cases in order in one program and checks each result.
func runCases(t *testing.T, setup func(*Task), cases []syscallCase) {
	t.Helper()
	calls := make([][]uint64, len(cases))
	for i, c := range cases {
		calls[i] = c.call
	}
	got := runSyscalls(t, setup, calls)
	if len(got) != len(cases) {
		t.Fatalf("got %d results, want %d", len(got), len(cases))
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got[i], c.want)
		}
	}
}

func TestFileSyscallErrnos(t *testing.T) {
	const (
		rd, wr, null, opath = 3, 4, 5, 6
		intMax              = 0x7fffffff
	)
	cases := []syscallCase{
		{"dup -1", []uint64{unix.SYS_DUP, minus1}, errno(unix.EBADF)},
		{"dup closed", []uint64{unix.SYS_DUP, 99}, errno(unix.EBADF)},
		{"dup2 from -1", []uint64{unix.SYS_DUP2, minus1, 50}, errno(unix.EBADF)},
		{"dup2 to -1", []uint64{unix.SYS_DUP2, rd, minus1}, errno(unix.EBADF)},
		{"dup2 to RLIMIT_NOFILE", []uint64{unix.SYS_DUP2, rd, testNOFILE}, errno(unix.EBADF)},
		{"dup2 closed to itself", []uint64{unix.SYS_DUP2, 99, 99}, errno(unix.EBADF)},
		{"dup2 to itself", []uint64{unix.SYS_DUP2, rd, rd}, rd},
		{"dup3 to itself", []uint64{unix.SYS_DUP3, rd, rd, 0}, errno(unix.EINVAL)},
		{"dup3 closed to itself", []uint64{unix.SYS_DUP3, 99, 99, 0}, errno(unix.EINVAL)},
		{"dup3 O_NONBLOCK", []uint64{unix.SYS_DUP3, rd, 50, unix.O_NONBLOCK}, errno(unix.EINVAL)},
		{"dup3 closed beyond limit", []uint64{unix.SYS_DUP3, 99, testNOFILE, 0}, errno(unix.EBADF)},
		{"fcntl -1", []uint64{unix.SYS_FCNTL, minus1, unix.F_GETFD}, errno(unix.EBADF)},
		{"fcntl unknown command", []uint64{unix.SYS_FCNTL, rd, 9999}, errno(unix.EINVAL)},
		{"F_DUPFD -1", []uint64{unix.SYS_FCNTL, rd, unix.F_DUPFD, minus1}, errno(unix.EINVAL)},
		{"F_DUPFD INT_MAX", []uint64{unix.SYS_FCNTL, rd, unix.F_DUPFD, intMax}, errno(unix.EINVAL)},
		{"F_DUPFD at the limit", []uint64{unix.SYS_FCNTL, rd, unix.F_DUPFD, testNOFILE}, errno(unix.EINVAL)},
		{"F_GETFL read end", []uint64{unix.SYS_FCNTL, rd, unix.F_GETFL}, unix.O_RDONLY},
		{"F_GETFL write end", []uint64{unix.SYS_FCNTL, wr, unix.F_GETFL}, unix.O_WRONLY},
		{"F_GETFL /dev/null", []uint64{unix.SYS_FCNTL, null, unix.F_GETFL}, unix.O_RDWR | oLargefile},
		{"F_GETFL O_PATH", []uint64{unix.SYS_FCNTL, opath, unix.F_GETFL}, unix.O_PATH},
		{"F_GETFD O_PATH", []uint64{unix.SYS_FCNTL, opath, unix.F_GETFD}, 0},
		{"F_SETFL O_PATH", []uint64{unix.SYS_FCNTL, opath, unix.F_SETFL, 0}, errno(unix.EBADF)},
		{"F_SETFL O_DIRECT /dev/null", []uint64{unix.SYS_FCNTL, null, unix.F_SETFL, unix.O_DIRECT}, errno(unix.EINVAL)},
		{"F_GETPIPE_SZ /dev/null", []uint64{unix.SYS_FCNTL, null, unix.F_GETPIPE_SZ}, errno(unix.EBADF)},
		{"F_GETPIPE_SZ", []uint64{unix.SYS_FCNTL, rd, unix.F_GETPIPE_SZ}, 65536},
		{"F_SETPIPE_SZ -1", []uint64{unix.SYS_FCNTL, rd, unix.F_SETPIPE_SZ, minus1}, errno(unix.EINVAL)},
		{"F_SETPIPE_SZ 2 MiB", []uint64{unix.SYS_FCNTL, rd, unix.F_SETPIPE_SZ, 2 << 20}, errno(unix.EPERM)},
		{"close_range first > last", []uint64{unix.SYS_CLOSE_RANGE, 5, 4, 0}, errno(unix.EINVAL)},
		{"close_range unknown flag", []uint64{unix.SYS_CLOSE_RANGE, 100, 200, 8}, errno(unix.EINVAL)},
		{"close -1", []uint64{unix.SYS_CLOSE, minus1}, errno(unix.EBADF)},
		{"close INT_MAX", []uint64{unix.SYS_CLOSE, intMax}, errno(unix.EBADF)},
		{"pipe2 kernel address", []uint64{unix.SYS_PIPE2, kernelAddr, 0}, errno(unix.EFAULT)},
		{"pipe kernel address", []uint64{unix.SYS_PIPE, kernelAddr}, errno(unix.EFAULT)},
		{"pipe2 O_APPEND", []uint64{unix.SYS_PIPE2, bufAddr, unix.O_APPEND}, errno(unix.EINVAL)},
		{"pipe2 unknown flags", []uint64{unix.SYS_PIPE2, bufAddr, 0xffff}, errno(unix.EINVAL)},
		{"read the write end", []uint64{unix.SYS_READ, wr, bufAddr, 1}, errno(unix.EBADF)},
		{"read 0 bytes of the write end", []uint64{unix.SYS_READ, wr, bufAddr, 0}, errno(unix.EBADF)},
		{"write the read end", []uint64{unix.SYS_WRITE, rd, bufAddr, 1}, errno(unix.EBADF)},
		{"read O_PATH", []uint64{unix.SYS_READ, opath, bufAddr, 1}, errno(unix.EBADF)},
		{"read into the kernel half", []uint64{unix.SYS_READ, rd, kernelAddr, 1}, errno(unix.EFAULT)},
		{"read into NULL", []uint64{unix.SYS_READ, rd, 0, 1}, errno(unix.EFAULT)},
		{"read 2^62 bytes", []uint64{unix.SYS_READ, rd, bufAddr, 1 << 62}, errno(unix.EFAULT)},
		{"read 0 bytes at a bad address", []uint64{unix.SYS_READ, rd, 8, 0}, 0},
		{"the failed reads left the data", []uint64{unix.SYS_READ, rd, bufAddr, 100}, testPipeLen},
		{"lseek a pipe", []uint64{unix.SYS_LSEEK, rd, 0, unix.SEEK_SET}, errno(unix.ESPIPE)},
		{"lseek a pipe, bad whence", []uint64{unix.SYS_LSEEK, rd, 0, 9}, errno(unix.EINVAL)},
		{"lseek -1", []uint64{unix.SYS_LSEEK, minus1, 0, unix.SEEK_SET}, errno(unix.EBADF)},
		{"lseek /dev/null", []uint64{unix.SYS_LSEEK, null, 100, unix.SEEK_SET}, 0},
		{"lseek O_PATH", []uint64{unix.SYS_LSEEK, opath, 0, unix.SEEK_SET}, errno(unix.EBADF)},
		{"pread64 a pipe", []uint64{unix.SYS_PREAD64, rd, bufAddr, 1, 0}, errno(unix.ESPIPE)},
		{"pread64 a pipe's write end", []uint64{unix.SYS_PREAD64, wr, bufAddr, 1, 0}, errno(unix.ESPIPE)},
		{"pread64 a pipe into NULL", []uint64{unix.SYS_PREAD64, rd, 0, 1, 0}, errno(unix.ESPIPE)},
		{"pread64 negative offset", []uint64{unix.SYS_PREAD64, null, bufAddr, 1, minus1}, errno(unix.EINVAL)},
		{"pread64 -1", []uint64{unix.SYS_PREAD64, minus1, bufAddr, 1, 0}, errno(unix.EBADF)},
		{"pread64 /dev/null", []uint64{unix.SYS_PREAD64, null, bufAddr, 1, 5}, 0},
		{"pwrite64 /dev/null", []uint64{unix.SYS_PWRITE64, null, bufAddr, 3, 5}, 3},
		{"readv iovcnt -1", []uint64{unix.SYS_READV, rd, iovAddr, minus1}, errno(unix.EINVAL)},
		{"readv iovcnt 1025", []uint64{unix.SYS_READV, rd, iovAddr, 1025}, errno(unix.EINVAL)},
		{"readv iov in the kernel half", []uint64{unix.SYS_READV, rd, kernelAddr, 1}, errno(unix.EFAULT)},
		{"writev to the read end", []uint64{unix.SYS_WRITEV, rd, iovAddr, 1}, errno(unix.EBADF)},
		{"readv the write end, bad count", []uint64{unix.SYS_READV, wr, kernelAddr, minus1}, errno(unix.EBADF)},
		{"preadv a pipe", []uint64{unix.SYS_PREADV, rd, iovAddr, 1, 0}, errno(unix.ESPIPE)},
		{"preadv negative offset", []uint64{unix.SYS_PREADV, null, iovAddr, 1, minus1}, errno(unix.EINVAL)},
		{"preadv iov in the kernel half", []uint64{unix.SYS_PREADV, null, kernelAddr, 1, 0}, errno(unix.EFAULT)},
		{"preadv /dev/null", []uint64{unix.SYS_PREADV, null, iovAddr, 1, 0}, 0},
		{"pwritev /dev/null", []uint64{unix.SYS_PWRITEV, null, iovAddr, 1, 7}, 3},
		{"preadv2 unknown flag", []uint64{unix.SYS_PREADV2, null, iovAddr, 1, 0, 0, 0x1000}, errno(unix.EOPNOTSUPP)},
		{"preadv2 at offset -1", []uint64{unix.SYS_PREADV2, null, iovAddr, 1, minus1, 0, 0}, 0},
		{"FIOCLEX", []uint64{unix.SYS_IOCTL, null, fioclex}, 0},
		{"F_GETFD after FIOCLEX", []uint64{unix.SYS_FCNTL, null, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"FIONCLEX", []uint64{unix.SYS_IOCTL, null, fionclex}, 0},
		{"F_GETFD after FIONCLEX", []uint64{unix.SYS_FCNTL, null, unix.F_GETFD}, 0},
		{"FIONBIO from the kernel half", []uint64{unix.SYS_IOCTL, null, fionbio, kernelAddr}, errno(unix.EFAULT)},
		{"FIONBIO O_PATH", []uint64{unix.SYS_IOCTL, opath, fionbio, bufAddr}, errno(unix.EBADF)},
		{"FIONBIO on", []uint64{unix.SYS_IOCTL, null, fionbio, bufAddr}, 0},
		{"F_GETFL after FIONBIO", []uint64{unix.SYS_FCNTL, null, unix.F_GETFL}, unix.O_RDWR | oLargefile | unix.O_NONBLOCK},
		{"stat /dev/null", []uint64{unix.SYS_STAT, pathAddr(0), bufAddr + 256}, 0},
		{"lstat /dev/null/", []uint64{unix.SYS_LSTAT, pathAddr(2), bufAddr + 256}, errno(unix.ENOTDIR)},
		{"stat nonexistent", []uint64{unix.SYS_STAT, pathAddr(4), bufAddr + 256}, errno(unix.ENOENT)},
		{"stat into the kernel half", []uint64{unix.SYS_STAT, pathAddr(0), kernelAddr}, errno(unix.EFAULT)},
		{"newfstatat /dev/full", []uint64{unix.SYS_NEWFSTATAT, atFDCWD, pathAddr(6), bufAddr + 256, 0}, 0},
		{"ioctl unknown on a pipe", []uint64{unix.SYS_IOCTL, rd, 0xdead, bufAddr}, errno(unix.ENOTTY)},
		{"ioctl O_PATH", []uint64{unix.SYS_IOCTL, opath, unix.TIOCINQ, bufAddr}, errno(unix.EBADF)},
		{"FIONREAD empty pipe", []uint64{unix.SYS_IOCTL, rd, unix.TIOCINQ, bufAddr}, 0},
		{"fstat into the kernel half", []uint64{unix.SYS_FSTAT, rd, kernelAddr}, errno(unix.EFAULT)},
		{"fstat -1", []uint64{unix.SYS_FSTAT, minus1, bufAddr}, errno(unix.EBADF)},
		{"fstat O_PATH", []uint64{unix.SYS_FSTAT, opath, bufAddr}, 0},
		{"open a kernel-half path", []uint64{unix.SYS_OPEN, kernelAddr, 0}, errno(unix.EFAULT)},
		{"open empty path", []uint64{unix.SYS_OPEN, pathAddr(1), 0}, errno(unix.ENOENT)},
		{"open /dev/null/", []uint64{unix.SYS_OPEN, pathAddr(2), 0}, errno(unix.ENOTDIR)},
		{"open O_DIRECTORY", []uint64{unix.SYS_OPEN, pathAddr(0), unix.O_DIRECTORY}, errno(unix.ENOTDIR)},
		{"open O_CREAT|O_EXCL", []uint64{unix.SYS_OPEN, pathAddr(0), unix.O_CREAT | unix.O_EXCL}, errno(unix.EEXIST)},
		{"open O_TMPFILE read-only", []uint64{unix.SYS_OPEN, pathAddr(0), unix.O_TMPFILE}, errno(unix.EINVAL)},
		{"open O_DIRECT", []uint64{unix.SYS_OPEN, pathAddr(0), unix.O_RDWR | unix.O_DIRECT}, errno(unix.EINVAL)},
		{"open nonexistent", []uint64{unix.SYS_OPEN, pathAddr(4), 0}, errno(unix.ENOENT)},
		{"openat relative, closed dirfd", []uint64{unix.SYS_OPENAT, 99, pathAddr(3), 0}, errno(unix.EBADF)},
		{"openat relative, pipe dirfd", []uint64{unix.SYS_OPENAT, rd, pathAddr(3), 0}, errno(unix.ENOTDIR)},
		{"openat absolute ignores dirfd", []uint64{unix.SYS_OPENAT, 99, pathAddr(0), 0}, 7},
		{"open /dev/./zero", []uint64{unix.SYS_OPEN, pathAddr(5), 0}, 8},
		{"read /dev/zero", []uint64{unix.SYS_READ, 8, bufAddr, 10}, 10},
		{"mmap 1 MiB", []uint64{unix.SYS_MMAP, 0, 1 << 20, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS, minus1, 0}, bigMapAddr},
		{"read of 1 MiB of /dev/zero fills it", []uint64{unix.SYS_READ, 8, bigMapAddr, 1 << 20}, 1 << 20},
		{"readv of 1 MiB of /dev/zero fills both vectors", []uint64{unix.SYS_READV, 8, iovAddr + 64, 2}, 1 << 20},
		{"open /dev/full", []uint64{unix.SYS_OPEN, pathAddr(6), unix.O_RDWR}, 9},
		{"write /dev/full", []uint64{unix.SYS_WRITE, 9, bufAddr, 1}, errno(unix.ENOSPC)},
		{"empty write /dev/full", []uint64{unix.SYS_WRITE, 9, bufAddr, 0}, errno(unix.ENOSPC)},
		{"poll a kernel-half array", []uint64{unix.SYS_POLL, kernelAddr, 1, 0}, errno(unix.EFAULT)},
		{"poll nfds above RLIMIT_NOFILE", []uint64{unix.SYS_POLL, bufAddr, testNOFILE + 1, 0}, errno(unix.EINVAL)},
		{"poll nothing at NULL", []uint64{unix.SYS_POLL, 0, 0, 0}, 0},
		{"ppoll timeout in the kernel half", []uint64{unix.SYS_PPOLL, bufAddr, 0, kernelAddr, 0, 8}, errno(unix.EFAULT)},
		{"ppoll tv_nsec 1e9", []uint64{unix.SYS_PPOLL, bufAddr, 0, tsAddr, 0, 8}, errno(unix.EINVAL)},
		{"ppoll sigsetsize 4", []uint64{unix.SYS_PPOLL, bufAddr, 0, 0, sigsetAddr, 4}, errno(unix.EINVAL)},
		{"ppoll sigset in the kernel half", []uint64{unix.SYS_PPOLL, bufAddr, 0, 0, kernelAddr, 8}, errno(unix.EFAULT)},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

func TestDescriptorFlagsAndRanges(t *testing.T) {
	const null = 5
	cases := []syscallCase{
		{"dup takes the lowest free", []uint64{unix.SYS_DUP, null}, 7},
		{"close it", []uint64{unix.SYS_CLOSE, 7}, 0},
		{"dup3 O_CLOEXEC", []uint64{unix.SYS_DUP3, null, 51, unix.O_CLOEXEC}, 51},
		{"F_GETFD after dup3 O_CLOEXEC", []uint64{unix.SYS_FCNTL, 51, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"dup2 over an open fd", []uint64{unix.SYS_DUP2, null, 51}, 51},
		{"dup2 clears FD_CLOEXEC", []uint64{unix.SYS_FCNTL, 51, unix.F_GETFD}, 0},
		{"F_DUPFD lowest >= 60", []uint64{unix.SYS_FCNTL, null, unix.F_DUPFD, 60}, 60},
		{"F_DUPFD skips taken", []uint64{unix.SYS_FCNTL, null, unix.F_DUPFD, 60}, 61},
		{"F_DUPFD_CLOEXEC", []uint64{unix.SYS_FCNTL, null, unix.F_DUPFD_CLOEXEC, 70}, 70},
		{"F_GETFD of F_DUPFD_CLOEXEC", []uint64{unix.SYS_FCNTL, 70, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"F_SETFD other bits ignored", []uint64{unix.SYS_FCNTL, 60, unix.F_SETFD, 0xfe}, 0},
		{"F_GETFD after F_SETFD 0xfe", []uint64{unix.SYS_FCNTL, 60, unix.F_GETFD}, 0},
		{"F_SETFL", []uint64{unix.SYS_FCNTL, null, unix.F_SETFL, unix.O_NONBLOCK | unix.O_APPEND | unix.O_RDONLY | unix.O_SYNC}, 0},
		{"F_GETFL shared by dups, access mode kept, O_SYNC not settable", []uint64{unix.SYS_FCNTL, 60, unix.F_GETFL}, unix.O_RDWR | oLargefile | unix.O_NONBLOCK | unix.O_APPEND},
		{"close_range CLOEXEC", []uint64{unix.SYS_CLOSE_RANGE, 60, 61, unix.CLOSE_RANGE_CLOEXEC}, 0},
		{"close_range CLOEXEC marked 61", []uint64{unix.SYS_FCNTL, 61, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"close_range 60 to ~0U", []uint64{unix.SYS_CLOSE_RANGE, 60, 0xffffffff, 0}, 0},
		{"61 closed", []uint64{unix.SYS_FCNTL, 61, unix.F_GETFD}, errno(unix.EBADF)},
		{"70 closed", []uint64{unix.SYS_FCNTL, 70, unix.F_GETFD}, errno(unix.EBADF)},
		{"51 still open", []uint64{unix.SYS_FCNTL, 51, unix.F_GETFD}, 0},
		{"close_range UNSHARE of an unshared table", []uint64{unix.SYS_CLOSE_RANGE, 51, 51, unix.CLOSE_RANGE_UNSHARE}, 0},
		{"51 closed", []uint64{unix.SYS_CLOSE, 51}, errno(unix.EBADF)},
		{"pipe2 O_CLOEXEC|O_NONBLOCK", []uint64{unix.SYS_PIPE2, bufAddr, unix.O_CLOEXEC | unix.O_NONBLOCK}, 0},
		{"pipe read end cloexec", []uint64{unix.SYS_FCNTL, 7, unix.F_GETFD}, unix.FD_CLOEXEC},
		{"pipe write end nonblocking", []uint64{unix.SYS_FCNTL, 8, unix.F_GETFL}, unix.O_WRONLY | unix.O_NONBLOCK},
		{"nonblocking read of the empty pipe", []uint64{unix.SYS_READ, 7, bufAddr, 1}, errno(unix.EAGAIN)},
		{"writev gathers", []uint64{unix.SYS_WRITEV, 8, iovAddr, 1}, 3},
		{"FIONREAD", []uint64{unix.SYS_IOCTL, 7, unix.TIOCINQ, bufAddr + 100}, 0},
		{"readv", []uint64{unix.SYS_READV, 7, iovAddr, 1}, 3},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

func TestPipe2StoresDescriptors(t *testing.T) {
	calls := [][]uint64{
		{unix.SYS_CLOSE, 0},
		{unix.SYS_PIPE2, bufAddr, 0},
		{unix.SYS_WRITE, 1, bufAddr, 8}, // the two descriptors, to stdout
		{unix.SYS_PIPE2, kernelAddr, 0}, // EFAULT: both descriptors freed again
		{unix.SYS_DUP, 5},
	}
	var results []int64
	k, task, out := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		if c.step > 0 {
			results = append(results, int64(st.Regs.Rax))
		}
		if c.step < len(calls) {
			return syscallEvent(st, calls[c.step][0], calls[c.step][1:]...)
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	setupFiles(t, task)
	task.start()
	k.Wait()
	want := []int64{0, 0, 8, errno(unix.EFAULT), 8}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("call %d: got %d, want %d", i, results[i], want[i])
		}
	}
	var fds [8]byte
	if _, err := io.ReadFull(out, fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w := binary.LittleEndian.Uint32(fds[0:]), binary.LittleEndian.Uint32(fds[4:])
	if r != 0 || w != 7 {
		t.Errorf("pipe2 stored %d, %d; want 0, 7 (the lowest free, read end first)", r, w)
	}
}

func TestFDTable(t *testing.T) {
	task := newIdleTask(t)
	null := func() File {
		f, err := openFile(task, unix.AT_FDCWD, "/dev/null", unix.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ft := newFDTable()
	for want := 0; want < 3; want++ {
		if fd, err := ft.newFD(null(), 0, false, 10); fd != want || err != nil {
			t.Fatalf("newFD = %d, %v; want %d", fd, err, want)
		}
	}
	ft.remove(1)
	if fd, _ := ft.newFD(null(), 0, false, 10); fd != 1 {
		t.Errorf("newFD after closing 1 = %d, want 1", fd)
	}
	if fd, _ := ft.newFD(null(), 5, true, 10); fd != 5 {
		t.Errorf("newFD from 5 = %d, want 5", fd)
	}
	if fd, _ := ft.newFD(null(), 0, false, 10); fd != 3 {
		t.Errorf("newFD after one at 5 = %d, want 3", fd)
	}

	// A pipe end in the table: its reader count tells when it is closed.
	r, w := newPipeFiles(task, 0)
	defer r.DecRef()
	wfd, _ := ft.newFD(w, 0, true, 10)
	writers := func() int {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		return r.p.writers
	}

	child := ft.Fork()
	child.remove(0)
	if f := ft.get(0); f == nil {
		t.Errorf("closing in a forked table closed the parent's fd")
	} else {
		f.DecRef()
	}
	f5, cloexec := child.getWithFlags(5)
	if f5 == nil || !cloexec {
		t.Errorf("fork lost fd 5 or its FD_CLOEXEC")
	} else {
		f5.DecRef()
	}
	child.CloseOnExec()
	if f := child.get(5); f != nil {
		t.Errorf("CloseOnExec left fd 5 open")
	}
	if f := ft.get(5); f == nil {
		t.Errorf("CloseOnExec in the child closed the parent's fd 5")
	} else {
		f.DecRef()
	}
	if got := writers(); got != 1 {
		t.Errorf("pipe writers after the child's exec = %d, want 1 (the parent still holds it)", got)
	}
	child.decRef()

	ft.IncRef() // a CLONE_FILES sharer
	u := ft.Unshare()
	if u == ft {
		t.Fatalf("Unshare of a shared table returned it")
	}
	if same := ft.Unshare(); same != ft {
		t.Errorf("Unshare of a table with one user copied it")
	}
	u.decRef()
	if got := writers(); got != 1 {
		t.Errorf("pipe writers = %d, want 1", got)
	}
	ft.removeRange(uint(wfd), ^uint(0), false)
	if got := writers(); got != 0 {
		t.Errorf("pipe writers after removeRange = %d, want 0", got)
	}

	// EMFILE, and pipe's two descriptors are all or nothing.
	small := newFDTable()
	for i := 0; i < 3; i++ {
		small.newFD(null(), 0, false, 4)
	}
	pr, pw := newPipeFiles(task, 0)
	if _, err := small.newFDs([]File{pr, pw}, false, 4); err != unix.EMFILE {
		t.Errorf("newFDs with one free slot: %v, want EMFILE", err)
	}
	if fd, err := small.newFD(null(), 0, false, 4); fd != 3 || err != nil {
		t.Errorf("after the failed newFDs, newFD = %d, %v; want 3 (slot given back)", fd, err)
	}
	pr.DecRef()
	pw.DecRef()
	small.decRef()
	ft.decRef()
}

// TestOLargefile checks oLargefile against the kernel's header, where the
// host has it.
func TestOLargefile(t *testing.T) {
	b, err := os.ReadFile("/usr/include/asm-generic/fcntl.h")
	if err != nil {
		t.Skipf("no kernel headers: %v", err)
	}
	m := regexp.MustCompile(`#define O_LARGEFILE\s+(0[0-7]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("O_LARGEFILE not found in the header")
	}
	v, err := strconv.ParseInt(string(m[1]), 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	if v != oLargefile {
		t.Errorf("oLargefile = %#x, header says %#x", oLargefile, v)
	}
}

package kernel

import (
	"encoding/binary"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/platform"
)

func init() {
	register(unix.SYS_READ, "read", sysRead, argFD, argBufOut, argInt)
	register(unix.SYS_WRITE, "write", sysWrite, argFD, argBufIn, argInt)
	register(unix.SYS_READV, "readv", sysReadv, argFD, argHex, argInt)
	register(unix.SYS_WRITEV, "writev", sysWritev, argFD, argIovecIn, argInt)
	register(unix.SYS_CLOSE, "close", sysClose, argFD)
	register(unix.SYS_PREAD64, "pread64", sysPread64, argFD, argBufOut, argInt, argInt)
	register(unix.SYS_PWRITE64, "pwrite64", sysPwrite64, argFD, argBufIn, argInt, argInt)
	register(unix.SYS_IOCTL, "ioctl", sysIoctl, argFD, argHex, argHex)
	register(unix.SYS_FSTAT, "fstat", sysFstat, argFD, argHex)
	register(unix.SYS_NEWFSTATAT, "newfstatat", sysNewfstatat, argFD, argPath, argHex, argHex)
	register(unix.SYS_STAT, "stat", sysStat, argPath, argHex)
	register(unix.SYS_FTRUNCATE, "ftruncate", sysFtruncate, argFD, argInt)
	register(unix.SYS_FSYNC, "fsync", sysFsync, argFD)
	register(unix.SYS_FDATASYNC, "fdatasync", sysFsync, argFD)
	register(unix.SYS_LSTAT, "lstat", sysStat, argPath, argHex)
	register(unix.SYS_READLINK, "readlink", sysReadlink, argPath, argHex, argInt)
	register(unix.SYS_READLINKAT, "readlinkat", sysReadlinkat, argFD, argPath, argHex, argInt)
}

// maxRW bounds one read or write (Linux: MAX_RW_COUNT, INT_MAX rounded
// down to a page).
const maxRW = 0x7ffff000

// maxIOVecs is IOV_MAX (Linux: UIO_MAXIOV).
const maxIOVecs = 1024

// ioChunk is the size of the kernel buffer used per read/write step.
const ioChunk = 64 << 10

// ioBuffers recycles the ioChunk-sized buffers of reads and writes.
var ioBuffers = sync.Pool{New: func() any { return new([ioChunk]byte) }}

// getIOBuffer returns a buffer of n <= ioChunk bytes and the function
// that gives it back.
func getIOBuffer(n uint64) ([]byte, func()) {
	b := ioBuffers.Get().(*[ioChunk]byte)
	return b[:n], func() { ioBuffers.Put(b) }
}

// fdForRead returns the file at fd for reading, with a reference: EBADF
// unless open for reading (Linux: fs/read_write.c:vfs_read()).
func fdForRead(t *Task, fd int) (File, error) {
	f := t.getFile(fd)
	if f == nil {
		return nil, unix.EBADF
	}
	if !readable(f) {
		f.DecRef()
		return nil, unix.EBADF
	}
	return f, nil
}

// fdForWrite is fdForRead for writing.
func fdForWrite(t *Task, fd int) (File, error) {
	f := t.getFile(fd)
	if f == nil {
		return nil, unix.EBADF
	}
	if !writable(f) {
		f.DecRef()
		return nil, unix.EBADF
	}
	return f, nil
}

// rwReader is a read at the current position or at an offset.
type rwReader func(dst []byte) (int, error)

// rwWriter is a write at the current position or at an offset.
type rwWriter func(src []byte) (int, error)

func sysRead(t *Task, a *syscallArgs) (uint64, error) {
	f, err := fdForRead(t, a.int(0))
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return readInto(t, f, func(b []byte) (int, error) { return f.Read(t, b) }, a.u(1), a.u(2))
}

// readInto reads up to n bytes with rd into user memory at addr: EFAULT
// when the range is not in the user half, whatever n (Linux checks
// access_ok() before clamping n to MAX_RW_COUNT). One read of rd takes
// at most ioChunk bytes; a file whose reads come back short only at its
// end (fillsReads) is read again until n bytes, else the call returns
// after that one read, as read(2) may.
//
// The read is limited to the part of the buffer that is mapped writable,
// so that data is not consumed (from a pipe, say) and then lost to a
// fault: Linux copies to user memory as it goes and stops at the first
// fault, leaving the rest where it was.
func readInto(t *Task, f File, rd rwReader, addr, n uint64) (uint64, error) {
	if !userRangeOK(addr, n) {
		return 0, unix.EFAULT
	}
	n = min(n, maxRW)
	if n > 0 {
		n = t.writablePrefix(addr, n)
		if n == 0 {
			return 0, unix.EFAULT
		}
	}
	fills := fillsReads(f)
	buf, put := getIOBuffer(min(n, ioChunk))
	defer put()
	var done uint64
	for {
		c := min(n-done, uint64(len(buf)))
		got, err := rd(buf[:c])
		if got > 0 {
			if cerr := t.CopyOut(addr+done, buf[:got]); cerr != nil {
				if done > 0 {
					return done, nil
				}
				return 0, cerr
			}
			done += uint64(got)
		}
		if err != nil && done == 0 {
			return 0, err
		}
		if err != nil || !fills || uint64(got) < c || done == n {
			return done, nil
		}
	}
}

// fillsReads reports whether f's reads return short only at the end of
// the data (Linux: /dev/zero, regular files), so that a large read can be
// served in several chunks without blocking.
func fillsReads(f File) bool {
	r, ok := f.(filler)
	return ok && r.fillsReads()
}

func sysWrite(t *Task, a *syscallArgs) (uint64, error) {
	f, err := fdForWrite(t, a.int(0))
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return writeFrom(t, func(b []byte) (int, error) { return f.Write(t, b) }, a.u(1), a.u(2))
}

// writeFrom writes n bytes of user memory at addr with wr, in chunks of
// ioChunk: a chunk written short ends the write.
func writeFrom(t *Task, wr rwWriter, addr, n uint64) (uint64, error) {
	if !userRangeOK(addr, n) {
		return 0, unix.EFAULT
	}
	n = min(n, maxRW)
	if n == 0 {
		// The file still sees the write: /dev/full fails even empty
		// ones.
		_, err := wr(nil)
		return 0, err
	}
	buf, put := getIOBuffer(min(n, ioChunk))
	defer put()
	var done uint64
	for done < n {
		c := min(n-done, uint64(len(buf)))
		if err := t.CopyIn(addr+done, buf[:c]); err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		w, err := wr(buf[:c])
		done += uint64(w)
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		if uint64(w) < c {
			break
		}
	}
	return done, nil
}

// sysPread64 implements pread64(2): a negative offset is EINVAL before
// the descriptor is looked at, and a file without a position ESPIPE
// before its access mode (Linux: ksys_pread64()).
func sysPread64(t *Task, a *syscallArgs) (uint64, error) {
	off := a.i64(3)
	if off < 0 {
		return 0, unix.EINVAL
	}
	f, err := fdSeekable(t, a.int(0))
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if !readable(f) {
		return 0, unix.EBADF
	}
	pos := off
	return readInto(t, f, func(b []byte) (int, error) {
		n, err := f.PRead(t, b, pos)
		pos += int64(n)
		return n, err
	}, a.u(1), a.u(2))
}

// sysPwrite64 implements pwrite64(2).
//
// TODO(ringbox): Linux writes at the end of an O_APPEND file whatever the
// offset (pwrite(2) BUGS); hostFile passes the offset to the host, which
// does the same.
func sysPwrite64(t *Task, a *syscallArgs) (uint64, error) {
	off := a.i64(3)
	if off < 0 {
		return 0, unix.EINVAL
	}
	f, err := fdSeekable(t, a.int(0))
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if !writable(f) {
		return 0, unix.EBADF
	}
	return writeFrom(t, func(b []byte) (int, error) { return f.PWrite(t, b, off) }, a.u(1), a.u(2))
}

// writablePrefix returns how much of [addr, addr+n) is mapped writable
// from addr on.
func (t *Task) writablePrefix(addr, n uint64) uint64 {
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	end := addr + n
	a := addr
	for a < end {
		i := mm.findLocked(a)
		if i < 0 || mm.vmas[i].perms&platform.Write == 0 {
			break
		}
		a = mm.vmas[i].end
	}
	return min(a, end) - addr
}

// fdSeekable returns the file at fd if it has a position (Linux:
// FMODE_PREAD), else EBADF or ESPIPE.
func fdSeekable(t *Task, fd int) (File, error) {
	f := t.getFile(fd)
	if f == nil {
		return nil, unix.EBADF
	}
	if !f.Seekable() {
		f.DecRef()
		return nil, unix.ESPIPE
	}
	return f, nil
}

// iovec is struct iovec.
type iovec struct{ base, len uint64 }

// readIovecs copies in an iovec array (Linux: lib/iov_iter.c:
// __import_iovec()): EINVAL for more than IOV_MAX vectors or a negative
// length, EFAULT for a vector outside the user half; the total is clamped
// to MAX_RW_COUNT by shortening the vectors.
func readIovecs(t *Task, addr uint64, cnt int) ([]iovec, uint64, error) {
	if cnt < 0 || cnt > maxIOVecs {
		return nil, 0, unix.EINVAL
	}
	if cnt == 0 {
		return nil, 0, nil
	}
	raw := make([]byte, 16*cnt)
	if err := t.CopyIn(addr, raw); err != nil {
		return nil, 0, err
	}
	iov := make([]iovec, cnt)
	for i := range iov {
		iov[i].base = binary.LittleEndian.Uint64(raw[16*i:])
		iov[i].len = binary.LittleEndian.Uint64(raw[16*i+8:])
		if int64(iov[i].len) < 0 {
			return nil, 0, unix.EINVAL
		}
	}
	var total uint64
	for i := range iov {
		if !userRangeOK(iov[i].base, iov[i].len) {
			return nil, 0, unix.EFAULT
		}
		iov[i].len = min(iov[i].len, maxRW-total)
		total += iov[i].len
	}
	return iov, total, nil
}

// sysWritev implements writev(2): the access mode is checked before the
// vectors are read (Linux 6.x: vfs_writev()).
func sysWritev(t *Task, a *syscallArgs) (uint64, error) {
	f, err := fdForWrite(t, a.int(0))
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	iov, total, err := readIovecs(t, a.u(1), a.int(2))
	if err != nil {
		return 0, err
	}
	return writeIovecs(t, func(b []byte) (int, error) { return f.Write(t, b) }, iov, total)
}

// writeIovecs writes the vectors with wr. Up to ioChunk bytes are gathered
// into one write, so that a pipe sees one (atomic, up to PIPE_BUF) write
// as Linux's vectored write gives it.
func writeIovecs(t *Task, wr rwWriter, iov []iovec, total uint64) (uint64, error) {
	if total == 0 {
		return 0, nil
	}
	if total <= ioChunk {
		b, put := getIOBuffer(total)
		defer put()
		buf := b[:0]
		for _, v := range iov {
			if v.len == 0 {
				continue
			}
			start := len(buf)
			buf = buf[:start+int(v.len)]
			if err := t.CopyIn(v.base, buf[start:]); err != nil {
				buf = buf[:start]
				if start == 0 {
					return 0, err
				}
				break
			}
		}
		n, err := wr(buf)
		if n == 0 && err != nil {
			return 0, err
		}
		return uint64(n), nil
	}
	var done uint64
	for _, v := range iov {
		if v.len == 0 {
			continue
		}
		n, err := writeFrom(t, wr, v.base, v.len)
		done += n
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		if n < v.len {
			break
		}
	}
	return done, nil
}

// sysReadv implements readv(2), checking the access mode first as writev.
func sysReadv(t *Task, a *syscallArgs) (uint64, error) {
	f, err := fdForRead(t, a.int(0))
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	iov, total, err := readIovecs(t, a.u(1), a.int(2))
	if err != nil {
		return 0, err
	}
	return readIovecsInto(t, f, func(b []byte) (int, error) { return f.Read(t, b) }, iov, total)
}

// readIovecsInto makes one read of up to ioChunk bytes and scatters it
// over the vectors, so that a pipe's readv fills several vectors at once.
// As in readInto, the read stops where the writable memory does. A file
// whose reads are short only at its end (fillsReads) is read vector by
// vector until one comes back short.
func readIovecsInto(t *Task, f File, rd rwReader, iov []iovec, total uint64) (uint64, error) {
	if total == 0 {
		return 0, nil
	}
	if fillsReads(f) {
		var done uint64
		for _, v := range iov {
			if v.len == 0 {
				continue
			}
			n, err := readInto(t, f, rd, v.base, v.len)
			done += n
			if err != nil {
				if done > 0 {
					return done, nil
				}
				return 0, err
			}
			if n < v.len {
				break
			}
		}
		return done, nil
	}
	var room uint64
	for _, v := range iov {
		if room >= ioChunk {
			break
		}
		c := min(v.len, ioChunk-room)
		w := t.writablePrefix(v.base, c)
		room += w
		if w < c {
			break
		}
	}
	if room == 0 {
		return 0, unix.EFAULT
	}
	buf, put := getIOBuffer(room)
	defer put()
	n, err := rd(buf)
	if n <= 0 {
		return 0, err
	}
	buf = buf[:n]
	var done uint64
	for _, v := range iov {
		if len(buf) == 0 {
			break
		}
		c := min(v.len, uint64(len(buf)))
		if cerr := t.CopyOut(v.base, buf[:c]); cerr != nil {
			if done > 0 {
				return done, nil
			}
			return 0, cerr
		}
		done += c
		buf = buf[c:]
	}
	return done, nil
}

// Generic ioctl requests, answered for every file before its own Ioctl
// (Linux: include/uapi/asm-generic/ioctls.h; x/sys/unix lacks them).
const (
	fionbio  = 0x5421
	fionclex = 0x5450
	fioclex  = 0x5451
)

// sysIoctl implements ioctl(2): the descriptor-level requests first
// (Linux: fs/ioctl.c:do_vfs_ioctl()), then the file's.
//
// TODO(ringbox): FIOASYNC, FIOQSIZE and the FS_IOC_* requests go to the
// file, which answers ENOTTY.
func sysIoctl(t *Task, a *syscallArgs) (uint64, error) {
	fd := a.int(0)
	f := t.getFile(fd)
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	req := uint64(uint32(a.u(1)))
	switch req {
	case fioclex, fionclex:
		return 0, t.fdt.setCloexec(fd, req == fioclex)
	case fionbio:
		var b [4]byte
		if err := t.CopyIn(a.u(2), b[:]); err != nil {
			return 0, err
		}
		fl := f.Flags() &^ unix.O_NONBLOCK
		if binary.LittleEndian.Uint32(b[:]) != 0 {
			fl |= unix.O_NONBLOCK
		}
		return 0, f.SetFlags(fl)
	}
	return f.Ioctl(t, req, a.u(2))
}

// sysFtruncate implements ftruncate(2): EINVAL for a negative length,
// then EBADF, then EINVAL unless a regular file open for writing (Linux:
// fs/open.c:do_sys_ftruncate()).
func sysFtruncate(t *Task, a *syscallArgs) (uint64, error) {
	size := a.i64(1)
	if size < 0 {
		return 0, unix.EINVAL
	}
	f := t.getFile(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	tr, ok := f.(truncater)
	if !ok || !writable(f) {
		return 0, unix.EINVAL
	}
	return 0, tr.Truncate(t, size)
}

// sysFsync implements fsync(2) and fdatasync(2): EINVAL for files that
// cannot be synchronized (pipes, devices).
func sysFsync(t *Task, a *syscallArgs) (uint64, error) {
	f := t.getFile(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	s, ok := f.(syncer)
	if !ok {
		return 0, unix.EINVAL
	}
	return 0, s.Sync()
}

func sysFstat(t *Task, a *syscallArgs) (uint64, error) {
	return 0, statFD(t, a.int(0), a.u(1))
}

func statFD(t *Task, fd int, addr uint64) error {
	f := t.fdt.get(fd)
	if f == nil {
		return unix.EBADF
	}
	defer f.DecRef()
	st, err := f.Stat(t)
	if err != nil {
		return err
	}
	return t.CopyOut(addr, statBytes(&st))
}

// sysNewfstatat implements fstatat(2): a descriptor with AT_EMPTY_PATH, or
// a path that openFile knows.
//
// TODO(ringbox): path lookups come with the filesystem; until then only
// the memory devices have a path.
func sysNewfstatat(t *Task, a *syscallArgs) (uint64, error) {
	flags := a.int(3)
	if flags&^(unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT) != 0 {
		return 0, unix.EINVAL
	}
	path, err := t.CopyInString(a.u(1), unix.PathMax-1)
	if err != nil {
		return 0, err
	}
	if path == "" {
		if flags&unix.AT_EMPTY_PATH == 0 {
			return 0, unix.ENOENT
		}
		return 0, statFD(t, a.int(0), a.u(2))
	}
	return 0, statPath(t, a.int(0), path, a.u(2))
}

// sysStat implements stat(2) and lstat(2) (the same while there are no
// symbolic links).
func sysStat(t *Task, a *syscallArgs) (uint64, error) {
	path, err := t.CopyInString(a.u(0), unix.PathMax-1)
	if err != nil {
		return 0, err
	}
	return 0, statPath(t, unix.AT_FDCWD, path, a.u(1))
}

// statPath stats path through an O_PATH open of it.
func statPath(t *Task, dirfd int, path string, addr uint64) error {
	f, err := openFile(t, dirfd, path, unix.O_PATH)
	if err != nil {
		return err
	}
	defer f.DecRef()
	st, err := f.Stat(t)
	if err != nil {
		return err
	}
	return t.CopyOut(addr, statBytes(&st))
}

func sysReadlink(t *Task, a *syscallArgs) (uint64, error) {
	return readlink(t, a.u(0), a.u(1), a.int(2))
}

func sysReadlinkat(t *Task, a *syscallArgs) (uint64, error) {
	return readlink(t, a.u(1), a.u(2), a.int(3))
}

// readlink implements readlink(2) and readlinkat(2) for the links ringbox
// has: /proc/self/exe, the descriptor links (/proc/self/fd/N and the
// /dev/fd, /dev/std* links to them), and the host's own symbolic links
// outside /proc and /dev (the read-only host view of openHost). A size
// of 0 or less is EINVAL before the path is read (Linux:
// fs/stat.c:do_readlinkat()).
//
// TODO(ringbox): the rest of /proc comes with procfs, and links of the
// sandbox's own root filesystem with the VFS.
func readlink(t *Task, pathAddr, buf uint64, size int) (uint64, error) {
	if size <= 0 {
		return 0, unix.EINVAL
	}
	path, err := t.CopyInString(pathAddr, unix.PathMax-1)
	if err != nil {
		return 0, err
	}
	if path == "" {
		return 0, unix.ENOENT
	}
	target, err := readlinkPath(t, path)
	if err != nil {
		return 0, err
	}
	b := []byte(target)
	if len(b) > size {
		b = b[:size]
	}
	if err := t.CopyOut(buf, b); err != nil {
		return 0, err
	}
	return uint64(len(b)), nil
}

// readlinkPath returns the target of the link at path.
func readlinkPath(t *Task, path string) (string, error) {
	name, _ := cleanPath(path)
	switch name {
	case "/proc/self/exe", "/proc/thread-self/exe", procPath(t.tg.tgid, "exe"), procPath(t.tid, "exe"):
		return t.tg.exe, nil
	case "/dev/fd":
		return "/proc/self/fd", nil
	case "/dev/stdin", "/dev/stdout", "/dev/stderr":
		fd, _ := fdPathFD(t, name)
		return "/proc/self/fd/" + strconv.Itoa(fd), nil
	}
	if fd, ok := fdPathFD(t, name); ok {
		f := t.fdt.get(fd)
		if f == nil {
			return "", unix.ENOENT
		}
		defer f.DecRef()
		return fdLinkName(f)
	}
	if strings.HasPrefix(name, "/proc/") || strings.HasPrefix(name, "/dev/") {
		f, err := openFile(t, unix.AT_FDCWD, name, unix.O_PATH)
		if err != nil {
			return "", unix.ENOENT
		}
		f.DecRef()
		return "", unix.EINVAL // there, but not a link
	}
	return hostReadlink(name)
}

package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

func init() {
	register(unix.SYS_READ, "read", sysRead, argFD, argBufOut, argInt)
	register(unix.SYS_WRITE, "write", sysWrite, argFD, argBufIn, argInt)
	register(unix.SYS_READV, "readv", sysReadv, argFD, argHex, argInt)
	register(unix.SYS_WRITEV, "writev", sysWritev, argFD, argIovecIn, argInt)
	register(unix.SYS_CLOSE, "close", sysClose, argFD)
	register(unix.SYS_IOCTL, "ioctl", sysIoctl, argFD, argHex, argHex)
	register(unix.SYS_FSTAT, "fstat", sysFstat, argFD, argHex)
	register(unix.SYS_NEWFSTATAT, "newfstatat", sysNewfstatat, argFD, argPath, argHex, argHex)
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

func sysRead(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	return readInto(t, f, a.u(1), min(a.u(2), maxRW))
}

// readInto reads up to n bytes from f into user memory at addr. It
// returns after the first short read, as read(2) may.
func readInto(t *Task, f File, addr, n uint64) (uint64, error) {
	if n == 0 {
		return 0, nil
	}
	if !userRangeOK(addr, n) {
		return 0, unix.EFAULT
	}
	buf := make([]byte, min(n, ioChunk))
	got, err := f.Read(t, buf)
	if got > 0 {
		if cerr := t.CopyOut(addr, buf[:got]); cerr != nil {
			return 0, cerr
		}
		return uint64(got), nil
	}
	return 0, err
}

func sysWrite(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	return writeFrom(t, f, a.u(1), min(a.u(2), maxRW))
}

// writeFrom writes n bytes of user memory at addr to f.
func writeFrom(t *Task, f File, addr, n uint64) (uint64, error) {
	if n == 0 {
		return 0, nil
	}
	if !userRangeOK(addr, n) {
		return 0, unix.EFAULT
	}
	buf := make([]byte, min(n, ioChunk))
	var done uint64
	for done < n {
		c := min(n-done, uint64(len(buf)))
		if err := t.CopyIn(addr+done, buf[:c]); err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		w, err := f.Write(t, buf[:c])
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

// iovec is struct iovec.
type iovec struct{ base, len uint64 }

// readIovecs copies in an iovec array (Linux: lib/iov_iter.c
// import_iovec(): EINVAL for too many vectors or a total over SSIZE_MAX).
func readIovecs(t *Task, addr uint64, cnt int) ([]iovec, error) {
	if cnt < 0 || cnt > maxIOVecs {
		return nil, unix.EINVAL
	}
	if cnt == 0 {
		return nil, nil
	}
	raw := make([]byte, 16*cnt)
	if err := t.CopyIn(addr, raw); err != nil {
		return nil, err
	}
	iov := make([]iovec, cnt)
	var total uint64
	for i := range iov {
		iov[i].base = binary.LittleEndian.Uint64(raw[16*i:])
		iov[i].len = binary.LittleEndian.Uint64(raw[16*i+8:])
		if int64(iov[i].len) < 0 {
			return nil, unix.EINVAL
		}
		total += iov[i].len
		if int64(total) < 0 {
			return nil, unix.EINVAL
		}
	}
	return iov, nil
}

func sysWritev(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	iov, err := readIovecs(t, a.u(1), a.int(2))
	if err != nil {
		return 0, err
	}
	// Gather into one buffer so that a pipe or terminal sees one write,
	// as Linux's vectored write does for small totals.
	var total uint64
	for _, v := range iov {
		total += v.len
	}
	if total <= ioChunk {
		buf := make([]byte, 0, total)
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
		n, err := f.Write(t, buf)
		if n == 0 && err != nil {
			return 0, err
		}
		return uint64(n), nil
	}
	var done uint64
	for _, v := range iov {
		n, err := writeFrom(t, f, v.base, min(v.len, maxRW-done))
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

func sysReadv(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	iov, err := readIovecs(t, a.u(1), a.int(2))
	if err != nil {
		return 0, err
	}
	for _, v := range iov {
		if v.len == 0 {
			continue
		}
		// One read into the first non-empty vector: a short read ends
		// readv as it would end read.
		return readInto(t, f, v.base, min(v.len, maxRW))
	}
	return 0, nil
}

func sysClose(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.fdt.remove(a.int(0))
}

func sysIoctl(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	return f.Ioctl(t, uint64(uint32(a.u(1))), a.u(2))
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

// sysNewfstatat implements fstatat(2) for AT_EMPTY_PATH on a descriptor.
//
// TODO(ringbox): path lookups come with the filesystem; until then a path
// is ENOENT.
func sysNewfstatat(t *Task, a *syscallArgs) (uint64, error) {
	flags := a.int(3)
	if flags&^(unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT) != 0 {
		return 0, unix.EINVAL
	}
	path, err := t.CopyInString(a.u(1), unix.PathMax)
	if err != nil {
		return 0, err
	}
	if path == "" {
		if flags&unix.AT_EMPTY_PATH == 0 {
			return 0, unix.ENOENT
		}
		return 0, statFD(t, a.int(0), a.u(2))
	}
	return 0, unix.ENOENT
}

func sysReadlink(t *Task, a *syscallArgs) (uint64, error) {
	return readlink(t, a.u(0), a.u(1), a.int(2))
}

func sysReadlinkat(t *Task, a *syscallArgs) (uint64, error) {
	return readlink(t, a.u(1), a.u(2), a.int(3))
}

// readlink answers /proc/self/exe and /proc/<pid>/exe of the caller.
//
// TODO(ringbox): other links come with the filesystem and /proc.
func readlink(t *Task, pathAddr, buf uint64, size int) (uint64, error) {
	path, err := t.CopyInString(pathAddr, unix.PathMax)
	if err != nil {
		return 0, err
	}
	if size <= 0 {
		return 0, unix.EINVAL
	}
	var target string
	switch path {
	case "/proc/self/exe", "/proc/thread-self/exe":
		target = t.tg.exe
	default:
		if path == procPath(t.tg.tgid, "exe") || path == procPath(t.tid, "exe") {
			target = t.tg.exe
		} else {
			return 0, unix.ENOENT
		}
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

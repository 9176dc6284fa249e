package kernel

import (
	"golang.org/x/sys/unix"
)

// Vectored reads and writes at an offset: preadv(2), pwritev(2) and their
// flagged variants (Linux: fs/read_write.c).

func init() {
	register(unix.SYS_PREADV, "preadv", sysPreadv, argFD, argHex, argInt, argInt, argInt)
	register(unix.SYS_PWRITEV, "pwritev", sysPwritev, argFD, argIovecIn, argInt, argInt, argInt)
	register(unix.SYS_PREADV2, "preadv2", sysPreadv2, argFD, argHex, argInt, argInt, argInt, argHex)
	register(unix.SYS_PWRITEV2, "pwritev2", sysPwritev2, argFD, argIovecIn, argInt, argInt, argInt, argHex)
}

// rwfIgnored are the RWF_* flags ringbox accepts and has no use for: they
// concern caching and durability of storage it does not have yet.
const rwfIgnored = unix.RWF_HIPRI | unix.RWF_DSYNC | unix.RWF_SYNC | unix.RWF_DONTCACHE

// The offset arrives as two registers, pos_l and pos_h; on a 64-bit kernel
// pos_l holds all of it (Linux: pos_from_hilo()).

func sysPreadv(t *Task, a *syscallArgs) (uint64, error) {
	return preadv(t, a.int(0), a.u(1), a.int(2), a.i64(3), 0)
}

func sysPwritev(t *Task, a *syscallArgs) (uint64, error) {
	return pwritev(t, a.int(0), a.u(1), a.int(2), a.i64(3), 0)
}

// sysPreadv2 implements preadv2(2): offset -1 reads at the current
// position, as readv does.
func sysPreadv2(t *Task, a *syscallArgs) (uint64, error) {
	if a.i64(3) == -1 {
		if err := checkRWF(a.int(5)); err != nil {
			return 0, err
		}
		return sysReadv(t, a)
	}
	return preadv(t, a.int(0), a.u(1), a.int(2), a.i64(3), a.int(5))
}

// sysPwritev2 implements pwritev2(2).
func sysPwritev2(t *Task, a *syscallArgs) (uint64, error) {
	if a.i64(3) == -1 {
		if err := checkRWF(a.int(5)); err != nil {
			return 0, err
		}
		return sysWritev(t, a)
	}
	return pwritev(t, a.int(0), a.u(1), a.int(2), a.i64(3), a.int(5))
}

// checkRWF validates preadv2/pwritev2 flags: unknown ones are EOPNOTSUPP
// (Linux: kiocb_set_rw_flags()).
//
// TODO(ringbox): RWF_NOWAIT, RWF_APPEND, RWF_NOAPPEND, RWF_ATOMIC and
// RWF_NOSIGNAL change what the call does and are EOPNOTSUPP until
// implemented; Linux honours them.
func checkRWF(flags int) error {
	if flags&^rwfIgnored != 0 {
		return unix.EOPNOTSUPP
	}
	return nil
}

// preadv reads into the vectors at off: EINVAL for a negative offset
// before the descriptor is looked at, ESPIPE for a file without a
// position, then the access mode, then the vectors' errors (Linux:
// do_preadv() and vfs_readv()).
func preadv(t *Task, fd int, iovAddr uint64, cnt int, off int64, flags int) (uint64, error) {
	if off < 0 {
		return 0, unix.EINVAL
	}
	f, err := fdSeekable(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if !readable(f) {
		return 0, unix.EBADF
	}
	iov, total, err := readIovecs(t, iovAddr, cnt)
	if err != nil {
		return 0, err
	}
	if err := checkRWF(flags); err != nil {
		return 0, err
	}
	pos := off
	return readIovecsInto(t, f, func(b []byte) (int, error) {
		n, err := f.PRead(t, b, pos)
		pos += int64(n)
		return n, err
	}, iov, total)
}

// pwritev is preadv for writing.
func pwritev(t *Task, fd int, iovAddr uint64, cnt int, off int64, flags int) (uint64, error) {
	if off < 0 {
		return 0, unix.EINVAL
	}
	f, err := fdSeekable(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if !writable(f) {
		return 0, unix.EBADF
	}
	iov, total, err := readIovecs(t, iovAddr, cnt)
	if err != nil {
		return 0, err
	}
	if err := checkRWF(flags); err != nil {
		return 0, err
	}
	// Each chunk goes at its own offset.
	pos := off
	return writeIovecs(t, func(b []byte) (int, error) {
		n, err := f.PWrite(t, b, pos)
		pos += int64(n)
		return n, err
	}, iov, total)
}

package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// System calls on the descriptor table: dup(2), fcntl(2), close_range(2),
// pipe(2), open(2) and lseek(2) (Linux: fs/file.c, fs/fcntl.c, fs/pipe.c,
// fs/open.c, fs/read_write.c).

func init() {
	register(unix.SYS_DUP, "dup", sysDup, argFD)
	register(unix.SYS_DUP2, "dup2", sysDup2, argFD, argFD)
	register(unix.SYS_DUP3, "dup3", sysDup3, argFD, argFD, argHex)
	register(unix.SYS_FCNTL, "fcntl", sysFcntl, argFD, argInt, argHex)
	register(unix.SYS_CLOSE_RANGE, "close_range", sysCloseRange, argFD, argFD, argHex)
	register(unix.SYS_PIPE, "pipe", sysPipe, argHex)
	register(unix.SYS_PIPE2, "pipe2", sysPipe2, argHex, argHex)
	register(unix.SYS_OPEN, "open", sysOpen, argPath, argHex, argHex)
	register(unix.SYS_OPENAT, "openat", sysOpenat, argFD, argPath, argHex, argHex)
	register(unix.SYS_CREAT, "creat", sysCreat, argPath, argHex)
	register(unix.SYS_LSEEK, "lseek", sysLseek, argFD, argInt, argInt)
}

// fileLimit is RLIMIT_NOFILE's soft limit, the bound of descriptor
// numbers (capped at nr_open, which the limit cannot exceed on Linux).
func (t *Task) fileLimit() int {
	l := t.tg.limits.Get(unix.RLIMIT_NOFILE).Cur
	if l > nfsMax {
		return nfsMax
	}
	return int(l)
}

// getFile returns the file at fd with a reference, or nil when fd is not
// open or is an O_PATH descriptor, which only a few calls accept (Linux:
// fdget() versus fdget_raw()).
func (t *Task) getFile(fd int) File {
	f := t.fdt.get(fd)
	if f != nil && f.Flags()&unix.O_PATH != 0 {
		f.DecRef()
		return nil
	}
	return f
}

// readable and writable say whether the access mode allows reading or
// writing (Linux: FMODE_READ, FMODE_WRITE; access mode 3 allows neither).
func readable(f File) bool {
	acc := f.Flags() & unix.O_ACCMODE
	return acc == unix.O_RDONLY || acc == unix.O_RDWR
}

func writable(f File) bool {
	acc := f.Flags() & unix.O_ACCMODE
	return acc == unix.O_WRONLY || acc == unix.O_RDWR
}

// sysDup implements dup(2).
func sysDup(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	fd, err := t.fdt.newFD(f, 0, false, t.fileLimit())
	if err != nil {
		f.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

// sysDup2 implements dup2(2): dup2(fd, fd) checks fd and returns it.
func sysDup2(t *Task, a *syscallArgs) (uint64, error) {
	oldfd, newfd := a.int(0), a.int(1)
	if oldfd == newfd {
		f := t.fdt.get(oldfd)
		if f == nil {
			return 0, unix.EBADF
		}
		f.DecRef()
		return uint64(newfd), nil
	}
	return dup3(t, oldfd, newfd, 0)
}

// sysDup3 implements dup3(2).
func sysDup3(t *Task, a *syscallArgs) (uint64, error) {
	flags := a.int(2)
	if flags&^unix.O_CLOEXEC != 0 {
		return 0, unix.EINVAL
	}
	if a.int(0) == a.int(1) {
		return 0, unix.EINVAL
	}
	return dup3(t, a.int(0), a.int(1), flags)
}

// dup3 makes newfd refer to oldfd's file, closing what newfd had (Linux:
// fs/file.c:ksys_dup3(), which checks newfd against the limit first).
func dup3(t *Task, oldfd, newfd, flags int) (uint64, error) {
	// newfd is unsigned in Linux: a negative one is beyond any limit.
	if newfd < 0 || newfd >= t.fileLimit() {
		return 0, unix.EBADF
	}
	f := t.fdt.get(oldfd)
	if f == nil {
		return 0, unix.EBADF
	}
	old, err := t.fdt.set(newfd, f, flags&unix.O_CLOEXEC != 0, t.fileLimit())
	if err != nil {
		f.DecRef()
		return 0, err
	}
	if old != nil {
		old.DecRef()
	}
	return uint64(newfd), nil
}

// sysFcntl implements fcntl(2) (Linux: fs/fcntl.c:do_fcntl()).
//
// TODO(ringbox): record locks (F_GETLK, F_SETLK, F_SETLKW, F_OFD_*),
// F_GETOWN/F_SETOWN, F_GETSIG/F_SETSIG, leases and F_NOTIFY are EINVAL
// until the filesystem; Linux implements them.
func sysFcntl(t *Task, a *syscallArgs) (uint64, error) {
	fd, cmd, arg := a.int(0), a.int(1), a.u(2)
	f, cloexec := t.fdt.getWithFlags(fd)
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	if f.Flags()&unix.O_PATH != 0 {
		// An O_PATH descriptor takes only the descriptor-level
		// commands (Linux: check_fcntl_cmd()).
		switch cmd {
		case unix.F_DUPFD, unix.F_DUPFD_CLOEXEC, unix.F_GETFD, unix.F_SETFD, unix.F_GETFL:
		default:
			return 0, unix.EBADF
		}
	}
	switch cmd {
	case unix.F_DUPFD, unix.F_DUPFD_CLOEXEC:
		// The lowest acceptable descriptor is an int turned unsigned:
		// negative is beyond the limit (Linux: f_dupfd()).
		from := int64(uint32(arg))
		if from >= int64(t.fileLimit()) {
			return 0, unix.EINVAL
		}
		f.IncRef()
		nfd, err := t.fdt.newFD(f, int(from), cmd == unix.F_DUPFD_CLOEXEC, t.fileLimit())
		if err != nil {
			f.DecRef()
			return 0, err
		}
		return uint64(nfd), nil
	case unix.F_GETFD:
		if cloexec {
			return unix.FD_CLOEXEC, nil
		}
		return 0, nil
	case unix.F_SETFD:
		return 0, t.fdt.setCloexec(fd, arg&unix.FD_CLOEXEC != 0)
	case unix.F_GETFL:
		return uint64(f.Flags()), nil
	case unix.F_SETFL:
		return 0, f.SetFlags(int(int32(arg)))
	case unix.F_ADD_SEALS:
		// The write access comes first, even on a file that is no
		// memfd (Linux: memfd_add_seals()).
		if !writable(f) {
			return 0, unix.EPERM
		}
		if uint32(arg)&^memfdAllSeals != 0 {
			return 0, unix.EINVAL
		}
		mf, ok := f.(*memFD)
		if !ok {
			return 0, unix.EINVAL
		}
		return 0, mf.inode.addSeals(uint32(arg))
	case unix.F_GET_SEALS:
		mf, ok := f.(*memFD)
		if !ok {
			return 0, unix.EINVAL
		}
		mf.inode.mu.Lock()
		defer mf.inode.mu.Unlock()
		return uint64(mf.inode.seals), nil
	case unix.F_GETPIPE_SZ, unix.F_SETPIPE_SZ:
		if hf, ok := f.(*hostFile); ok {
			// A host pipe behind stdio: the host answers (EBADF
			// for anything else).
			n, err := unix.FcntlInt(uintptr(hf.fd), cmd, int(uint32(arg)))
			return uint64(n), err
		}
		pf, ok := f.(*pipeFile)
		if !ok {
			return 0, unix.EBADF
		}
		if cmd == unix.F_GETPIPE_SZ {
			return uint64(pf.p.size()), nil
		}
		n, err := pf.p.setSize(uint32(arg))
		return uint64(n), err
	}
	return 0, unix.EINVAL
}

// sysCloseRange implements close_range(2).
func sysCloseRange(t *Task, a *syscallArgs) (uint64, error) {
	first, last, flags := uint32(a.u(0)), uint32(a.u(1)), uint32(a.u(2))
	if flags&^(unix.CLOSE_RANGE_UNSHARE|unix.CLOSE_RANGE_CLOEXEC) != 0 || first > last {
		return 0, unix.EINVAL
	}
	if flags&unix.CLOSE_RANGE_UNSHARE != 0 {
		nfdt := t.fdt.Unshare()
		t.fdtMu.Lock()
		t.fdt = nfdt
		t.fdtMu.Unlock()
	}
	t.fdt.removeRange(uint(first), uint(last), flags&unix.CLOSE_RANGE_CLOEXEC != 0)
	return 0, nil
}

// sysClose implements close(2).
func sysClose(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.fdt.remove(a.int(0))
}

// sysPipe implements pipe(2).
func sysPipe(t *Task, a *syscallArgs) (uint64, error) {
	return 0, doPipe(t, a.u(0), 0)
}

// sysPipe2 implements pipe2(2).
//
// TODO(ringbox): O_NOTIFICATION_PIPE (watch queues) is EINVAL, as on a
// Linux built without CONFIG_WATCH_QUEUE.
func sysPipe2(t *Task, a *syscallArgs) (uint64, error) {
	flags := a.int(1)
	if flags&^(unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_DIRECT) != 0 {
		return 0, unix.EINVAL
	}
	return 0, doPipe(t, a.u(0), flags)
}

// doPipe creates a pipe and stores its descriptors, read end first, at
// addr (Linux: fs/pipe.c:do_pipe2(), which allocates the descriptors
// before copying them out and undoes both on EFAULT).
func doPipe(t *Task, addr uint64, flags int) error {
	r, w := newPipeFiles(t, flags)
	fds, err := t.fdt.newFDs([]File{r, w}, flags&unix.O_CLOEXEC != 0, t.fileLimit())
	if err != nil {
		r.DecRef()
		w.DecRef()
		return err
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(fds[0]))
	binary.LittleEndian.PutUint32(b[4:], uint32(fds[1]))
	if err := t.CopyOut(addr, b[:]); err != nil {
		t.fdt.clear(fds[0])
		t.fdt.clear(fds[1])
		r.DecRef()
		w.DecRef()
		return err
	}
	return nil
}

// sysOpen implements open(2).
func sysOpen(t *Task, a *syscallArgs) (uint64, error) {
	return doOpen(t, unix.AT_FDCWD, a.u(0), a.int(1))
}

// sysOpenat implements openat(2).
func sysOpenat(t *Task, a *syscallArgs) (uint64, error) {
	return doOpen(t, a.int(0), a.u(1), a.int(2))
}

// sysCreat implements creat(2): open with O_CREAT|O_WRONLY|O_TRUNC.
func sysCreat(t *Task, a *syscallArgs) (uint64, error) {
	return doOpen(t, unix.AT_FDCWD, a.u(0), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC)
}

// doOpen opens the path at pathAddr and installs it at the lowest free
// descriptor (Linux: fs/open.c:do_sys_openat2(): the path is read before
// a descriptor is reserved).
//
// TODO(ringbox): the mode argument matters once files can be created.
func doOpen(t *Task, dirfd int, pathAddr uint64, flags int) (uint64, error) {
	path, err := t.CopyInString(pathAddr, unix.PathMax-1)
	if err != nil {
		return 0, err
	}
	f, err := openFile(t, dirfd, path, flags)
	if err != nil {
		return 0, err
	}
	fd, err := t.fdt.newFD(f, 0, flags&unix.O_CLOEXEC != 0, t.fileLimit())
	if err != nil {
		f.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

// sysLseek implements lseek(2): a whence beyond SEEK_HOLE is EINVAL even
// on a pipe, which is ESPIPE otherwise (Linux: ksys_lseek()).
func sysLseek(t *Task, a *syscallArgs) (uint64, error) {
	f := t.getFile(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	whence := uint32(a.u(2))
	if whence > unix.SEEK_HOLE {
		return 0, unix.EINVAL
	}
	off, err := f.Seek(t, a.i64(1), int(whence))
	return uint64(off), err
}

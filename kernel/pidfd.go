package kernel

import (
	"encoding/binary"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// Process file descriptors (Linux: kernel/pid.c:pidfd_open(),
// fs/pidfs.c, kernel/signal.c:pidfd_send_signal()): a descriptor that
// names a thread group for good, so that a program can signal it, poll
// for its exit and wait for it without the races of a reused PID.
//
//	pidfd_open(2)          sysPidfdOpen
//	clone(CLONE_PIDFD)     Task.installClonePidfd (task_clone.go calls it)
//	waitid(P_PIDFD)        pidfdTarget (wait.go calls it)
//	pidfd_send_signal(2)   sysPidfdSendSignal
//	poll, epoll            pidFD.Readiness: POLLIN once the group is dead
//	pidfd_getfd(2)         sysPidfdGetfd

func init() {
	register(unix.SYS_PIDFD_OPEN, "pidfd_open", sysPidfdOpen, argInt, argHex)
	register(unix.SYS_PIDFD_SEND_SIGNAL, "pidfd_send_signal", sysPidfdSendSignal, argFD, argInt, argHex, argHex)
	register(unix.SYS_PIDFD_GETFD, "pidfd_getfd", sysPidfdGetfd, argFD, argInt, argHex)
}

// pidfdNonblock is PIDFD_NONBLOCK (Linux: include/uapi/linux/pidfd.h),
// which is O_NONBLOCK; x/sys/unix names it only for some GOARCHes.
const pidfdNonblock = unix.O_NONBLOCK

// pidfsDev is st_dev of pidfds (Linux: the pidfs mount; not ABI).
const pidfsDev = 0x5

// pidFD is a pidfd: an open file description that refers to a thread
// group (Linux: a pidfs file whose private data is the struct pid).
type pidFD struct {
	fileRefs
	fileFlags
	tg *ThreadGroup
	// ino is the inode number fstat reports; Linux numbers pidfs inodes
	// per struct pid, ringbox per thread group.
	ino uint64
	// q wakes the pollers when the group dies.
	q WaitQueue
}

// pidfdRegistry finds the pidfds of a thread group when it dies. It is
// package state, not a ThreadGroup field, because pidfds are rare: most
// groups never have one and pay nothing.
var pidfdRegistry struct {
	mu sync.Mutex
	// files are the open pidfds of each group. Protected by mu.
	files map[*ThreadGroup]map[*pidFD]struct{}
	// inos numbers the groups for st_ino, one per group as long as a
	// pidfd of it is open. Protected by mu.
	inos map[*ThreadGroup]uint64
	// nextIno is the next inode number. Protected by mu.
	nextIno uint64
}

// newPidFD returns a pidfd of tg with the given status flags (O_RDWR,
// maybe O_NONBLOCK), registered for tg's exit.
func newPidFD(tg *ThreadGroup, flags int) *pidFD {
	f := &pidFD{tg: tg}
	f.initRefs()
	f.flags.Store(int32(unix.O_RDWR | flags&pidfdNonblock))
	r := &pidfdRegistry
	r.mu.Lock()
	if r.files == nil {
		r.files = make(map[*ThreadGroup]map[*pidFD]struct{})
		r.inos = make(map[*ThreadGroup]uint64)
	}
	set := r.files[tg]
	if set == nil {
		set = make(map[*pidFD]struct{})
		r.files[tg] = set
		r.nextIno++
		r.inos[tg] = r.nextIno
	}
	set[f] = struct{}{}
	f.ino = r.inos[tg]
	r.mu.Unlock()
	return f
}

// notifyPidfds wakes the pollers of tg's pidfds: the group is dead (Linux:
// kernel/signal.c:do_notify_pidfd(), called from exit_notify()).
// task_exit.go calls it once the group is a zombie, reaped, or waiting
// for its tracer.
func (tg *ThreadGroup) notifyPidfds() {
	r := &pidfdRegistry
	r.mu.Lock()
	files := make([]*pidFD, 0, len(r.files[tg]))
	for f := range r.files[tg] {
		files = append(files, f)
	}
	r.mu.Unlock()
	for _, f := range files {
		f.q.Notify()
	}
}

// DecRef implements File.DecRef.
func (f *pidFD) DecRef() {
	if !f.decRef() {
		return
	}
	r := &pidfdRegistry
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.files[f.tg]
	delete(set, f)
	if len(set) == 0 {
		delete(r.files, f.tg)
		delete(r.inos, f.tg)
	}
}

// state reports whether the group is dead (all its threads gone, its exit
// reported or waiting for a tracer) and whether it is reaped.
func (f *pidFD) state() (dead, reaped bool) {
	k := f.tg.k
	k.mu.Lock()
	defer k.mu.Unlock()
	return f.tg.zombie || f.tg.reaped || f.tg.exitDeferred, f.tg.reaped
}

// Read implements File.Read: pidfds have no read (Linux: vfs_read()
// without FMODE_CAN_READ).
func (f *pidFD) Read(t *Task, dst []byte) (int, error) { return 0, unix.EINVAL }

// Write implements File.Write.
func (f *pidFD) Write(t *Task, src []byte) (int, error) { return 0, unix.EINVAL }

// PRead implements File.PRead.
func (f *pidFD) PRead(t *Task, dst []byte, off int64) (int, error) { return 0, unix.EINVAL }

// PWrite implements File.PWrite.
func (f *pidFD) PWrite(t *Task, src []byte, off int64) (int, error) { return 0, unix.EINVAL }

// Seek implements File.Seek.
func (f *pidFD) Seek(t *Task, off int64, whence int) (int64, error) { return 0, unix.ESPIPE }

// Seekable implements File.Seekable: pread64 reaches Read's EINVAL, as
// Linux's pidfs files have FMODE_PREAD but no read method.
func (f *pidFD) Seekable() bool { return true }

// Ioctl implements File.Ioctl.
//
// TODO(ringbox): PIDFD_GET_INFO and the namespace ioctls of Linux 6.11+.
func (f *pidFD) Ioctl(t *Task, req, arg uint64) (uint64, error) { return 0, unix.ENOTTY }

// Stat implements File.Stat: a pidfs inode, mode 0700 without a file
// type, owned by the group's real user as Linux 6.9+ shows it.
func (f *pidFD) Stat(t *Task) (unix.Stat_t, error) {
	st := unix.Stat_t{Dev: pidfsDev, Ino: f.ino, Nlink: 1, Mode: 0o700, Blksize: pageSize}
	f.tg.mu.Lock()
	for _, o := range f.tg.tasks {
		st.Uid, st.Gid = o.creds.RealUID, o.creds.RealGID
		break
	}
	f.tg.mu.Unlock()
	return st, nil
}

// Readiness implements File.Readiness (Linux: fs/pidfs.c:pidfd_poll()):
// readable once the group is dead, hung up once it is reaped too.
func (f *pidFD) Readiness(mask uint32) uint32 {
	dead, reaped := f.state()
	var ev uint32
	if dead {
		ev = unix.POLLIN | pollRdNorm
	}
	if reaped {
		ev |= unix.POLLHUP
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements File.EventRegister.
func (f *pidFD) EventRegister(w *Waiter, mask uint32) { f.q.Add(w) }

// EventUnregister implements File.EventUnregister.
func (f *pidFD) EventUnregister(w *Waiter) { f.q.Remove(w) }

// linkName implements linkNamer (Linux: fs/pidfs.c:pidfs_dname()).
func (f *pidFD) linkName() (string, error) { return "anon_inode:[pidfd]", nil }

// fdInfo returns the pidfd's lines of /proc/PID/fdinfo/N after pos,
// flags and mnt_id (Linux: fs/pidfs.c:pidfd_show_fdinfo()): Pid is -1
// once the group is reaped. procfs has no fdinfo yet; this is its part.
func (f *pidFD) fdInfo() string {
	pid := f.tg.tgid
	if _, reaped := f.state(); reaped {
		pid = -1
	}
	n := strconv.Itoa(int(pid))
	return "Pid:\t" + n + "\nNSpid:\t" + n + "\n"
}

// sysPidfdOpen implements pidfd_open(2): pid must name a thread-group
// leader (Linux: kernel/pid.c:pidfd_open() and pidfd_prepare()).
//
// TODO(ringbox): PIDFD_THREAD (Linux 6.9+: a pidfd of one thread) is
// EINVAL.
func sysPidfdOpen(t *Task, a *syscallArgs) (uint64, error) {
	pid, flags := int32(a.int(0)), a.u(1)
	if flags&^pidfdNonblock != 0 || pid <= 0 {
		return 0, unix.EINVAL
	}
	k := t.k
	k.mu.Lock()
	tg := k.groups[pid]
	_, isTask := k.tasks[pid]
	k.mu.Unlock()
	if tg == nil {
		if isTask {
			// A thread other than a leader.
			return 0, unix.EINVAL
		}
		return 0, unix.ESRCH
	}
	f := newPidFD(tg, int(flags))
	// pidfds are close-on-exec (Linux: pidfd_create() asks O_CLOEXEC).
	fd, err := t.fdt.newFD(f, 0, true, t.fileLimit())
	if err != nil {
		f.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

// installClonePidfd gives the caller of clone(CLONE_PIDFD) a pidfd of the
// new group tg, close-on-exec, and stores its number at addr (Linux:
// kernel/fork.c:copy_process(), which puts the number before the child
// runs). It returns the descriptor for undoClonePidfd.
func (t *Task) installClonePidfd(tg *ThreadGroup, addr uint64) (int, error) {
	f := newPidFD(tg, 0)
	fd, err := t.fdt.newFD(f, 0, true, t.fileLimit())
	if err != nil {
		f.DecRef()
		return -1, err
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(fd))
	if err := t.CopyOut(addr, b[:]); err != nil {
		t.undoClonePidfd(fd)
		return -1, err
	}
	return fd, nil
}

// undoClonePidfd closes the pidfd of a clone that failed after
// installClonePidfd.
func (t *Task) undoClonePidfd(fd int) {
	if fd >= 0 {
		t.fdt.remove(fd)
	}
}

// pidfdTarget returns the group pidfd fd names, and whether the pidfd is
// nonblocking: EBADF for no descriptor, notPidfd for another file
// (Linux: kernel/pid.c:pidfd_get_pid(), whose callers differ there:
// waitid says EINVAL, pidfd_send_signal EBADF).
func (t *Task) pidfdTarget(fd int, notPidfd error) (*ThreadGroup, bool, error) {
	f := t.fdt.get(fd)
	if f == nil {
		return nil, false, unix.EBADF
	}
	defer f.DecRef()
	p, ok := f.(*pidFD)
	if !ok {
		return nil, false, notPidfd
	}
	return p.tg, p.nonblocking(), nil
}

// sysPidfdSendSignal implements pidfd_send_signal(2) (Linux:
// kernel/signal.c).
//
// TODO(ringbox): the flags of Linux 6.9+ (PIDFD_SIGNAL_THREAD,
// PIDFD_SIGNAL_THREAD_GROUP, PIDFD_SIGNAL_PROCESS_GROUP) are EINVAL.
func sysPidfdSendSignal(t *Task, a *syscallArgs) (uint64, error) {
	fd, sig, infoAddr, flags := a.int(0), a.int(1), a.u(2), a.u(3)
	if !validSignal(sig) || flags != 0 {
		return 0, unix.EINVAL
	}
	tg, _, err := t.pidfdTarget(fd, unix.EBADF)
	if err != nil {
		return 0, err
	}
	info := t.userSignalInfo(unix.Signal(sig), arch.SI_USER)
	if infoAddr != 0 {
		b := make([]byte, arch.SignalInfoSize)
		if err := t.CopyIn(infoAddr, b); err != nil {
			return 0, err
		}
		info = &arch.SignalInfo{}
		info.Decode(b)
		if info.Signo != int32(sig) {
			return 0, unix.EINVAL
		}
		// A process may not pose as the kernel or kill(2) when
		// signalling another one.
		if tg != t.tg && (info.Code >= 0 || info.Code == arch.SI_TKILL) {
			return 0, unix.EPERM
		}
	}
	k := t.k
	k.mu.Lock()
	reaped := tg.reaped
	k.mu.Unlock()
	if reaped {
		return 0, unix.ESRCH
	}
	if !t.mayKill(tg, unix.Signal(sig)) {
		return 0, unix.EPERM
	}
	if sig == 0 {
		return 0, nil
	}
	return 0, tg.SendSignal(info)
}

// sysPidfdGetfd implements pidfd_getfd(2): a close-on-exec duplicate of
// descriptor fd of the pidfd's process, for a caller that may attach to
// it with ptrace (Linux: kernel/pid.c:pidfd_getfd() and __pidfd_fget()).
func sysPidfdGetfd(t *Task, a *syscallArgs) (uint64, error) {
	pidfd, fd := a.int(0), a.int(1)
	if uint32(a.u(2)) != 0 {
		return 0, unix.EINVAL
	}
	tg, _, err := t.pidfdTarget(pidfd, unix.EBADF)
	if err != nil {
		return 0, err
	}
	// The pidfd names the group's leader, whose TID is the TGID.
	target := t.k.taskByTID(tg.tgid)
	if target == nil || target.tg != tg {
		return 0, unix.ESRCH
	}
	if t.ptraceMayAccess(target, ptraceModeAttach|ptraceModeRealCreds) != nil {
		return 0, unix.EPERM
	}
	ft := target.fdTableRef()
	if ft == nil {
		// The leader has exited and dropped its descriptors.
		return 0, unix.ESRCH
	}
	f := ft.get(fd)
	ft.decRef()
	if f == nil {
		return 0, unix.EBADF
	}
	nfd, err := t.fdt.newFD(f, 0, true, t.fileLimit())
	if err != nil {
		f.DecRef()
		return 0, err
	}
	return uint64(nfd), nil
}

// fdTableRef returns the task's descriptor table with a reference the
// caller drops (decRef), or nil once the task has exited.
func (t *Task) fdTableRef() *FDTable {
	t.fdtMu.Lock()
	defer t.fdtMu.Unlock()
	if t.fdt != nil {
		t.fdt.IncRef()
	}
	return t.fdt
}

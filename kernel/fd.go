package kernel

// The file layer: open file descriptions (File) and the descriptor table
// (FDTable) that numbers them for a process.
//
//	fd.go        File, its optional behaviours, FDTable
//	sys_fd.go    dup, dup2, dup3, fcntl, close, close_range, pipe, open, lseek
//	sys_fs.go    read, write, readv, writev, pread64, pwrite64, ioctl, stat,
//	             ftruncate, fsync
//	sys_rw.go    preadv, pwritev and their flagged variants
//	pipe.go      pipes (a ring of page-sized slots, as Linux's)
//	hostfile.go  host descriptors (the sandbox's stdio)
//	devnull.go   /dev/null, zero, full, random, urandom; openFile's path walk
//	fdpath.go    /dev/fd/N, /dev/std*, /proc/self/fd/N opened afresh
//	memfd.go     memfd_create: regular files in the memory file
//	eventfd.go   eventfd
//	poll.go, select.go, epoll.go   waiting for readiness
//
// Blocking file operations wait with Task.Block on a Waiter registered
// with the file's WaitQueue and return ERESTARTSYS when a signal
// interrupts them (Linux's pipe_read and pipe_write do).
//
// Lock order:
//
//	FDTable.mu (File methods other than IncRef are never called under it)
//	epollFile.mu
//	  nested epollFile.mu (an epoll the outer one watches)
//	  pipe.mu, eventFile.mu, memInode.mu, hostFile.mu
//	    WaitQueue.mu
//	memInode.mu
//	  memfile.MemoryFile's lock, Limits.mu

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// File is an open file description (Linux: struct file): what a
// descriptor refers to, shared by dup(2) and fork(2). Every method may be
// called concurrently from several tasks. The buffers given to Read,
// Write, PRead and PWrite are the kernel's, reused after the call: a file
// copies what it keeps.
type File interface {
	// Read reads into dst from the current position (Linux:
	// file_operations.read_iter). A blocking read that a signal
	// interrupts returns ERESTARTSYS.
	Read(t *Task, dst []byte) (int, error)
	// Write writes src at the current position (or the end, with
	// O_APPEND). It may write less than len(src) only when it returns
	// an error too or the file is nonblocking.
	Write(t *Task, src []byte) (int, error)
	// PRead reads at offset off without moving the position (pread64).
	// Callers check Seekable first and pass off >= 0.
	PRead(t *Task, dst []byte, off int64) (int, error)
	// PWrite writes at offset off without moving the position.
	PWrite(t *Task, src []byte, off int64) (int, error)
	// Seek moves the position (lseek(2)); whence is already known to be
	// at most SEEK_HOLE. Files without a position return ESPIPE.
	Seek(t *Task, off int64, whence int) (int64, error)
	// Seekable reports whether the file has a position, so that
	// pread64/pwrite64 are allowed (Linux: FMODE_PREAD/FMODE_PWRITE).
	Seekable() bool
	// Ioctl performs a device control request; unknown requests are
	// ENOTTY.
	Ioctl(t *Task, req uint64, arg uint64) (uint64, error)
	// Stat describes the file.
	Stat(t *Task) (unix.Stat_t, error)
	// Flags returns the file status flags as F_GETFL reports them: the
	// access mode, O_APPEND, O_NONBLOCK, O_DIRECT... (Linux: f_flags).
	Flags() int
	// SetFlags replaces the flags that F_SETFL may change (setflMask)
	// with those of flags; it fails with EINVAL for a flag the file
	// cannot honour (O_DIRECT).
	SetFlags(flags int) error
	// Readiness returns the poll events (POLLIN, POLLOUT, POLLHUP,
	// POLLERR, POLLRDNORM, ...) that hold now, among mask and those that
	// are always reported (Linux: file_operations.poll, without the
	// wait-queue registration).
	Readiness(mask uint32) uint32
	// EventRegister makes a change of the events in mask notify w (the
	// registration half of Linux's ->poll). Wake-ups may be spurious:
	// waiters re-check Readiness. A registration lasts until
	// EventUnregister, which every EventRegister must be paired with;
	// a file may deliver at most one notification per registration
	// (hostFile does), so waiters that loop register again.
	EventRegister(w *Waiter, mask uint32)
	// EventUnregister cancels EventRegister.
	EventUnregister(w *Waiter)
	// IncRef adds a reference (dup, fork, a syscall using the file).
	IncRef()
	// DecRef drops a reference; the last one closes the file.
	DecRef()
}

// Optional behaviours of a File, found by type assertion, as Linux finds
// them in the file_operations a file type fills in.
type (
	// truncater files take ftruncate(2) (regular files).
	truncater interface {
		Truncate(t *Task, size int64) error
	}
	// syncer files take fsync(2).
	syncer interface{ Sync() error }
	// pollabler files say whether epoll may watch them; files without
	// the method can be watched.
	pollabler interface{ pollable() bool }
	// filler files return short reads only at their end (fillsReads).
	filler interface{ fillsReads() bool }
	// releaser files say whether their last reference is gone (the
	// fileRefs they embed).
	releaser interface{ released() bool }
)

// Poll events beyond x/sys/unix's POLL* set. Linux's EPOLL* values equal
// the POLL* ones on x86-64 (include/uapi/asm-generic/poll.h).
const (
	pollRdNorm = unix.EPOLLRDNORM
	pollWrNorm = unix.EPOLLWRNORM
	pollRdBand = unix.EPOLLRDBAND
	pollWrBand = unix.EPOLLWRBAND
)

// defaultPollMask is what a file without a poll method reports: always
// ready (Linux: include/linux/poll.h:DEFAULT_POLLMASK).
const defaultPollMask = unix.POLLIN | unix.POLLOUT | pollRdNorm | pollWrNorm

// oLargefile is O_LARGEFILE as the x86-64 kernel ABI defines it (Linux:
// include/uapi/asm-generic/fcntl.h); x/sys/unix has 0, the value glibc
// gives 64-bit programs. open(2) adds it on 64-bit kernels
// (force_o_largefile()), so F_GETFL shows it.
const oLargefile = 0x8000

// setflMask are the status flags F_SETFL changes; others in its argument
// are ignored (Linux: fs/fcntl.c:SETFL_MASK, O_NDELAY being O_NONBLOCK).
const setflMask = unix.O_APPEND | unix.O_NONBLOCK | unix.O_DIRECT | unix.O_NOATIME | unix.O_ASYNC

// fileFlags holds an open file description's status flags; files embed
// it to implement File.Flags and File.SetFlags.
type fileFlags struct {
	flags atomic.Int32
}

// Flags implements File.Flags.
func (f *fileFlags) Flags() int { return int(f.flags.Load()) }

// SetFlags implements File.SetFlags for files that cannot do direct I/O.
//
// TODO(ringbox): O_ASYNC is kept and reported, but no SIGIO is ever sent
// (Linux arms fasync).
func (f *fileFlags) SetFlags(flags int) error {
	if flags&unix.O_DIRECT != 0 {
		return unix.EINVAL
	}
	f.setFlags(flags)
	return nil
}

// setFlags replaces the F_SETFL-changeable flags.
func (f *fileFlags) setFlags(flags int) {
	for {
		old := f.flags.Load()
		n := old&^setflMask | int32(flags&setflMask)
		if f.flags.CompareAndSwap(old, n) {
			return
		}
	}
}

// nonblocking reports whether O_NONBLOCK is set.
func (f *fileFlags) nonblocking() bool { return f.flags.Load()&unix.O_NONBLOCK != 0 }

// fileRefs counts the references of an open file description; the file
// that embeds it acts when decRef reports the last one gone.
type fileRefs struct {
	refs atomic.Int64
}

func (r *fileRefs) initRefs() { r.refs.Store(1) }

// IncRef implements File.IncRef.
func (r *fileRefs) IncRef() { r.refs.Add(1) }

// released reports whether the last reference is gone: the file is
// closed, and an epoll interest in it must go.
func (r *fileRefs) released() bool { return r.refs.Load() <= 0 }

// decRef drops a reference and reports whether it was the last.
func (r *fileRefs) decRef() bool {
	n := r.refs.Add(-1)
	if n < 0 {
		panic("file reference count below zero")
	}
	return n == 0
}

// nfsMax bounds descriptor numbers whatever RLIMIT_NOFILE says (Linux:
// fs/file.c:sysctl_nr_open's default, which setrlimit cannot exceed).
const nfsMax = 1 << 20

// fdEntry is one slot of a descriptor table; a nil file is a free slot.
type fdEntry struct {
	file    File
	cloexec bool
}

// FDTable is a process's file descriptor table (Linux: struct
// files_struct), shared between tasks created with CLONE_FILES.
type FDTable struct {
	refs atomic.Int32

	mu sync.Mutex
	// fds is indexed by descriptor; it grows to the highest descriptor in
	// use. Protected by mu.
	fds []fdEntry
	// free is a lower bound of the lowest free descriptor (Linux:
	// files_struct.next_fd). Protected by mu.
	free int
}

func newFDTable() *FDTable {
	t := &FDTable{}
	t.refs.Store(1)
	return t
}

// IncRef adds a user of the table (clone with CLONE_FILES).
func (f *FDTable) IncRef() { f.refs.Add(1) }

// decRef drops a user of the table; the last closes every file.
func (f *FDTable) decRef() {
	if f.refs.Add(-1) != 0 {
		return
	}
	f.mu.Lock()
	fds := f.fds
	f.fds = nil
	f.mu.Unlock()
	for _, e := range fds {
		if e.file != nil {
			e.file.DecRef()
		}
	}
}

// Fork returns a copy of the table for a child created without
// CLONE_FILES: same open files (each gains a reference), same
// close-on-exec flags (Linux: fs/file.c:dup_fd()).
func (f *FDTable) Fork() *FDTable {
	n := newFDTable()
	f.mu.Lock()
	defer f.mu.Unlock()
	n.fds = make([]fdEntry, len(f.fds))
	copy(n.fds, f.fds)
	n.free = f.free
	for _, e := range n.fds {
		if e.file != nil {
			e.file.IncRef()
		}
	}
	return n
}

// Unshare returns a table the caller alone uses: f itself when it has no
// other user, else a Fork of it, dropping the caller's use of f (Linux:
// unshare_fd(), as execve(2) and close_range(CLOSE_RANGE_UNSHARE) do).
// The caller replaces its table with the result.
func (f *FDTable) Unshare() *FDTable {
	if f.refs.Load() == 1 {
		return f
	}
	n := f.Fork()
	f.decRef()
	return n
}

// CloseOnExec closes the descriptors marked close-on-exec (Linux:
// fs/file.c:do_close_on_exec()). execve calls it after Unshare.
func (f *FDTable) CloseOnExec() {
	var closing []File
	f.mu.Lock()
	for fd := range f.fds {
		if e := f.fds[fd]; e.file != nil && e.cloexec {
			closing = append(closing, e.file)
			f.fds[fd] = fdEntry{}
			f.free = min(f.free, fd)
		}
	}
	f.mu.Unlock()
	for _, file := range closing {
		file.DecRef()
	}
}

// installStdio places host descriptors at 0, 1 and 2.
func (f *FDTable) installStdio(host [3]int) error {
	for i, h := range host {
		if h < 0 {
			continue
		}
		hf, err := newHostFile(h)
		if err != nil {
			return err
		}
		if old, err := f.set(i, hf, false, nfsMax); err != nil {
			hf.DecRef()
			return err
		} else if old != nil {
			old.DecRef()
		}
	}
	return nil
}

// get returns the file at fd with a reference held by the caller, or nil.
func (f *FDTable) get(fd int) File {
	file, _ := f.getWithFlags(fd)
	return file
}

// capacity returns how many descriptors the table has room for without
// growing.
func (f *FDTable) capacity() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fds)
}

// getWithFlags is get that also returns the close-on-exec flag.
func (f *FDTable) getWithFlags(fd int) (File, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd < 0 || fd >= len(f.fds) || f.fds[fd].file == nil {
		return nil, false
	}
	e := f.fds[fd]
	e.file.IncRef()
	return e.file, e.cloexec
}

// newFD installs file at the lowest free descriptor >= minFD and below
// limit, taking over the caller's reference on success (Linux:
// fs/file.c:alloc_fd()). EMFILE when none is free.
func (f *FDTable) newFD(file File, minFD int, cloexec bool, limit int) (int, error) {
	limit = min(limit, nfsMax)
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := max(minFD, f.free)
	for fd < len(f.fds) && f.fds[fd].file != nil {
		fd++
	}
	if fd >= limit {
		return -1, unix.EMFILE
	}
	f.growLocked(fd)
	f.fds[fd] = fdEntry{file: file, cloexec: cloexec}
	if minFD <= f.free {
		f.free = fd + 1
	}
	return fd, nil
}

// newFDs installs several files at the lowest free descriptors, all or
// none (pipe(2)).
func (f *FDTable) newFDs(files []File, cloexec bool, limit int) ([]int, error) {
	fds := make([]int, 0, len(files))
	for _, file := range files {
		fd, err := f.newFD(file, 0, cloexec, limit)
		if err != nil {
			for _, fd := range fds {
				f.clear(fd)
			}
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// set installs file at fd (dup2, dup3), taking over the caller's
// reference, and returns the file that was there for the caller to
// DecRef. fd at or above limit is EBADF (Linux: ksys_dup3()).
func (f *FDTable) set(fd int, file File, cloexec bool, limit int) (File, error) {
	if fd < 0 || fd >= min(limit, nfsMax) {
		return nil, unix.EBADF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.growLocked(fd)
	old := f.fds[fd].file
	f.fds[fd] = fdEntry{file: file, cloexec: cloexec}
	return old, nil
}

// growLocked makes fd a valid index of f.fds.
//
// Preconditions: f.mu is held.
func (f *FDTable) growLocked(fd int) {
	if fd < len(f.fds) {
		return
	}
	n := max(2*len(f.fds), fd+1, 64)
	fds := make([]fdEntry, n)
	copy(fds, f.fds)
	f.fds = fds
}

// clear empties fd without dropping its file's reference (undoing a
// newFD whose caller keeps the reference).
func (f *FDTable) clear(fd int) {
	f.mu.Lock()
	f.fds[fd] = fdEntry{}
	f.free = min(f.free, fd)
	f.mu.Unlock()
}

// setCloexec changes the close-on-exec flag of fd.
func (f *FDTable) setCloexec(fd int, cloexec bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd < 0 || fd >= len(f.fds) || f.fds[fd].file == nil {
		return unix.EBADF
	}
	f.fds[fd].cloexec = cloexec
	return nil
}

// remove closes fd.
func (f *FDTable) remove(fd int) error {
	f.mu.Lock()
	if fd < 0 || fd >= len(f.fds) || f.fds[fd].file == nil {
		f.mu.Unlock()
		return unix.EBADF
	}
	file := f.fds[fd].file
	f.fds[fd] = fdEntry{}
	f.free = min(f.free, fd)
	f.mu.Unlock()
	file.DecRef()
	return nil
}

// removeRange closes (or, with cloexecOnly, marks close-on-exec) every
// open descriptor in [first, last] (Linux: fs/file.c:__close_range()).
func (f *FDTable) removeRange(first, last uint, cloexecOnly bool) {
	var closing []File
	f.mu.Lock()
	for fd := first; fd < uint(len(f.fds)) && fd <= last; fd++ {
		e := &f.fds[fd]
		if e.file == nil {
			continue
		}
		if cloexecOnly {
			e.cloexec = true
			continue
		}
		closing = append(closing, e.file)
		*e = fdEntry{}
		f.free = min(f.free, int(fd))
	}
	f.mu.Unlock()
	for _, file := range closing {
		file.DecRef()
	}
}

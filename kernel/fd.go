package kernel

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// File is an open file description (Linux: struct file).
type File interface {
	// Read reads into dst.
	Read(t *Task, dst []byte) (int, error)
	// Write writes src.
	Write(t *Task, src []byte) (int, error)
	// Ioctl performs a device control request; unknown requests are
	// ENOTTY.
	Ioctl(t *Task, req uint64, arg uint64) (uint64, error)
	// Stat describes the file.
	Stat(t *Task) (unix.Stat_t, error)
	// Flags returns the file status flags (O_APPEND, O_NONBLOCK, access
	// mode), as F_GETFL reports them.
	Flags() int
	// IncRef adds a reference (dup, fork).
	IncRef()
	// DecRef drops a reference; the last one closes the file.
	DecRef()
}

// fdEntry is one slot of a descriptor table.
type fdEntry struct {
	file    File
	cloexec bool
}

// FDTable is a process's file descriptor table (shared by CLONE_FILES).
type FDTable struct {
	refs atomic.Int32

	mu sync.Mutex
	// fds maps descriptor numbers to entries. Protected by mu.
	fds map[int32]fdEntry
}

func newFDTable() *FDTable {
	t := &FDTable{fds: make(map[int32]fdEntry)}
	t.refs.Store(1)
	return t
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
		f.mu.Lock()
		f.fds[int32(i)] = fdEntry{file: hf}
		f.mu.Unlock()
	}
	return nil
}

// get returns the file at fd with a reference held by the caller, or nil.
func (f *FDTable) get(fd int) File {
	if fd < 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.fds[int32(fd)]
	if !ok {
		return nil
	}
	e.file.IncRef()
	return e.file
}

// remove closes fd.
func (f *FDTable) remove(fd int) error {
	if fd < 0 {
		return unix.EBADF
	}
	f.mu.Lock()
	e, ok := f.fds[int32(fd)]
	if ok {
		delete(f.fds, int32(fd))
	}
	f.mu.Unlock()
	if !ok {
		return unix.EBADF
	}
	e.file.DecRef()
	return nil
}

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
		e.file.DecRef()
	}
}

// hostFile is a file backed by a host descriptor (the sandbox's stdio).
type hostFile struct {
	fd   int
	refs atomic.Int32
}

func newHostFile(h int) (*hostFile, error) {
	fd, err := unix.FcntlInt(uintptr(h), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	hf := &hostFile{fd: fd}
	hf.refs.Store(1)
	return hf, nil
}

func (h *hostFile) IncRef() { h.refs.Add(1) }

func (h *hostFile) DecRef() {
	if h.refs.Add(-1) == 0 {
		unix.Close(h.fd)
	}
}

// Read implements File.Read.
//
// TODO(ringbox): a read that blocks on the host cannot yet be interrupted
// by a signal; that comes with signal delivery.
func (h *hostFile) Read(t *Task, dst []byte) (int, error) {
	for {
		n, err := unix.Read(h.fd, dst)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

// Write implements File.Write. A broken pipe on the host is EPIPE for the
// program (the SIGPIPE that goes with it comes with signal delivery).
func (h *hostFile) Write(t *Task, src []byte) (int, error) {
	total := 0
	for total < len(src) {
		n, err := unix.Write(h.fd, src[total:])
		if err == unix.EINTR {
			continue
		}
		if n > 0 {
			total += n
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

// Ioctl implements File.Ioctl: the terminal queries a program makes on
// its stdio are answered from the host terminal.
func (h *hostFile) Ioctl(t *Task, req, arg uint64) (uint64, error) {
	switch req {
	case unix.TCGETS:
		tio, err := unix.IoctlGetTermios(h.fd, unix.TCGETS)
		if err != nil {
			return 0, err
		}
		return 0, t.CopyOut(arg, termiosBytes(tio))
	case unix.TIOCGWINSZ:
		ws, err := unix.IoctlGetWinsize(h.fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0, err
		}
		return 0, t.CopyOut(arg, winsizeBytes(ws))
	}
	return 0, unix.ENOTTY
}

// Stat implements File.Stat.
func (h *hostFile) Stat(t *Task) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(h.fd, &st)
	return st, err
}

// Flags implements File.Flags.
func (h *hostFile) Flags() int {
	fl, err := unix.FcntlInt(uintptr(h.fd), unix.F_GETFL, 0)
	if err != nil {
		return unix.O_RDWR
	}
	return fl &^ unix.O_CLOEXEC
}

package kernel

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Opening an open descriptor by name: /dev/fd/N, /dev/stdin, /dev/stdout,
// /dev/stderr and /proc/self/fd/N. Linux follows the /proc "magic link"
// to the file and opens it afresh: a new open file description with its
// own flags and position, of the same pipe, device or memfd (Linux:
// fs/proc/fd.c:proc_fd_link(), then do_dentry_open(); for a pipe
// fs/pipe.c:fifo_open()). Files with nothing to open again (epoll,
// eventfd: anonymous inodes) are ENXIO.
//
// TODO(ringbox): /dev/fd and /proc/self/fd as directories, and the fd/N
// of other processes, come with the VFS and procfs.

// reopener files can be opened again through /proc/self/fd.
type reopener interface {
	reopen(t *Task, flags int) (File, error)
}

// fdPathFD returns the descriptor a name denotes, if it is one of the
// caller's /dev/fd or /proc fd names.
func fdPathFD(t *Task, name string) (int, bool) {
	switch name {
	case "/dev/stdin":
		return 0, true
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	var num string
	if rest, ok := strings.CutPrefix(name, "/dev/fd/"); ok {
		num = rest
	} else if rest, ok := strings.CutPrefix(name, "/proc/"); ok {
		pid, fd, ok := strings.Cut(rest, "/fd/")
		if !ok || !t.isProcSelf(pid) {
			return 0, false
		}
		num = fd
	} else {
		return 0, false
	}
	return procNumber(num)
}

// isProcSelf reports whether a /proc directory name is the caller's own:
// self, thread-self, its process or one of its threads.
func (t *Task) isProcSelf(pid string) bool {
	if pid == "self" || pid == "thread-self" {
		return true
	}
	n, ok := procNumber(pid)
	if !ok {
		return false
	}
	o := t.k.taskByTID(int32(n))
	return o != nil && o.tg == t.tg
}

// procNumber parses a /proc name that is a number: decimal digits, no
// leading zero (Linux: fs/proc/util.c:name_to_int()).
func procNumber(s string) (int, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return int(n), err == nil
}

// openFDPath opens name if it denotes a descriptor of the caller; handled
// is false otherwise. A closed descriptor is ENOENT, as the missing /proc
// entry.
func openFDPath(t *Task, name string, trailingSlash bool, flags int) (f File, handled bool, err error) {
	fd, ok := fdPathFD(t, name)
	if !ok {
		return nil, false, nil
	}
	old := t.fdt.get(fd)
	if old == nil {
		return nil, true, unix.ENOENT
	}
	defer old.DecRef()
	if trailingSlash || flags&unix.O_DIRECTORY != 0 {
		return nil, true, unix.ENOTDIR
	}
	if flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
		return nil, true, unix.EEXIST
	}
	if flags&unix.O_PATH != 0 {
		return newPathFile(old, flags), true, nil
	}
	if pf, ok := old.(*pathFile); ok {
		// An O_PATH descriptor opens the file it names.
		old = pf.target
	}
	r, ok := old.(reopener)
	if !ok {
		return nil, true, unix.ENXIO
	}
	f, err = r.reopen(t, flags)
	return f, true, err
}

// openedFlags are the status flags of a file opened with flags (Linux:
// do_dentry_open() and force_o_largefile()).
func openedFlags(flags int) int32 {
	return int32(flags&^openFlagsDropped | oLargefile)
}

// reopen opens the pipe again: a reader, a writer or both, never waiting
// for the other side (Linux: fifo_open() on an anonymous pipe).
func (f *pipeFile) reopen(t *Task, flags int) (File, error) {
	acc := flags & unix.O_ACCMODE
	n := &pipeFile{p: f.p, rd: acc != unix.O_WRONLY, wr: acc != unix.O_RDONLY}
	n.initRefs()
	n.flags.Store(openedFlags(flags))
	p := f.p
	p.mu.Lock()
	if n.rd {
		p.readers++
	}
	if n.wr {
		p.writers++
	}
	p.mu.Unlock()
	return n, nil
}

// reopen opens the device again.
func (f *memDevFile) reopen(t *Task, flags int) (File, error) {
	if flags&unix.O_DIRECT != 0 {
		return nil, unix.EINVAL
	}
	n := &memDevFile{kind: f.kind, minor: f.minor}
	n.initRefs()
	n.flags.Store(openedFlags(flags))
	return n, nil
}

// reopen opens the memfd again, at position 0; O_TRUNC empties it
// (subject to seals).
func (f *memFD) reopen(t *Task, flags int) (File, error) {
	n := &memFD{inode: f.inode}
	n.initRefs()
	n.flags.Store(openedFlags(flags))
	f.inode.incRef()
	if flags&unix.O_TRUNC != 0 && writable(n) {
		if err := f.inode.truncate(t, 0); err != nil {
			n.DecRef()
			return nil, err
		}
	}
	return n, nil
}

// reopen asks the host to open its descriptor again through its own
// /proc, which gives Linux's semantics exactly (a regular file behind
// stdout is truncated by O_TRUNC, for one). O_NOCTTY keeps a terminal
// from becoming ringbox's controlling terminal.
func (h *hostFile) reopen(t *Task, flags int) (File, error) {
	hostFlags := flags&^(unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC) | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(h.fd), hostFlags, 0)
	if err != nil {
		return nil, err
	}
	n, err := wrapHostFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return n, nil
}

// pathFile is an O_PATH description of a file reached through
// /proc/self/fd: it can be stat'ed, duplicated and opened again, nothing
// else (the system calls refuse O_PATH descriptors before the file sees
// them).
type pathFile struct {
	fileRefs
	fileFlags
	target File
}

// newPathFile returns an O_PATH description of f, which it references.
func newPathFile(f File, flags int) *pathFile {
	f.IncRef()
	p := &pathFile{target: f}
	p.initRefs()
	p.flags.Store(int32(flags & (unix.O_PATH | unix.O_NOFOLLOW | unix.O_DIRECTORY)))
	return p
}

// DecRef implements File.DecRef.
func (p *pathFile) DecRef() {
	if p.decRef() {
		p.target.DecRef()
	}
}

// Stat implements File.Stat.
func (p *pathFile) Stat(t *Task) (unix.Stat_t, error) { return p.target.Stat(t) }

// Read implements File.Read.
func (p *pathFile) Read(t *Task, dst []byte) (int, error) { return 0, unix.EBADF }

// Write implements File.Write.
func (p *pathFile) Write(t *Task, src []byte) (int, error) { return 0, unix.EBADF }

// PRead implements File.PRead.
func (p *pathFile) PRead(t *Task, dst []byte, off int64) (int, error) { return 0, unix.EBADF }

// PWrite implements File.PWrite.
func (p *pathFile) PWrite(t *Task, src []byte, off int64) (int, error) { return 0, unix.EBADF }

// Seek implements File.Seek.
func (p *pathFile) Seek(t *Task, off int64, whence int) (int64, error) { return 0, unix.EBADF }

// Seekable implements File.Seekable.
func (p *pathFile) Seekable() bool { return false }

// Ioctl implements File.Ioctl.
func (p *pathFile) Ioctl(t *Task, req, arg uint64) (uint64, error) { return 0, unix.EBADF }

// SetFlags implements File.SetFlags.
func (p *pathFile) SetFlags(flags int) error { return unix.EBADF }

// Readiness implements File.Readiness: never polled (POLLNVAL first).
func (p *pathFile) Readiness(mask uint32) uint32 { return 0 }

// EventRegister implements File.EventRegister.
func (p *pathFile) EventRegister(w *Waiter, mask uint32) {}

// EventUnregister implements File.EventUnregister.
func (p *pathFile) EventUnregister(w *Waiter) {}

// linkNamer files say what their /proc/self/fd link reads (Linux: the
// d_path of the file, or the d_dname of a pseudo file).
type linkNamer interface {
	linkName() (string, error)
}

// fdLinkName returns what /proc/self/fd/N reads for f; a file that cannot
// say is "anon_inode:[unknown]", which a program cannot open.
func fdLinkName(f File) (string, error) {
	if n, ok := f.(linkNamer); ok {
		return n.linkName()
	}
	return "anon_inode:[unknown]", nil
}

// linkName implements linkNamer (Linux: pipefs_dname()).
func (f *pipeFile) linkName() (string, error) {
	return "pipe:[" + strconv.FormatUint(f.p.ino, 10) + "]", nil
}

// linkName implements linkNamer.
func (f *memDevFile) linkName() (string, error) {
	for _, d := range memDevs {
		if d.kind == f.kind {
			return d.path, nil
		}
	}
	return "", unix.ENOENT
}

// linkName implements linkNamer: an unlinked tmpfs file (Linux:
// mm/memfd.c names it "memfd:NAME").
func (f *memFD) linkName() (string, error) { return "/" + f.inode.name + " (deleted)", nil }

// linkName implements linkNamer.
func (e *eventFile) linkName() (string, error) { return "anon_inode:[eventfd]", nil }

// linkName implements linkNamer.
func (e *epollFile) linkName() (string, error) { return "anon_inode:[eventpoll]", nil }

// linkName implements linkNamer: the target's.
func (p *pathFile) linkName() (string, error) { return fdLinkName(p.target) }

// linkName implements linkNamer: what the host's /proc says of the host
// descriptor (a terminal's /dev/pts path, "pipe:[...]", a file's path).
func (h *hostFile) linkName() (string, error) {
	return hostReadlink("/proc/self/fd/" + strconv.Itoa(h.fd))
}

// hostReadlink reads a host symbolic link.
func hostReadlink(path string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(path, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

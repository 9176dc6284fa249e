package kernel

import (
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// execveat(fd, "", argv, envp, AT_EMPTY_PATH): running the program an
// open file holds (Linux: fs/exec.c:do_open_execat() with an empty name,
// the way fexecve(3) is built). The file is a host file (a program the
// sandbox was given, opened read-only through the host) or a memfd, the
// usual way to run a program that exists only in memory.

// loadExecutableFD checks and parses the program in descriptor fd. The
// access mode of fd does not matter (Linux opens the file afresh for
// execution); an O_PATH descriptor works too. EBADF for no descriptor;
// EACCES for the working directory, a file that is not regular or has
// no execute bit; ENOEXEC for a format the loader refuses.
func (t *Task) loadExecutableFD(fd int) (*executable, error) {
	if fd == unix.AT_FDCWD {
		// The working directory: a directory cannot be executed.
		return nil, unix.EACCES
	}
	f := t.fdt.get(fd)
	if f == nil {
		return nil, unix.EBADF
	}
	defer f.DecRef()
	if p, ok := f.(*pathFile); ok {
		f = p.target
	}
	// AT_EXECFN names the descriptor (Linux: bprm->filename is
	// "/dev/fd/N" for an empty path).
	name := "/dev/fd/" + strconv.Itoa(fd)
	switch f := f.(type) {
	case *memFD:
		return loadMemfdExecutable(f.inode, name)
	case *hostFile:
		return t.k.loadHostFDExecutable(f, name)
	}
	st, err := f.Stat(t)
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: %w: file type %#o cannot be executed: %w", name, ErrNotExecutable, st.Mode&unix.S_IFMT, unix.EACCES)
}

// loadMemfdExecutable parses the program in a memfd. The executable holds
// a reference of the inode while it loads.
//
// TODO(ringbox): Linux denies writes to a running program's file
// (ETXTBSY) and lets execve("/proc/self/exe") run the memfd again;
// ringbox does neither.
func loadMemfdExecutable(i *memInode, name string) (*executable, error) {
	i.mu.Lock()
	size, mode := i.size, fs.FileMode(i.mode&0o777)
	i.mu.Unlock()
	r := memInodeReader{i}
	img, err := loadImage(name, r, size, mode)
	if err != nil {
		return nil, err
	}
	i.incRef()
	return &executable{
		// /proc/self/exe as Linux shows an unlinked tmpfs file, and the
		// dentry's name as the task name (Linux 6.13+ takes comm from
		// the file for an empty path).
		path:    "/" + i.name + " (deleted)",
		name:    name,
		comm:    truncateComm(i.name),
		r:       r,
		release: i.decRef,
		img:     img,
	}, nil
}

// loadHostFDExecutable parses the program in a host file: the host's
// /proc/self/fd link reopens it for reading whatever the descriptor's
// access mode, and names it for /proc/self/exe.
func (k *Kernel) loadHostFDExecutable(h *hostFile, name string) (*executable, error) {
	link := "/proc/self/fd/" + strconv.Itoa(h.fd)
	exe, err := k.loadExecutable(link)
	if err != nil {
		return nil, err
	}
	exe.name = name
	if target, err := hostReadlink(link); err == nil {
		exe.path = target
		exe.comm = commName(strings.TrimSuffix(target, " (deleted)"))
	}
	return exe, nil
}

// truncateComm cuts a name to TASK_COMM_LEN-1 bytes.
func truncateComm(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

// memInodeReader reads a memfd for the ELF loader.
type memInodeReader struct{ i *memInode }

// ReadAt implements io.ReaderAt: a read past the end is short, with
// io.EOF.
func (r memInodeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, unix.EINVAL
	}
	n := r.i.readAt(p, off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func init() {
	register(unix.SYS_FCHMOD, "fchmod", sysFchmod, argFD, argHex)
}

// CAP_FOWNER and CAP_FSETID (capabilities(7)).
const (
	capFowner = 3
	capFsetid = 4
)

// chmoder files take fchmod(2).
type chmoder interface {
	chmod(t *Task, mode uint32) error
}

// sysFchmod implements fchmod(2) for the files that have a mode of their
// own: memfds, whose execute bits decide whether execveat may run them.
//
// TODO(ringbox): host files are the sandbox's read-only view of the host
// (EROFS); pipes, sockets and anonymous inodes, whose modes Linux lets
// the owner change, are EPERM.
func sysFchmod(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	if f.Flags()&unix.O_PATH != 0 {
		// Linux: fchmod needs a real open file (fdget, not fdget_raw).
		return 0, unix.EBADF
	}
	switch c := f.(type) {
	case chmoder:
		return 0, c.chmod(t, uint32(a.u(1))&07777)
	case *hostFile:
		return 0, unix.EROFS
	}
	return 0, unix.EPERM
}

// chmod implements chmoder (Linux: fs/attr.c:setattr_prepare() and
// mm/shmem.c:shmem_setattr()): the owner or CAP_FOWNER only; the set-group-ID
// bit drops for a caller outside the file's group without CAP_FSETID;
// F_SEAL_EXEC freezes the execute bits.
func (f *memFD) chmod(t *Task, mode uint32) error {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	c := &t.creds
	if c.FSUID != i.uid && !c.has(capFowner) {
		return unix.EPERM
	}
	if mode&unix.S_ISGID != 0 && !c.has(capFsetid) && !credsInGroup(c, i.gid) {
		mode &^= unix.S_ISGID
	}
	if i.seals&unix.F_SEAL_EXEC != 0 && (i.mode^mode)&0o111 != 0 {
		return unix.EPERM
	}
	i.mode = mode
	i.ctime = unix.NsecToTimespec(time.Now().UnixNano())
	return nil
}

// credsInGroup reports whether gid is the filesystem group or a
// supplementary group of c (Linux: kernel/groups.c:in_group_p()).
func credsInGroup(c *Credentials, gid uint32) bool {
	return c.FSGID == gid || slices.Contains(c.Groups, gid)
}

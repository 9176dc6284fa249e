package kernel

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// A minimal /proc, until the VFS brings the real one: the files that
// debuggers and the ptrace rules need.
//
//	/proc/sys/kernel/yama/ptrace_scope   YAMA's scope (read; write as root)
//	/proc/<pid>/status, /proc/self/...   State (t for a ptrace-stop), TracerPid, ids
//	/proc/<pid>/stat                     the state letter and ids
//	/proc/<pid>/mem                      a process's memory, for a tracer
//
// TODO(ringbox): the rest of procfs (maps, fd/, cmdline, auxv...) and
// directory listings come with the VFS.

// procStatFS is st_dev of the synthetic files; procfs's own in Linux
// varies, it is not ABI.
const procStatFS = 0x16

// openProc resolves name (already cleaned) under /proc. handled is false
// when name is not a /proc path this code serves.
func openProc(t *Task, name string, flags int) (f File, handled bool, err error) {
	if name == "/proc/sys/kernel/yama/ptrace_scope" {
		return newProcScopeFile(t, flags), true, nil
	}
	rest, ok := strings.CutPrefix(name, "/proc/")
	if !ok {
		return nil, false, nil
	}
	pidStr, file, ok := strings.Cut(rest, "/")
	if !ok {
		pidStr, file = rest, ""
	}
	var target *Task
	switch pidStr {
	case "self", "thread-self":
		target = t
	default:
		pid, perr := strconv.Atoi(pidStr)
		if perr != nil || pid <= 0 {
			return nil, true, unix.ENOENT
		}
		if target = t.k.taskByTID(int32(pid)); target == nil {
			return nil, true, unix.ENOENT
		}
	}
	// /proc/<pid>/task/<tid>/... names a thread of the process.
	if sub, ok := strings.CutPrefix(file, "task/"); ok {
		tidStr, f2, _ := strings.Cut(sub, "/")
		tid, terr := strconv.Atoi(tidStr)
		if terr != nil {
			return nil, true, unix.ENOENT
		}
		th := t.k.taskByTID(int32(tid))
		if th == nil || th.tg != target.tg {
			return nil, true, unix.ENOENT
		}
		target, file = th, f2
	}
	acc := flags & unix.O_ACCMODE
	switch file {
	case "", "task":
		// A directory: usable with O_PATH (stat, access) only until the
		// VFS can list it.
		if flags&unix.O_PATH == 0 && flags&unix.O_DIRECTORY == 0 {
			return nil, true, unix.EISDIR
		}
		d := newProcTextFile("", flags)
		d.dir = true
		d.ents = []dirent{{ino: 1, typ: unix.DT_DIR, name: "."}, {ino: 1, typ: unix.DT_DIR, name: ".."}}
		if file == "task" {
			target.tg.mu.Lock()
			for tid := range target.tg.tasks {
				d.ents = append(d.ents, dirent{ino: uint64(tid), typ: unix.DT_DIR, name: strconv.Itoa(int(tid))})
			}
			target.tg.mu.Unlock()
		} else {
			for _, n := range []string{"mem", "stat", "status", "task"} {
				typ := uint8(unix.DT_REG)
				if n == "task" {
					typ = unix.DT_DIR
				}
				d.ents = append(d.ents, dirent{ino: 2, typ: typ, name: n})
			}
		}
		return d, true, nil
	case "status", "stat":
		if acc != unix.O_RDONLY {
			return nil, true, unix.EACCES
		}
		text := target.procStatus()
		if file == "stat" {
			text = target.procStat()
		}
		return newProcTextFile(text, flags), true, nil
	case "mem":
		// Linux: fs/proc/base.c:mem_open() -> mm_access() with
		// PTRACE_MODE_ATTACH_FSCREDS; a failed check is EACCES.
		if target.mm == nil {
			return nil, true, unix.ENOENT
		}
		if err := t.ptraceMayAccess(target, ptraceModeAttach|ptraceModeFSCreds); err != nil {
			return nil, true, unix.EACCES
		}
		pf := &procMemFile{mm: target.mm}
		pf.initRefs()
		pf.flags.Store(int32(flags&^unix.O_CLOEXEC) | oLargefile)
		return pf, true, nil
	}
	return nil, true, unix.ENOENT
}

// procState is the state letter and name /proc shows (Linux:
// fs/proc/array.c task_state_array).
func (t *Task) procState() string {
	k := t.k
	k.mu.Lock()
	inPtraceStop := t.pt.stop != nil || t.pt.listening
	k.mu.Unlock()
	switch {
	case inPtraceStop:
		return "t (tracing stop)"
	case t.blocking.Load():
		return "S (sleeping)"
	case t.groupStopped && t.tg.groupStopped:
		return "T (stopped)"
	}
	return "R (running)"
}

// procStatus renders /proc/<pid>/status.
func (t *Task) procStatus() string {
	k := t.k
	k.mu.Lock()
	tracer := int32(0)
	if t.pt.tracer != nil {
		tracer = t.pt.tracer.tg.tgid
	}
	ppid := int32(0)
	if p := t.tg.parent; p != nil {
		ppid = p.tgid
	}
	k.mu.Unlock()
	t.tg.mu.Lock()
	threads := len(t.tg.tasks)
	t.tg.mu.Unlock()
	h := t.sigLock()
	pend, shpend, blk := t.pending.set, t.tg.pending.set, t.sigMask
	var ign, cgt SignalSet
	for i, a := range h.actions {
		switch a.Handler {
		case sigIGN:
			ign |= 1 << i
		case sigDFL:
		default:
			cgt |= 1 << i
		}
	}
	h.mu.Unlock()
	c := t.creds
	var b strings.Builder
	fmt.Fprintf(&b, "Name:\t%s\n", t.name)
	fmt.Fprintf(&b, "Umask:\t%04o\n", t.fs.umask.Load())
	fmt.Fprintf(&b, "State:\t%s\n", t.procState())
	fmt.Fprintf(&b, "Tgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t%d\n", t.tg.tgid, t.tid, ppid, tracer)
	fmt.Fprintf(&b, "Uid:\t%d\t%d\t%d\t%d\n", c.RealUID, c.EffectiveUID, c.SavedUID, c.FSUID)
	fmt.Fprintf(&b, "Gid:\t%d\t%d\t%d\t%d\n", c.RealGID, c.EffectiveGID, c.SavedGID, c.FSGID)
	groups := make([]string, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = strconv.Itoa(int(g))
	}
	fmt.Fprintf(&b, "Groups:\t%s\n", strings.Join(groups, " "))
	fmt.Fprintf(&b, "Threads:\t%d\n", threads)
	fmt.Fprintf(&b, "SigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\nSigIgn:\t%016x\nSigCgt:\t%016x\n", uint64(pend), uint64(shpend), uint64(blk), uint64(ign), uint64(cgt))
	nnp := 0
	if t.noNewPrivs.Load() {
		nnp = 1
	}
	fmt.Fprintf(&b, "NoNewPrivs:\t%d\nSeccomp:\t%d\nSeccomp_filters:\t%d\n", nnp, t.sc.mode.Load(), t.sc.filterCount())
	return b.String()
}

// procStat renders the first fields of /proc/<pid>/stat.
func (t *Task) procStat() string {
	k := t.k
	k.mu.Lock()
	ppid := int32(0)
	if p := t.tg.parent; p != nil {
		ppid = p.tgid
	}
	pgid, sid := t.tg.pgid, t.tg.sid
	k.mu.Unlock()
	state := t.procState()[:1]
	return fmt.Sprintf("%d (%s) %s %d %d %d 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0\n", t.tid, t.name, state, ppid, pgid, sid)
}

// procTextFile is a read-only file whose content is fixed at open.
type procTextFile struct {
	fileRefs
	fileFlags
	mu   sync.Mutex
	data []byte
	pos  int64
	// dir marks a /proc directory, listed by getdents64 from ents.
	dir  bool
	ents []dirent
}

// readDirents implements dirLister.
func (f *procTextFile) readDirents() ([]dirent, *int64) { return f.ents, &f.pos }

func newProcTextFile(text string, flags int) *procTextFile {
	f := &procTextFile{data: []byte(text)}
	f.initRefs()
	f.flags.Store(int32(flags&^unix.O_CLOEXEC) | oLargefile)
	return f
}

func (f *procTextFile) Read(t *Task, dst []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, _ := f.PRead(t, dst, f.pos)
	f.pos += int64(n)
	return n, nil
}
func (f *procTextFile) PRead(t *Task, dst []byte, off int64) (int, error) {
	if off >= int64(len(f.data)) {
		return 0, nil
	}
	return copy(dst, f.data[off:]), nil
}
func (f *procTextFile) Write(t *Task, src []byte) (int, error)             { return 0, unix.EBADF }
func (f *procTextFile) PWrite(t *Task, src []byte, off int64) (int, error) { return 0, unix.EBADF }
func (f *procTextFile) Seekable() bool                                     { return true }
func (f *procTextFile) Ioctl(t *Task, req, arg uint64) (uint64, error)     { return 0, unix.ENOTTY }
func (f *procTextFile) Readiness(mask uint32) uint32                       { return defaultPollMask & mask }
func (f *procTextFile) EventRegister(w *Waiter, mask uint32)               {}
func (f *procTextFile) EventUnregister(w *Waiter)                          {}
func (f *procTextFile) DecRef()                                            { f.decRef() }
func (f *procTextFile) Stat(t *Task) (unix.Stat_t, error) {
	if f.dir {
		st := procStat(0o555)
		st.Mode = unix.S_IFDIR | 0o555
		return st, nil
	}
	return procStat(0o444), nil
}
func (f *procTextFile) Seek(t *Task, off int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return seekIn(&f.pos, int64(len(f.data)), off, whence)
}

func procStat(mode uint32) unix.Stat_t {
	return unix.Stat_t{Dev: procStatFS, Mode: unix.S_IFREG | mode, Nlink: 1, Blksize: 1024}
}

// seekIn implements lseek on a file of size bytes.
func seekIn(pos *int64, size, off int64, whence int) (int64, error) {
	var n int64
	switch whence {
	case unix.SEEK_SET:
		n = off
	case unix.SEEK_CUR:
		n = *pos + off
	case unix.SEEK_END:
		n = size + off
	default:
		return 0, unix.EINVAL
	}
	if n < 0 {
		return 0, unix.EINVAL
	}
	*pos = n
	return n, nil
}

// procScopeFile is /proc/sys/kernel/yama/ptrace_scope.
type procScopeFile struct {
	procTextFile
	k *Kernel
}

func newProcScopeFile(t *Task, flags int) *procScopeFile {
	f := &procScopeFile{k: t.k}
	f.data = []byte(fmt.Sprintf("%d\n", t.k.PtraceScope()))
	f.initRefs()
	f.flags.Store(int32(flags&^unix.O_CLOEXEC) | oLargefile)
	return f
}

// Write sets the scope: "a process must have CAP_SYS_PTRACE" to change it
// (Yama.rst), and 3 cannot be undone.
func (f *procScopeFile) Write(t *Task, src []byte) (int, error) {
	if f.Flags()&unix.O_ACCMODE == unix.O_RDONLY {
		return 0, unix.EBADF
	}
	if !t.hasCapSysPtrace() {
		return 0, unix.EPERM
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(src)))
	if err != nil {
		return 0, unix.EINVAL
	}
	if err := f.k.SetPtraceScope(v); err != nil {
		return 0, err
	}
	return len(src), nil
}
func (f *procScopeFile) PWrite(t *Task, src []byte, off int64) (int, error) { return f.Write(t, src) }
func (f *procScopeFile) Stat(t *Task) (unix.Stat_t, error)                  { return procStat(0o644), nil }

// procMemFile is /proc/<pid>/mem: the file offset is the address.
type procMemFile struct {
	fileRefs
	fileFlags
	mm  *MemoryManager
	mu  sync.Mutex
	pos int64
}

func (f *procMemFile) Read(t *Task, dst []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.PRead(t, dst, f.pos)
	f.pos += int64(n)
	return n, err
}
func (f *procMemFile) PRead(t *Task, dst []byte, off int64) (int, error) {
	if f.Flags()&unix.O_ACCMODE == unix.O_WRONLY {
		return 0, unix.EBADF
	}
	if f.mm.users.Load() <= 0 {
		// The process is gone: its memory reads as empty (Linux:
		// mem_rw() when mmget_not_zero() fails).
		return 0, nil
	}
	n, _ := f.mm.CopyInForce(uint64(off), dst)
	if n == 0 && len(dst) > 0 {
		return 0, unix.EIO
	}
	return n, nil
}
func (f *procMemFile) Write(t *Task, src []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.PWrite(t, src, f.pos)
	f.pos += int64(n)
	return n, err
}
func (f *procMemFile) PWrite(t *Task, src []byte, off int64) (int, error) {
	if f.Flags()&unix.O_ACCMODE == unix.O_RDONLY {
		return 0, unix.EBADF
	}
	if f.mm.users.Load() <= 0 {
		return 0, nil
	}
	n, _ := f.mm.CopyOutForce(uint64(off), src)
	if n == 0 && len(src) > 0 {
		return 0, unix.EIO
	}
	return n, nil
}
func (f *procMemFile) Seek(t *Task, off int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case unix.SEEK_SET:
		f.pos = off
	case unix.SEEK_CUR:
		f.pos += off
	default:
		return 0, unix.EINVAL
	}
	return f.pos, nil
}
func (f *procMemFile) Seekable() bool                                 { return true }
func (f *procMemFile) Ioctl(t *Task, req, arg uint64) (uint64, error) { return 0, unix.ENOTTY }
func (f *procMemFile) Readiness(mask uint32) uint32                   { return defaultPollMask & mask }
func (f *procMemFile) EventRegister(w *Waiter, mask uint32)           {}
func (f *procMemFile) EventUnregister(w *Waiter)                      {}
func (f *procMemFile) Stat(t *Task) (unix.Stat_t, error)              { return procStat(0o600), nil }
func (f *procMemFile) DecRef()                                        { f.decRef() }

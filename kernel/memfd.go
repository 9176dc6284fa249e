package kernel

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/platform/memfile"
)

// memfd_create(2) (Linux: mm/memfd.c over mm/shmem.c): an anonymous regular
// file whose pages live in the sandbox's memory file, so that a mapping of
// it can share them (the memory manager's part: memInode.pageOffset).

func init() {
	register(unix.SYS_MEMFD_CREATE, "memfd_create", sysMemfdCreate, argPath, argHex)
}

// memfdNameMax is MFD_NAME_MAX_LEN: NAME_MAX less the "memfd:" prefix.
const memfdNameMax = 255 - len("memfd:")

// memfdAllSeals is F_ALL_SEALS.
const memfdAllSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW |
	unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE | unix.F_SEAL_EXEC

// maxFileSize is MAX_LFS_FILESIZE, the largest size of a tmpfs file.
const maxFileSize = 1<<63 - 1

// shmDev is st_dev of memfds (Linux: the internal tmpfs mount; not ABI).
const shmDev = 0x1

// memfdInodes numbers memfds for st_ino.
var memfdInodes atomic.Uint64

// memInode is the file itself (Linux: the shmem inode), shared by its
// open file descriptions and by mappings of it.
type memInode struct {
	mf   *memfile.MemoryFile
	ino  uint64
	name string
	uid  uint32
	gid  uint32

	refs atomic.Int64
	// writeMaps counts writable shared mappings, which F_SEAL_WRITE
	// refuses (EBUSY). The memory manager keeps it.
	writeMaps atomic.Int64

	mu sync.Mutex
	// size is the file size in bytes. Protected by mu.
	size int64
	// pages maps page indexes to memory-file offsets; each page holds a
	// reference of the memory file. Absent pages read as zeros.
	// Protected by mu.
	pages map[uint64]uint64
	// seals are the F_SEAL_* set. Protected by mu.
	seals uint32
	// mode is the permission bits. Protected by mu.
	mode uint32
	// mtime and ctime are the modification and change times. Protected
	// by mu.
	mtime, ctime unix.Timespec
}

// incRef adds a user: an open file description or a mapping.
func (i *memInode) incRef() { i.refs.Add(1) }

// decRef drops a user; the last frees the pages.
func (i *memInode) decRef() {
	if i.refs.Add(-1) != 0 {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, off := range i.pages {
		i.mf.DecRef(memfile.FileRange{Start: off, End: off + pageSize})
	}
	i.pages = nil
}

// pageOffset returns the memory-file offset of page idx, allocating a
// zero page if absent: the memory manager maps it for a shared mapping
// (taking its own reference of the page) after checking that the page
// is below the file size (else SIGBUS).
func (i *memInode) pageOffset(idx uint64) (uint64, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.pageLocked(idx)
}

// pageLocked is pageOffset.
//
// Preconditions: i.mu is held.
func (i *memInode) pageLocked(idx uint64) (uint64, error) {
	if off, ok := i.pages[idx]; ok {
		return off, nil
	}
	fr, err := i.mf.Allocate(1)
	if err != nil {
		return 0, err
	}
	clear(i.mf.Bytes(fr))
	i.pages[idx] = fr.Start
	return fr.Start, nil
}

// fileSize returns the size.
func (i *memInode) fileSize() int64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.size
}

// readAt copies from offset off, up to the size.
func (i *memInode) readAt(dst []byte, off int64) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if off >= i.size {
		return 0
	}
	dst = dst[:min(int64(len(dst)), i.size-off)]
	for done := 0; done < len(dst); {
		pos := uint64(off) + uint64(done)
		idx, in := pos/pageSize, pos%pageSize
		n := min(uint64(len(dst)-done), pageSize-in)
		if p, ok := i.pages[idx]; ok {
			copy(dst[done:], i.mf.Bytes(memfile.FileRange{Start: p + in, End: p + in + n}))
		} else {
			clear(dst[done : done+int(n)])
		}
		done += int(n)
	}
	return len(dst)
}

// writeAt copies src to offset off (or the end, with appending), growing
// the file, with Linux's checks in Linux's order: seals, RLIMIT_FSIZE
// (SIGXFSZ and EFBIG at the limit, a short write below it), the maximum
// size (Linux: generic_write_checks(), shmem_write_begin()). It returns
// the bytes written and where the write ended.
//
// TODO(ringbox): a write that F_SEAL_GROW cuts is short where Linux, page
// by page, may stop at a different byte.
func (i *memInode) writeAt(t *Task, src []byte, off int64, appending bool) (int, int64, error) {
	n, end, xfsz, err := i.writeAtLocked(t, src, off, appending)
	if xfsz {
		t.sendSelfSignal(unix.SIGXFSZ)
	}
	return n, end, err
}

// writeAtLocked is writeAt; it reports whether SIGXFSZ is due, for the
// caller to send once the inode is unlocked.
func (i *memInode) writeAtLocked(t *Task, src []byte, off int64, appending bool) (n int, end int64, xfsz bool, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(src) == 0 {
		return 0, off, false, nil
	}
	if appending {
		off = i.size
	}
	if i.seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0 {
		return 0, off, false, unix.EPERM
	}
	if lim := t.tg.limits.Get(unix.RLIMIT_FSIZE).Cur; lim != rlimInfinity {
		if uint64(off) >= lim {
			return 0, off, true, unix.EFBIG
		}
		src = src[:min(uint64(len(src)), lim-uint64(off))]
	}
	if off >= maxFileSize {
		// The file system's own limit comes without SIGXFSZ.
		return 0, off, false, unix.EFBIG
	}
	src = src[:min(int64(len(src)), maxFileSize-off)]
	if i.seals&unix.F_SEAL_GROW != 0 && off+int64(len(src)) > i.size {
		if off >= i.size {
			return 0, off, false, unix.EPERM
		}
		src = src[:i.size-off]
	}
	done := 0
	for done < len(src) {
		pos := uint64(off) + uint64(done)
		idx, in := pos/pageSize, pos%pageSize
		n := min(uint64(len(src)-done), pageSize-in)
		p, perr := i.pageLocked(idx)
		if perr != nil {
			if done > 0 {
				break
			}
			return 0, off, false, perr
		}
		copy(i.mf.Bytes(memfile.FileRange{Start: p + in, End: p + in + n}), src[done:])
		done += int(n)
	}
	end = off + int64(done)
	i.size = max(i.size, end)
	i.touchLocked()
	return done, end, false, nil
}

// truncate sets the size (Linux: shmem_setattr() and inode_newsize_ok()):
// EPERM against F_SEAL_SHRINK or F_SEAL_GROW, EFBIG with SIGXFSZ when
// growing past RLIMIT_FSIZE. Pages past the new size are freed and the
// tail of the last one zeroed, so that growing again reads zeros.
func (i *memInode) truncate(t *Task, size int64) error {
	err := i.truncateLocked(t, size)
	if err == unix.EFBIG {
		t.sendSelfSignal(unix.SIGXFSZ)
	}
	return err
}

// truncateLocked is truncate but for the signal.
func (i *memInode) truncateLocked(t *Task, size int64) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if (size < i.size && i.seals&unix.F_SEAL_SHRINK != 0) || (size > i.size && i.seals&unix.F_SEAL_GROW != 0) {
		return unix.EPERM
	}
	if size > i.size {
		if lim := t.tg.limits.Get(unix.RLIMIT_FSIZE).Cur; lim != rlimInfinity && uint64(size) > lim {
			return unix.EFBIG
		}
	}
	if size < i.size {
		keep := (uint64(size) + pageSize - 1) / pageSize
		for idx, off := range i.pages {
			if idx >= keep {
				i.mf.DecRef(memfile.FileRange{Start: off, End: off + pageSize})
				delete(i.pages, idx)
			}
		}
		if in := uint64(size) % pageSize; in != 0 {
			if off, ok := i.pages[keep-1]; ok {
				clear(i.mf.Bytes(memfile.FileRange{Start: off + in, End: off + pageSize}))
			}
		}
	}
	i.size = size
	i.touchLocked()
	return nil
}

// touchLocked stamps a modification.
//
// Preconditions: i.mu is held.
func (i *memInode) touchLocked() {
	now := unix.NsecToTimespec(time.Now().UnixNano())
	i.mtime, i.ctime = now, now
}

// addSeals implements F_ADD_SEALS once the file is known writable
// (Linux: mm/memfd.c:memfd_add_seals()).
func (i *memInode) addSeals(seals uint32) error {
	if seals&^memfdAllSeals != 0 {
		return unix.EINVAL
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.seals&unix.F_SEAL_SEAL != 0 {
		return unix.EPERM
	}
	if seals&unix.F_SEAL_WRITE != 0 && i.writeMaps.Load() > 0 {
		return unix.EBUSY
	}
	// "SEAL_EXEC implies SEAL_WRITE" for an executable file, making it
	// W^X from the start.
	if seals&unix.F_SEAL_EXEC != 0 && i.mode&0o111 != 0 {
		seals |= unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE
	}
	i.seals |= seals
	return nil
}

// memFD is an open file description of a memfd.
type memFD struct {
	fileRefs
	fileFlags
	inode *memInode

	// posMu serializes the calls that use the position (Linux:
	// f_pos_lock).
	posMu sync.Mutex
	pos   int64
}

// DecRef implements File.DecRef.
func (f *memFD) DecRef() {
	if f.decRef() {
		f.inode.decRef()
	}
}

// Read implements File.Read.
func (f *memFD) Read(t *Task, dst []byte) (int, error) {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	n := f.inode.readAt(dst, f.pos)
	f.pos += int64(n)
	return n, nil
}

// Write implements File.Write.
func (f *memFD) Write(t *Task, src []byte) (int, error) {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	n, end, err := f.inode.writeAt(t, src, f.pos, f.Flags()&unix.O_APPEND != 0)
	if n > 0 {
		f.pos = end
	}
	return n, err
}

// PRead implements File.PRead.
func (f *memFD) PRead(t *Task, dst []byte, off int64) (int, error) {
	return f.inode.readAt(dst, off), nil
}

// PWrite implements File.PWrite; with O_APPEND it appends whatever the
// offset, as Linux does (pwrite(2) BUGS).
func (f *memFD) PWrite(t *Task, src []byte, off int64) (int, error) {
	n, _, err := f.inode.writeAt(t, src, off, f.Flags()&unix.O_APPEND != 0)
	return n, err
}

// Seek implements File.Seek, with SEEK_DATA and SEEK_HOLE over the
// allocated pages (Linux: shmem_file_llseek(), vfs_setpos()).
func (f *memFD) Seek(t *Task, off int64, whence int) (int64, error) {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	i := f.inode
	var pos int64
	switch whence {
	case unix.SEEK_SET:
		pos = off
	case unix.SEEK_CUR:
		pos = f.pos + off
	case unix.SEEK_END:
		pos = i.fileSize() + off
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		var err error
		if pos, err = i.seekData(off, whence == unix.SEEK_DATA); err != nil {
			return 0, err
		}
	}
	if pos < 0 {
		return 0, unix.EINVAL
	}
	f.pos = pos
	return pos, nil
}

// seekData finds the next page with data (or the next hole, the end
// counting as one) at or after off; ENXIO at or past the end.
func (i *memInode) seekData(off int64, data bool) (int64, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if off < 0 || off >= i.size {
		return 0, unix.ENXIO
	}
	for pos := off; pos < i.size; pos = (pos/pageSize + 1) * pageSize {
		if _, ok := i.pages[uint64(pos)/pageSize]; ok == data {
			return pos, nil
		}
	}
	if data {
		return 0, unix.ENXIO
	}
	return i.size, nil
}

// Seekable implements File.Seekable.
func (f *memFD) Seekable() bool { return true }

// Ioctl implements File.Ioctl.
func (f *memFD) Ioctl(t *Task, req, arg uint64) (uint64, error) { return 0, unix.ENOTTY }

// Stat implements File.Stat: a regular file with no links; st_blocks
// counts the allocated pages in 512-byte units.
func (f *memFD) Stat(t *Task) (unix.Stat_t, error) {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	return unix.Stat_t{
		Dev:     shmDev,
		Ino:     i.ino,
		Nlink:   0,
		Mode:    unix.S_IFREG | i.mode,
		Uid:     i.uid,
		Gid:     i.gid,
		Size:    i.size,
		Blksize: pageSize,
		Blocks:  int64(len(i.pages)) * (pageSize / 512),
		Atim:    i.mtime,
		Mtim:    i.mtime,
		Ctim:    i.ctime,
	}, nil
}

// Readiness implements File.Readiness: a regular file is always ready.
func (f *memFD) Readiness(mask uint32) uint32 { return defaultPollMask & mask }

// pollable makes epoll_ctl refuse a regular file (EPERM).
func (f *memFD) pollable() bool { return false }

// fillsReads tells read(2) that a short read means the end of the file.
func (f *memFD) fillsReads() bool { return true }

// EventRegister implements File.EventRegister.
func (f *memFD) EventRegister(w *Waiter, mask uint32) {}

// EventUnregister implements File.EventUnregister.
func (f *memFD) EventUnregister(w *Waiter) {}

// Truncate implements ftruncate(2) for the file.
func (f *memFD) Truncate(t *Task, size int64) error { return f.inode.truncateMapped(t, size) }

// Sync implements fsync(2): memory is the storage.
func (f *memFD) Sync() error { return nil }

// sysMemfdCreate implements memfd_create(2).
//
// TODO(ringbox): MFD_HUGETLB is EINVAL (no huge pages), and without
// MFD_EXEC or MFD_NOEXEC_SEAL the file is executable, as with Linux's
// default vm.memfd_noexec = 0.
func sysMemfdCreate(t *Task, a *syscallArgs) (uint64, error) {
	flags := uint32(a.u(1))
	if flags&^(unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_NOEXEC_SEAL|unix.MFD_EXEC) != 0 {
		return 0, unix.EINVAL
	}
	if flags&unix.MFD_NOEXEC_SEAL != 0 && flags&unix.MFD_EXEC != 0 {
		return 0, unix.EINVAL
	}
	name, err := t.CopyInString(a.u(0), memfdNameMax)
	if err == unix.ENAMETOOLONG {
		return 0, unix.EINVAL
	}
	if err != nil {
		return 0, err
	}
	i := &memInode{
		mf:    t.k.mf,
		ino:   memfdInodes.Add(1),
		name:  "memfd:" + name,
		uid:   t.creds.FSUID,
		gid:   t.creds.FSGID,
		pages: make(map[uint64]uint64),
		mode:  0o777,
		seals: unix.F_SEAL_SEAL,
	}
	i.refs.Store(1)
	i.touchLocked()
	switch {
	case flags&unix.MFD_NOEXEC_SEAL != 0:
		i.mode = 0o666
		i.seals = unix.F_SEAL_EXEC
	case flags&unix.MFD_ALLOW_SEALING != 0:
		i.seals = 0
	}
	f := &memFD{inode: i}
	f.initRefs()
	f.flags.Store(unix.O_RDWR | oLargefile)
	fd, err := t.fdt.newFD(f, 0, flags&unix.MFD_CLOEXEC != 0, t.fileLimit())
	if err != nil {
		f.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

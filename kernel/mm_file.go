package kernel

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// Memory objects: what a vma maps when its pages are not the address
// space's own. A MAP_SHARED|MAP_ANONYMOUS mapping maps a sharedAnon
// (mm_shared.go); a mapping of a memfd maps the memfd's inode through a
// memfdMapping (Linux: the vma's vm_file and its page cache, mm/shmem.c).
// The memory manager finds an object's pages by their index in the
// object, so that every mapping of it — in this address space, in the
// children of a fork, through read(2) and write(2) of the memfd — sees
// the same pages. A private mapping of an object maps the object's pages
// copy-on-write: it sees the file until it writes a page. A regular host
// file maps through a hostFileMapping, which reads a private copy of
// each page as it is faulted in.
//
// Lock order: MemoryManager.mu, then memInode.mu (as sharedAnon.mu). A
// truncation unmaps the pages past the new end from the address spaces
// after it has unlocked the inode.

// memObject is the object behind a vma (vma.shm), shared by the vmas
// that map it, each holding a reference.
type memObject interface {
	// incRef adds a vma that maps the object.
	incRef()
	// decRef drops a vma; the last reference lets the object go.
	decRef()
	// page returns the memory-file offset of the object's page idx,
	// with a reference for the caller's address space. errBeyondEOF
	// says the page lies past the end of a file: an access is SIGBUS.
	page(idx uint64) (uint64, error)
}

// errBeyondEOF is a fault on a page of a file mapping past the file's end
// (rounded up to a page): SIGBUS with BUS_ADRERR (Linux:
// mm/filemap.c:filemap_fault() and shmem_fault() return VM_FAULT_SIGBUS).
var errBeyondEOF = errors.New("access beyond the end of the mapped file")

// busAdrerr is BUS_ADRERR, the si_code of SIGBUS for a nonexistent
// physical address (Linux: include/uapi/asm-generic/siginfo.h).
const busAdrerr = 2

// memfdMapping is a vma's reference to a memfd's inode. One is made per
// mmap(2) and shared, with a reference each, by the vmas that come of it
// (split by munmap or mprotect, copied by fork or mremap).
type memfdMapping struct {
	inode *memInode
	// writable marks a shared mapping that could be made writable
	// (Linux: VM_SHARED|VM_MAYWRITE, mapping_map_writable()): each of its
	// vmas counts in inode.writeMaps, which F_SEAL_WRITE refuses.
	writable bool
}

// incRef implements memObject.incRef.
func (m *memfdMapping) incRef() {
	m.inode.incRef()
	if m.writable {
		m.inode.writeMaps.Add(1)
	}
}

// decRef implements memObject.decRef.
func (m *memfdMapping) decRef() {
	if m.writable {
		m.inode.writeMaps.Add(-1)
	}
	m.inode.decRef()
}

// page implements memObject.page: the file's page, allocated as a zero
// page if it is a hole, unless it lies past the end of the file.
func (m *memfdMapping) page(idx uint64) (uint64, error) {
	i := m.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	if idx >= pagesOf(i.size) {
		return 0, errBeyondEOF
	}
	off, err := i.pageLocked(idx)
	if err != nil {
		return 0, err
	}
	i.mf.IncRef(memfileRange(off))
	return off, nil
}

// pagesOf returns how many pages a file of size bytes spans.
func pagesOf(size int64) uint64 {
	return (uint64(size) + pageSize - 1) / pageSize
}

// mmapMemfd makes the object of a mapping of memfd f with protections
// prot, and the permissions mprotect may grant it later (Linux:
// mm/mmap.c:do_mmap() and mm/memfd.c:memfd_check_seals_mmap()):
//
//   - the file must be open for reading (EACCES);
//   - a shared mapping needs a file open for writing to be writable
//     (EACCES), and is never writable once F_SEAL_WRITE or
//     F_SEAL_FUTURE_WRITE is set (EPERM); without those, it counts as a
//     writable mapping even while PROT_READ, since mprotect could make it
//     writable;
//   - a private mapping may always be written: its writes stay private.
func mmapMemfd(f *memFD, prot uint64, shared bool) (*memfdMapping, platform.AccessType, error) {
	acc := f.Flags() & unix.O_ACCMODE
	if acc == unix.O_WRONLY {
		return nil, 0, unix.EACCES
	}
	maxPerms := platform.AnyAccess
	m := &memfdMapping{inode: f.inode}
	i := f.inode
	// Under the inode's lock, so that F_ADD_SEALS sees either the seal
	// check refuse this mapping or the mapping counted in writeMaps.
	i.mu.Lock()
	defer i.mu.Unlock()
	if shared {
		switch {
		case acc != unix.O_RDWR:
			if prot&unix.PROT_WRITE != 0 {
				return nil, 0, unix.EACCES
			}
			maxPerms &^= platform.Write
		case i.seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0:
			if prot&unix.PROT_WRITE != 0 {
				return nil, 0, unix.EPERM
			}
			maxPerms &^= platform.Write
		default:
			m.writable = true
		}
	}
	m.incRef()
	return m, maxPerms, nil
}

// liveMMs are the address spaces that exist (newMM adds, the last
// decUsers removes), so that truncating a memfd can find its mappings:
// fork copies them without the object learning of the child. Only a
// truncation that shrinks a mapped memfd walks it.
var liveMMs sync.Map // *MemoryManager -> struct{}

// registerMM records a new address space in liveMMs.
func registerMM(mm *MemoryManager) { liveMMs.Store(mm, struct{}{}) }

// unregisterMM forgets an address space that has no user left.
func unregisterMM(mm *MemoryManager) { liveMMs.Delete(mm) }

// truncateMapped is ftruncate(2) of a memfd that may be mapped: after the
// inode shrinks, every mapping loses its pages past the new end, private
// copies included, so that a later access faults and finds SIGBUS, or a
// zero page once the file grows again (Linux: mm/truncate.c:
// truncate_pagecache() and unmap_mapping_range() with even_cows).
func (i *memInode) truncateMapped(t *Task, size int64) error {
	old := i.fileSize()
	if err := i.truncate(t, size); err != nil {
		return err
	}
	if size >= old || i.refs.Load() <= 1 {
		// Growing, or no mapping can exist: only the caller's
		// descriptor refers to the inode.
		return nil
	}
	first := pagesOf(size)
	liveMMs.Range(func(key, _ any) bool {
		key.(*MemoryManager).unmapObjectFrom(i, first)
		return true
	})
	return nil
}

// unmapObjectFrom drops the pages that the vmas mapping inode i hold at
// or past page index first of the file.
func (mm *MemoryManager) unmapObjectFrom(i *memInode, first uint64) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.users.Load() <= 0 {
		return
	}
	for _, v := range mm.vmas {
		m, ok := v.shm.(*memfdMapping)
		if !ok || m.inode != i {
			continue
		}
		// The address of page first in v, if v reaches it.
		objStart := v.shmOff / pageSize
		from := v.start
		if first > objStart {
			d := (first - objStart) * pageSize
			if d >= v.end-v.start {
				continue
			}
			from = v.start + d
		}
		dropped := false
		for a := from; a < v.end; a += pageSize {
			if p, ok := mm.pages[a]; ok {
				mm.mf.DecRef(memfile.FileRange{Start: p.off, End: p.off + pageSize})
				delete(mm.pages, a)
				dropped = true
			}
		}
		if dropped {
			mm.as.Unmap(from, v.end-from)
		}
	}
}

// mmapFile looks up the file that mmap(2) maps without MAP_ANONYMOUS
// and returns the object its vma maps (holding a reference for the vma)
// and the permissions mprotect may grant; anon says the mapping is
// anonymous memory after all (/dev/zero: Linux's mmap_zero()).
func (t *Task) mmapFile(fd int, prot, off, length uint64, shared bool) (obj memObject, maxPerms platform.AccessType, anon bool, err error) {
	f := t.fdt.get(fd)
	if f == nil {
		return nil, 0, false, unix.EBADF
	}
	defer f.DecRef()
	if f.Flags()&unix.O_PATH != 0 {
		// An O_PATH descriptor is not open for I/O (Linux: fget()
		// refuses FMODE_PATH files).
		return nil, 0, false, unix.EBADF
	}
	switch f := f.(type) {
	case *memFD:
		// The mapping must end within the largest file size (Linux:
		// mm/mmap.c:file_mmap_ok()).
		if length > maxFileSize || off/pageSize > (maxFileSize-length)/pageSize {
			return nil, 0, false, unix.EOVERFLOW
		}
		m, maxPerms, err := mmapMemfd(f, prot, shared)
		if err != nil {
			return nil, 0, false, err
		}
		return m, maxPerms, false, nil
	case *hostFile:
		if f.regular {
			return mmapHostFile(t.k.mf, f, prot, shared)
		}
	case *memDevFile:
		if f.kind == devZero {
			acc := f.Flags() & unix.O_ACCMODE
			if acc == unix.O_WRONLY || (shared && prot&unix.PROT_WRITE != 0 && acc != unix.O_RDWR) {
				return nil, 0, false, unix.EACCES
			}
			return nil, platform.AnyAccess, true, nil
		}
	}
	// Linux: a file without an mmap method.
	return nil, 0, false, unix.ENODEV
}

// The objects vmas map.
var (
	_ memObject = (*sharedAnon)(nil)
	_ memObject = (*memfdMapping)(nil)
	_ memObject = (*hostFileMapping)(nil)
)

// hostFileMapping is a vma's reference to a regular host file, which the
// sandbox sees read-only (hostfs.go). There is no page cache: each fault
// reads the file into a new page that the address space alone holds, so
// a mapping is a private copy of the file as it was at the fault.
//
// TODO(ringbox): Linux maps the page cache, so that a mapping sees later
// changes of the file by the host (until a private page is written) and
// two processes mapping it share its pages. That comes with the
// sandbox's own filesystem.
type hostFileMapping struct {
	f    *hostFile
	mf   *memfile.MemoryFile
	refs atomic.Int32
}

// mmapHostFile makes the object of a mapping of host file f. The file is
// read-only, so a shared mapping can never be written (EACCES, as Linux
// for a file not open for writing).
func mmapHostFile(mf *memfile.MemoryFile, f *hostFile, prot uint64, shared bool) (memObject, platform.AccessType, bool, error) {
	if f.Flags()&unix.O_ACCMODE == unix.O_WRONLY {
		return nil, 0, false, unix.EACCES
	}
	maxPerms := platform.AnyAccess
	if shared {
		if prot&unix.PROT_WRITE != 0 {
			return nil, 0, false, unix.EACCES
		}
		maxPerms &^= platform.Write
	}
	f.IncRef()
	m := &hostFileMapping{f: f, mf: mf}
	m.refs.Store(1)
	return m, maxPerms, false, nil
}

// incRef implements memObject.incRef.
func (m *hostFileMapping) incRef() { m.refs.Add(1) }

// decRef implements memObject.decRef.
func (m *hostFileMapping) decRef() {
	if m.refs.Add(-1) == 0 {
		m.f.DecRef()
	}
}

// page implements memObject.page: a new page holding the file's bytes
// at page idx (zeros past the end within the last page), or
// errBeyondEOF.
func (m *hostFileMapping) page(idx uint64) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(m.f.fd, &st); err != nil {
		return 0, fmt.Errorf("stat of mapped host file: %w", err)
	}
	if idx >= pagesOf(st.Size) {
		return 0, errBeyondEOF
	}
	fr, err := m.mf.Allocate(1)
	if err != nil {
		return 0, err
	}
	buf := m.mf.Bytes(fr)
	for done := 0; done < len(buf); {
		n, err := unix.Pread(m.f.fd, buf[done:], int64(idx*pageSize)+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			m.mf.DecRef(fr)
			return 0, fmt.Errorf("reading mapped host file: %w", err)
		}
		if n == 0 {
			clear(buf[done:])
			break
		}
		done += n
	}
	return fr.Start, nil
}

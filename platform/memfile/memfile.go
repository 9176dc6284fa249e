// Package memfile is the memory file: one memfd that holds every page of
// application memory (and, on KVM, the guest's own structures). The kernel
// allocates pages from it and copies to and from user memory through its
// own shared mapping of the whole file; the platforms map the same pages
// into the program's address space (KVM as guest physical memory, ptrace by
// mapping the memfd in the stub process).
//
// It sits under platform/ because both the kernel and every platform use
// it and the import rule (kernel -> platform <- vmm, ptrace) must hold; it
// is a resource, not a mechanism.
//
// Pages are reference counted so that copy-on-write can share them. Freed
// pages go to a free list and are zeroed when handed out again; the file is
// sparse, so pages never touched cost no host memory.
package memfile

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// PageSize is the allocation unit.
const PageSize = 4096

// ErrNoMemory is returned when the file is full (the sandbox's memory
// limit); the kernel turns it into ENOMEM for the program.
var ErrNoMemory = errors.New("memfile: out of memory")

// FileRange is a half-open range of file offsets [Start, End).
type FileRange struct {
	Start, End uint64
}

// Length returns End-Start.
func (fr FileRange) Length() uint64 { return fr.End - fr.Start }

// String formats the range.
func (fr FileRange) String() string { return fmt.Sprintf("[%#x, %#x)", fr.Start, fr.End) }

// MemoryFile is the memfd and its allocator.
type MemoryFile struct {
	fd   int
	size uint64
	// data is the kernel's shared mapping of the whole file.
	data []byte

	mu sync.Mutex
	// refs counts references per page; 0 means free. Protected by mu.
	refs []int32
	// free holds freed page numbers (not zeroed). Protected by mu.
	free []uint64
	// next is the first never-allocated page. Protected by mu.
	next uint64
	// used counts allocated pages. Protected by mu.
	used uint64
}

// New creates a memory file of size bytes (rounded up to pages).
func New(name string, size uint64) (*MemoryFile, error) {
	if size == 0 {
		return nil, errors.New("memfile: zero size")
	}
	size = (size + PageSize - 1) &^ (PageSize - 1)
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ftruncate memfd to %d bytes: %w", size, err)
	}
	data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_NORESERVE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap memfd of %d bytes: %w", size, err)
	}
	return &MemoryFile{fd: fd, size: size, data: data, refs: make([]int32, size/PageSize)}, nil
}

// FD returns the memfd. It stays owned by the MemoryFile.
func (f *MemoryFile) FD() int { return f.fd }

// Size returns the file's size in bytes.
func (f *MemoryFile) Size() uint64 { return f.size }

// Base returns the address of the kernel's mapping of offset 0, for
// platforms that hand the mapping to KVM as guest memory.
func (f *MemoryFile) Base() uintptr { return uintptrOf(f.data) }

// Bytes returns the kernel's view of fr. fr must lie inside the file.
func (f *MemoryFile) Bytes(fr FileRange) []byte { return f.data[fr.Start:fr.End:fr.End] }

// Allocate returns n contiguous zeroed pages with a reference count of one.
// Single pages are reused from the free list; runs come from the unused
// tail of the file.
func (f *MemoryFile) Allocate(n uint64) (FileRange, error) {
	if n == 0 {
		return FileRange{}, errors.New("memfile: allocate zero pages")
	}
	f.mu.Lock()
	if n == 1 && len(f.free) > 0 {
		p := f.free[len(f.free)-1]
		f.free = f.free[:len(f.free)-1]
		f.refs[p] = 1
		f.used++
		f.mu.Unlock()
		fr := FileRange{p * PageSize, (p + 1) * PageSize}
		clear(f.Bytes(fr))
		return fr, nil
	}
	total := uint64(len(f.refs))
	if f.next+n > total || f.next+n < f.next {
		f.mu.Unlock()
		return FileRange{}, ErrNoMemory
	}
	p := f.next
	f.next += n
	for i := p; i < p+n; i++ {
		f.refs[i] = 1
	}
	f.used += n
	f.mu.Unlock()
	// Never-allocated pages of a sparse memfd read as zero.
	return FileRange{p * PageSize, (p + n) * PageSize}, nil
}

// IncRef adds a reference to each page of fr.
func (f *MemoryFile) IncRef(fr FileRange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := fr.Start / PageSize; p < fr.End/PageSize; p++ {
		if f.refs[p] <= 0 {
			panic(fmt.Sprintf("memfile: IncRef of free page %#x", p*PageSize))
		}
		f.refs[p]++
	}
}

// DecRef drops a reference to each page of fr, freeing pages that reach 0.
func (f *MemoryFile) DecRef(fr FileRange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := fr.Start / PageSize; p < fr.End/PageSize; p++ {
		switch f.refs[p] {
		case 0:
			panic(fmt.Sprintf("memfile: DecRef of free page %#x", p*PageSize))
		case 1:
			f.refs[p] = 0
			f.used--
			f.free = append(f.free, p)
		default:
			f.refs[p]--
		}
	}
}

// RefCount returns the reference count of the page at off.
func (f *MemoryFile) RefCount(off uint64) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refs[off/PageSize]
}

// Usage returns the bytes allocated.
func (f *MemoryFile) Usage() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used * PageSize
}

// Close unmaps and closes the file.
func (f *MemoryFile) Close() error {
	err := unix.Munmap(f.data)
	if cerr := unix.Close(f.fd); err == nil {
		err = cerr
	}
	return err
}

package kernel

import (
	"sync"
	"sync/atomic"

	"github.com/ringbox/ringbox/platform/memfile"
)

// sharedAnon is the memory object behind a MAP_SHARED|MAP_ANONYMOUS
// mapping (Linux: a shmem file). Its pages are found by offset in the
// object, so every address space that maps it — the parent and children
// of a fork — sees the same pages, including pages first touched after
// the fork.
type sharedAnon struct {
	mf *memfile.MemoryFile
	// refs counts the vmas that map the object.
	refs atomic.Int32

	mu sync.Mutex
	// pages maps page indexes to memory-file offsets; the object holds
	// one reference to each. Protected by mu.
	pages map[uint64]uint64
}

func newSharedAnon(mf *memfile.MemoryFile) *sharedAnon {
	s := &sharedAnon{mf: mf, pages: make(map[uint64]uint64)}
	s.refs.Store(1)
	return s
}

func (s *sharedAnon) incRef() { s.refs.Add(1) }

// decRef drops a vma's reference; the last frees the object's pages.
func (s *sharedAnon) decRef() {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, off := range s.pages {
		s.mf.DecRef(memfileRange(off))
	}
	s.pages = nil
}

// page returns the object's page at index idx, allocating a zeroed one,
// with an extra reference for the caller's address space.
func (s *sharedAnon) page(idx uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.pages[idx]
	if !ok {
		fr, err := s.mf.Allocate(1)
		if err != nil {
			return 0, err
		}
		off = fr.Start
		s.pages[idx] = off
	}
	s.mf.IncRef(memfileRange(off))
	return off, nil
}

// dropVMAObjectLocked releases v's reference to its shared object.
func dropVMAObject(v *vma) {
	if v.shm != nil {
		v.shm.decRef()
		v.shm = nil
	}
}

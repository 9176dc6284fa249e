package kernel

import (
	"bytes"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// userRangeOK reports whether [addr, addr+n) lies in the user half.
func userRangeOK(addr, n uint64) bool {
	end := addr + n
	return end >= addr && end <= arch.MaxUserAddress
}

// copyLocked moves bytes between buf and user memory at addr, page by
// page, populating absent pages as a fault of access at would. It returns
// the bytes moved and EFAULT at the first inaccessible page.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) copyLocked(addr uint64, buf []byte, at platform.AccessType, out bool) (int, error) {
	if !userRangeOK(addr, uint64(len(buf))) {
		return 0, unix.EFAULT
	}
	done := 0
	for done < len(buf) {
		a := addr + uint64(done)
		pg := arch.PageRoundDown(a)
		p, ok := mm.pages[pg]
		if !ok || mm.permsAtLocked(a)&at != at {
			i := mm.findLocked(a)
			if i < 0 {
				return done, unix.EFAULT
			}
			v := mm.vmas[i]
			if v.perms&at != at {
				return done, unix.EFAULT
			}
			if !ok {
				if err := mm.populateLocked(v, pg, pg+pageSize); err != nil {
					if errors.Is(err, errBeyondEOF) {
						// Linux: the fault is SIGBUS, the
						// copy EFAULT.
						return done, unix.EFAULT
					}
					return done, unix.ENOMEM
				}
				p = mm.pages[pg]
			}
		}
		if out && mm.mf.RefCount(p.off) > 1 {
			// A store to a page shared copy-on-write (after fork, or
			// a private mapping of a file) goes to a private copy, as
			// the program's own store would.
			if i := mm.findLocked(a); i >= 0 && !mm.vmas[i].shared {
				if err := mm.breakCOWLocked(pg, p); err != nil {
					return done, unix.ENOMEM
				}
				p = mm.pages[pg]
				if err := mm.mapPagesLocked(mm.vmas[i], pg, pg+pageSize); err != nil {
					return done, err
				}
			}
		}
		if p.prefault {
			p.prefault = false
			mm.pages[pg] = p
		}
		inPage := a - pg
		n := min(uint64(len(buf)-done), pageSize-inPage)
		mem := mm.mf.Bytes(memfile.FileRange{Start: p.off, End: p.off + pageSize})
		if out {
			copy(mem[inPage:inPage+n], buf[done:])
		} else {
			copy(buf[done:], mem[inPage:inPage+n])
		}
		done += int(n)
	}
	return done, nil
}

// permsAtLocked returns the permissions of the vma containing a.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) permsAtLocked(a uint64) platform.AccessType {
	if i := mm.findLocked(a); i >= 0 {
		return mm.vmas[i].perms
	}
	return platform.NoAccess
}

// CopyIn reads len(buf) bytes of user memory at addr.
func (mm *MemoryManager) CopyIn(addr uint64, buf []byte) (int, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.copyLocked(addr, buf, platform.Read, false)
}

// CopyOut writes buf to user memory at addr.
func (mm *MemoryManager) CopyOut(addr uint64, buf []byte) (int, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.copyLocked(addr, buf, platform.Write, true)
}

// CopyIn reads user memory of the task's address space; a short read is
// EFAULT.
func (t *Task) CopyIn(addr uint64, buf []byte) error {
	_, err := t.mm.CopyIn(addr, buf)
	return err
}

// CopyOut writes user memory of the task's address space.
func (t *Task) CopyOut(addr uint64, buf []byte) error {
	_, err := t.mm.CopyOut(addr, buf)
	return err
}

// CopyInString reads a NUL-terminated string of at most max bytes
// (without the NUL); a longer one is ENAMETOOLONG.
func (t *Task) CopyInString(addr uint64, max int) (string, error) {
	var out []byte
	var chunk [256]byte
	for len(out) <= max {
		// Do not cross into the next page before it is needed: a string
		// ending just before an unmapped page is valid.
		n := min(uint64(len(chunk)), pageSize-(addr%pageSize))
		got, err := t.mm.CopyIn(addr, chunk[:n])
		if i := bytes.IndexByte(chunk[:got], 0); i >= 0 {
			out = append(out, chunk[:i]...)
			if len(out) > max {
				break
			}
			return string(out), nil
		}
		if err != nil {
			return "", err
		}
		out = append(out, chunk[:got]...)
		addr += uint64(got)
	}
	return "", unix.ENAMETOOLONG
}

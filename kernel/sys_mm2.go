package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

func init() {
	register(unix.SYS_MREMAP, "mremap", sysMremap, argHex, argInt, argInt, argHex, argHex)
	register(unix.SYS_MADVISE, "madvise", sysMadvise, argHex, argInt, argInt)
	register(unix.SYS_MINCORE, "mincore", sysMincore, argHex, argInt, argHex)
	register(unix.SYS_MSYNC, "msync", sysMsync, argHex, argInt, argHex)
	register(unix.SYS_MLOCK, "mlock", sysMlock, argHex, argInt)
	register(unix.SYS_MUNLOCK, "munlock", sysMlock, argHex, argInt)
}

// sysMadvise implements madvise(2). MADV_DONTNEED and MADV_FREE drop the
// pages of private anonymous memory, which reads back as zeros.
func sysMadvise(t *Task, a *syscallArgs) (uint64, error) {
	addr, length, advice := a.u(0), a.u(1), a.int(2)
	if addr%pageSize != 0 {
		return 0, unix.EINVAL
	}
	length, ok := arch.PageRoundUp(length)
	if !ok || addr+length < addr {
		return 0, unix.EINVAL
	}
	switch advice {
	case unix.MADV_NORMAL, unix.MADV_RANDOM, unix.MADV_SEQUENTIAL, unix.MADV_WILLNEED,
		unix.MADV_DONTFORK, unix.MADV_DOFORK, unix.MADV_MERGEABLE, unix.MADV_UNMERGEABLE,
		unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE, unix.MADV_DONTDUMP, unix.MADV_DODUMP,
		unix.MADV_COLD, unix.MADV_PAGEOUT, unix.MADV_WIPEONFORK, unix.MADV_KEEPONFORK:
	case unix.MADV_DONTNEED, unix.MADV_FREE:
	case unix.MADV_REMOVE, unix.MADV_HWPOISON:
		return 0, unix.EINVAL
	default:
		return 0, unix.EINVAL
	}
	if length == 0 {
		return 0, nil
	}
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	// Linux: ENOMEM when part of the range is unmapped (after doing the
	// mapped parts).
	var err error
	for a := addr; a < addr+length; {
		i := mm.findLocked(a)
		if i < 0 {
			err = unix.ENOMEM
			next := mm.nextVMAStartLocked(a)
			if next == 0 || next >= addr+length {
				break
			}
			a = next
			continue
		}
		v := mm.vmas[i]
		end := min(v.end, addr+length)
		switch advice {
		case unix.MADV_DONTNEED, unix.MADV_FREE:
			if !v.shared {
				mm.freePagesLocked(a, end)
				mm.as.Unmap(a, end-a)
			}
		case unix.MADV_DONTFORK, unix.MADV_DOFORK, unix.MADV_WIPEONFORK, unix.MADV_KEEPONFORK:
			if (advice == unix.MADV_WIPEONFORK) && v.shared {
				return 0, unix.EINVAL
			}
			mm.splitLocked(a)
			mm.splitLocked(end)
			v = mm.vmas[mm.findLocked(a)]
			switch advice {
			case unix.MADV_DONTFORK:
				v.dontFork = true
			case unix.MADV_DOFORK:
				v.dontFork = false
			case unix.MADV_WIPEONFORK:
				v.wipeOnFork = true
			case unix.MADV_KEEPONFORK:
				v.wipeOnFork = false
			}
		}
		a = end
	}
	return 0, err
}

// nextVMAStartLocked returns the start of the first vma above a, or 0.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) nextVMAStartLocked(a uint64) uint64 {
	for _, v := range mm.vmas {
		if v.start > a {
			return v.start
		}
	}
	return 0
}

// sysMincore reports every page of a mapped range as resident: ringbox
// never pages out.
func sysMincore(t *Task, a *syscallArgs) (uint64, error) {
	addr, length := a.u(0), a.u(1)
	if addr%pageSize != 0 {
		return 0, unix.EINVAL
	}
	length, ok := arch.PageRoundUp(length)
	if !ok || addr+length < addr || addr+length > arch.MaxUserAddress {
		return 0, unix.ENOMEM
	}
	n := length / pageSize
	vec := make([]byte, n)
	mm := t.mm
	mm.mu.Lock()
	for i := uint64(0); i < n; i++ {
		pa := addr + i*pageSize
		if mm.findLocked(pa) < 0 {
			mm.mu.Unlock()
			return 0, unix.ENOMEM
		}
		if p, ok := mm.pages[pa]; ok && !p.prefault {
			vec[i] = 1
		}
	}
	mm.mu.Unlock()
	return 0, t.CopyOut(a.u(2), vec)
}

// sysMsync validates its arguments; anonymous memory has nothing to write
// back.
func sysMsync(t *Task, a *syscallArgs) (uint64, error) {
	addr, length, flags := a.u(0), a.u(1), a.int(2)
	if addr%pageSize != 0 || flags&^(unix.MS_ASYNC|unix.MS_INVALIDATE|unix.MS_SYNC) != 0 ||
		flags&(unix.MS_ASYNC|unix.MS_SYNC) == unix.MS_ASYNC|unix.MS_SYNC {
		return 0, unix.EINVAL
	}
	length, ok := arch.PageRoundUp(length)
	if !ok || addr+length < addr {
		return 0, unix.ENOMEM
	}
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	for a := addr; a < addr+length; {
		i := mm.findLocked(a)
		if i < 0 {
			return 0, unix.ENOMEM
		}
		a = mm.vmas[i].end
	}
	return 0, nil
}

// sysMlock accepts: ringbox never pages out.
func sysMlock(t *Task, a *syscallArgs) (uint64, error) {
	addr, length := a.u(0), a.u(1)
	end, ok := arch.PageRoundUp(addr + length)
	if !ok || addr+length < addr {
		return 0, unix.EINVAL
	}
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	for a := arch.PageRoundDown(addr); a < end; {
		i := mm.findLocked(a)
		if i < 0 {
			return 0, unix.ENOMEM
		}
		a = mm.vmas[i].end
	}
	return 0, nil
}

// mremap flags.
const (
	mremapMaymove   = 1
	mremapFixed     = 2
	mremapDontunmap = 4
)

// sysMremap implements mremap(2) for anonymous memory: shrink in place,
// grow in place when the space after is free, else move (MREMAP_MAYMOVE)
// by handing the pages over to a new range (Linux: mm/mremap.c).
func sysMremap(t *Task, a *syscallArgs) (uint64, error) {
	old, oldLen, newLen, flags, newAddr := a.u(0), a.u(1), a.u(2), a.u(3), a.u(4)
	if flags&^(mremapMaymove|mremapFixed|mremapDontunmap) != 0 || old%pageSize != 0 {
		return 0, unix.EINVAL
	}
	if flags&mremapFixed != 0 && flags&mremapMaymove == 0 {
		return 0, unix.EINVAL
	}
	if flags&mremapDontunmap != 0 {
		// TODO(ringbox): MREMAP_DONTUNMAP.
		return 0, unix.EINVAL
	}
	oldLen, ok1 := arch.PageRoundUp(oldLen)
	newLen, ok2 := arch.PageRoundUp(newLen)
	if !ok1 || !ok2 || newLen == 0 || newLen > arch.MaxUserAddress {
		return 0, unix.EINVAL
	}
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	i := mm.findLocked(old)
	if i < 0 {
		return 0, unix.EFAULT
	}
	v := mm.vmas[i]
	if oldLen == 0 {
		// Duplicating a shared mapping is the only use of old_len 0.
		if !v.shared {
			return 0, unix.EINVAL
		}
		// TODO(ringbox): old_len 0 duplicates a shared mapping.
		return 0, unix.EINVAL
	}
	if old+oldLen > v.end {
		return 0, unix.EFAULT
	}
	if flags&mremapFixed != 0 {
		if newAddr%pageSize != 0 || newAddr+newLen < newAddr || newAddr+newLen > arch.MaxUserAddress {
			return 0, unix.EINVAL
		}
		if newAddr < old+oldLen && old < newAddr+newLen {
			return 0, unix.EINVAL
		}
		mm.removeLocked(newAddr, newAddr+newLen)
		return mm.moveLocked(v, old, oldLen, newAddr, newLen)
	}
	if newLen <= oldLen {
		if newLen < oldLen {
			mm.removeLocked(old+newLen, old+oldLen)
		}
		return old, nil
	}
	// Grow in place if the vma ends here and the space after is free.
	if old+oldLen == v.end && !mm.overlapsLocked(v.end, old+newLen) && old+newLen <= arch.MaxUserAddress {
		if lim := t.tg.limits.Get(unix.RLIMIT_AS).Cur; lim != rlimInfinity && mm.mapped+newLen-oldLen > lim {
			return 0, unix.ENOMEM
		}
		mm.mapped += old + newLen - v.end
		v.end = old + newLen
		return old, nil
	}
	if flags&mremapMaymove == 0 {
		return 0, unix.ENOMEM
	}
	dst, found := mm.findFreeLocked(newLen)
	if !found {
		return 0, unix.ENOMEM
	}
	return mm.moveLocked(v, old, oldLen, dst, newLen)
}

// moveLocked moves [old, old+oldLen) of v to [dst, dst+newLen), keeping
// the pages.
//
// Preconditions: mm.mu is held; the destination is free.
func (mm *MemoryManager) moveLocked(v *vma, old, oldLen, dst, newLen uint64) (uint64, error) {
	nv := &vma{start: dst, end: dst + newLen, perms: v.perms, maxPerms: v.maxPerms, shared: v.shared, name: v.name}
	if v.shm != nil {
		v.shm.incRef()
		nv.shm, nv.shmOff = v.shm, v.shmOff+(old-v.start)
	}
	moved := make(map[uint64]page)
	for a := old; a < old+min(oldLen, newLen); a += pageSize {
		if p, ok := mm.pages[a]; ok {
			moved[dst+(a-old)] = p
			delete(mm.pages, a)
		}
	}
	mm.removeLocked(old, old+oldLen)
	mm.insertLocked(nv)
	for a, p := range moved {
		mm.pages[a] = p
	}
	if nv.perms != platform.NoAccess {
		if err := mm.mapPagesLocked(nv, nv.start, nv.end); err != nil {
			return 0, err
		}
	}
	return dst, nil
}

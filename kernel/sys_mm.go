package kernel

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

func init() {
	register(unix.SYS_BRK, "brk", sysBrk, argHex)
	register(unix.SYS_MMAP, "mmap", sysMmap, argHex, argInt, argHex, argHex, argFD, argHex)
	register(unix.SYS_MUNMAP, "munmap", sysMunmap, argHex, argInt)
	register(unix.SYS_MPROTECT, "mprotect", sysMprotect, argHex, argInt, argHex)
}

// protToAccess converts PROT_* bits. Linux on x86-64 makes PROT_READ
// imply nothing more, but PROT_WRITE and PROT_EXEC both imply read
// (the page tables cannot express write-only or exec-only).
func protToAccess(prot uint64) platform.AccessType {
	var at platform.AccessType
	if prot&unix.PROT_READ != 0 {
		at |= platform.Read
	}
	if prot&unix.PROT_WRITE != 0 {
		at |= platform.Read | platform.Write
	}
	if prot&unix.PROT_EXEC != 0 {
		at |= platform.Read | platform.Execute
	}
	return at
}

const validProt = unix.PROT_READ | unix.PROT_WRITE | unix.PROT_EXEC | unix.PROT_GROWSDOWN | unix.PROT_GROWSUP

// sysMmap implements mmap(2) of anonymous memory and of the files that
// can be mapped (mmapFile).
func sysMmap(t *Task, a *syscallArgs) (uint64, error) {
	addr, length, prot, flags, fd, off := a.u(0), a.u(1), a.u(2), a.u(3), a.int(4), a.u(5)
	if off%pageSize != 0 {
		return 0, unix.EINVAL
	}
	if length == 0 {
		return 0, unix.EINVAL
	}
	length, ok := arch.PageRoundUp(length)
	if !ok || length > arch.MaxUserAddress {
		return 0, unix.ENOMEM
	}
	shared := false
	switch flags & unix.MAP_TYPE {
	case unix.MAP_PRIVATE:
	case unix.MAP_SHARED, unix.MAP_SHARED_VALIDATE:
		shared = true
	default:
		return 0, unix.EINVAL
	}
	if prot&^validProt != 0 {
		return 0, unix.EINVAL
	}
	// obj is the mapped file's object, whose reference passes to the
	// vma once it is inserted.
	var obj memObject
	maxPerms := platform.AnyAccess
	if flags&unix.MAP_ANONYMOUS == 0 {
		var err error
		if obj, maxPerms, _, err = t.mmapFile(fd, prot, off, length, shared); err != nil {
			return 0, err
		}
		defer func() {
			if obj != nil {
				obj.decRef()
			}
		}()
	}
	fixed := flags&(unix.MAP_FIXED|unix.MAP_FIXED_NOREPLACE) != 0
	if fixed && addr%pageSize != 0 {
		return 0, unix.EINVAL
	}
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()

	if lim := t.tg.limits.Get(unix.RLIMIT_AS).Cur; lim != rlimInfinity && mm.mapped+length > lim {
		return 0, unix.ENOMEM
	}
	var start uint64
	switch {
	case fixed:
		start = addr
		end := start + length
		if end < start || end > arch.MaxUserAddress {
			return 0, unix.ENOMEM
		}
		if start < mmapMinAddr {
			return 0, unix.EPERM
		}
		if mm.reservedOverlap(start, end) {
			// The platform's range is not the program's to map.
			return 0, unix.ENOMEM
		}
		if flags&unix.MAP_FIXED_NOREPLACE != 0 && flags&unix.MAP_FIXED == 0 {
			if mm.overlapsLocked(start, end) {
				return 0, unix.EEXIST
			}
		}
		mm.removeLocked(start, end)
	default:
		hint := arch.PageRoundDown(addr)
		if hint >= mmapMinAddr && hint+length > hint && hint+length <= arch.MaxUserAddress && !mm.overlapsLocked(hint, hint+length) {
			start = hint
		} else {
			var found bool
			if start, found = mm.findFreeLocked(length); !found {
				return 0, unix.ENOMEM
			}
		}
	}
	v := &vma{start: start, end: start + length, perms: protToAccess(prot), maxPerms: maxPerms, shared: shared}
	switch {
	case obj != nil:
		v.shm, v.shmOff = obj, off
		obj = nil
	case shared:
		v.shm = newSharedAnon(mm.mf)
	}
	mm.insertLocked(v)
	if flags&unix.MAP_POPULATE != 0 && v.perms != platform.NoAccess {
		// Populating stops quietly at the end of a file.
		if err := mm.populateLocked(v, v.start, v.end); err != nil && !errors.Is(err, errBeyondEOF) {
			mm.removeLocked(v.start, v.end)
			return 0, unix.ENOMEM
		}
	}
	return start, nil
}

// sysMunmap implements munmap(2).
func sysMunmap(t *Task, a *syscallArgs) (uint64, error) {
	addr, length := a.u(0), a.u(1)
	if addr%pageSize != 0 || length == 0 {
		return 0, unix.EINVAL
	}
	length, ok := arch.PageRoundUp(length)
	if !ok || addr+length < addr || addr+length > arch.MaxUserAddress {
		return 0, unix.EINVAL
	}
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.reservedOverlap(addr, addr+length) {
		return 0, unix.EINVAL
	}
	mm.removeLocked(addr, addr+length)
	return 0, nil
}

// sysMprotect implements mprotect(2).
func sysMprotect(t *Task, a *syscallArgs) (uint64, error) {
	addr, length, prot := a.u(0), a.u(1), a.u(2)
	if addr%pageSize != 0 {
		return 0, unix.EINVAL
	}
	if prot&^validProt != 0 || prot&(unix.PROT_GROWSDOWN|unix.PROT_GROWSUP) == unix.PROT_GROWSDOWN|unix.PROT_GROWSUP {
		return 0, unix.EINVAL
	}
	length, ok := arch.PageRoundUp(length)
	if !ok || addr+length < addr {
		return 0, unix.ENOMEM
	}
	if length == 0 {
		return 0, nil
	}
	end := addr + length
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	// The whole range must be mapped (Linux: ENOMEM otherwise), with
	// what mmap allowed (EACCES: a shared mapping of a file not open for
	// writing, or write-sealed, cannot become writable).
	at := protToAccess(prot)
	for a := addr; a < end; {
		i := mm.findLocked(a)
		if i < 0 {
			return 0, unix.ENOMEM
		}
		if at&^mm.vmas[i].maxPerms != 0 {
			return 0, unix.EACCES
		}
		a = mm.vmas[i].end
	}
	mm.splitLocked(addr)
	mm.splitLocked(end)
	for i := mm.findLocked(addr); i >= 0 && i < len(mm.vmas) && mm.vmas[i].start < end; i++ {
		v := mm.vmas[i]
		if v.perms == at {
			continue
		}
		v.perms = at
		if err := mm.mapPagesLocked(v, v.start, v.end); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// sysBrk implements brk(2): it returns the new break, or the old one when
// the request cannot be met.
func sysBrk(t *Task, a *syscallArgs) (uint64, error) {
	want := a.u(0)
	mm := t.mm
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if want < mm.brkStart || want > arch.MaxUserAddress {
		return mm.brk, nil
	}
	oldEnd, _ := arch.PageRoundUp(mm.brk)
	newEnd, _ := arch.PageRoundUp(want)
	switch {
	case newEnd > oldEnd:
		if mm.overlapsLocked(oldEnd, newEnd) {
			return mm.brk, nil
		}
		if lim := t.tg.limits.Get(unix.RLIMIT_DATA).Cur; lim != rlimInfinity && newEnd-mm.brkStart > lim {
			return mm.brk, nil
		}
		if lim := t.tg.limits.Get(unix.RLIMIT_AS).Cur; lim != rlimInfinity && mm.mapped+newEnd-oldEnd > lim {
			return mm.brk, nil
		}
		// Extend the heap vma if it ends at oldEnd, else add one.
		if i := mm.findLocked(oldEnd - 1); i >= 0 && mm.vmas[i].name == "[heap]" && mm.vmas[i].end == oldEnd {
			mm.vmas[i].end = newEnd
			mm.mapped += newEnd - oldEnd
		} else {
			mm.insertLocked(&vma{start: oldEnd, end: newEnd, perms: platform.ReadWrite, maxPerms: platform.AnyAccess, name: "[heap]"})
		}
	case newEnd < oldEnd:
		mm.removeLocked(newEnd, oldEnd)
	}
	mm.brk = want
	return want, nil
}

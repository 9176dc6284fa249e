package ptrace

import (
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// addressSpace is one stub process. It implements platform.AddressSpace.
//
// Mapping changes are system calls injected into a stopped thread of the
// stub: the caller's own stub thread when the caller is a task whose
// context lives in this address space (it is stopped, since its task is
// not in Switch), else the leader, through the control goroutine.
type addressSpace struct {
	p   *Platform
	pid tid // the stub's leader; set before the control goroutine reports

	reqs chan controlRequest
	quit chan struct{} // closed by Release
	done chan struct{} // closed when the stub is reaped

	mu sync.Mutex
	// threads are the live stub threads of contexts. Protected by mu.
	threads map[*stubThread]struct{}
	// byTracer finds a stopped stub thread traced by the calling OS
	// thread. Protected by mu.
	byTracer map[tid]*stubThread
	// tids are the clone children not yet reaped, traced or not.
	// Protected by mu.
	tids map[tid]tid
	// released is set by Release. Protected by mu.
	released bool
}

var _ platform.AddressSpace = (*addressSpace)(nil)

func newAddressSpace(p *Platform) (*addressSpace, error) {
	a := &addressSpace{
		p:        p,
		reqs:     make(chan controlRequest),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		threads:  map[*stubThread]struct{}{},
		byTracer: map[tid]*stubThread{},
		tids:     map[tid]tid{},
	}
	started := make(chan error)
	go a.control(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return a, nil
}

// accessProt converts an access type to mmap protections.
func accessProt(at platform.AccessType) uint64 {
	var prot uint64
	if at&platform.Read != 0 {
		prot |= unix.PROT_READ
	}
	if at&platform.Write != 0 {
		prot |= unix.PROT_WRITE
	}
	if at&platform.Execute != 0 {
		prot |= unix.PROT_EXEC
	}
	return prot
}

// checkRange validates a user range for MapFile and Unmap.
func checkRange(addr, length uint64) error {
	end := addr + length
	switch {
	case length == 0:
		return fmt.Errorf("empty range at %#x", addr)
	case addr%arch.PageSize != 0 || length%arch.PageSize != 0:
		return fmt.Errorf("range [%#x, +%#x) not page aligned", addr, length)
	case end < addr || end > arch.MaxUserAddress:
		return fmt.Errorf("range [%#x, +%#x) outside user addresses", addr, length)
	}
	return nil
}

// overlapsStub reports whether [addr, addr+length) touches the stub.
func overlapsStub(addr, length uint64) bool {
	return addr < stubEnd && addr+length > stubStart
}

// MapFile implements platform.AddressSpace.MapFile with an injected
// mmap(MAP_SHARED|MAP_FIXED) of the memory file, which replaces whatever
// was mapped there (a protection change is a MapFile of the same range).
func (a *addressSpace) MapFile(addr uint64, fr memfile.FileRange, at platform.AccessType) error {
	length := fr.Length()
	if err := checkRange(addr, length); err != nil {
		return fmt.Errorf("ptrace: MapFile: %w", err)
	}
	if overlapsStub(addr, length) {
		return fmt.Errorf("ptrace: MapFile [%#x, +%#x) overlaps the stub's reserved range", addr, length)
	}
	if fr.Start%arch.PageSize != 0 || fr.End > a.p.mf.Size() || fr.End < fr.Start {
		return fmt.Errorf("ptrace: MapFile of %v outside the memory file", fr)
	}
	_, err := a.syscall(unix.SYS_MMAP, addr, length, accessProt(at), unix.MAP_SHARED|unix.MAP_FIXED, stubFD, fr.Start)
	if errors.Is(err, unix.ENOMEM) {
		// Each mapping of a discontiguous file range is a host VMA.
		return fmt.Errorf("ptrace: mmap %v at %#x in stub %d: %w (the host's vm.max_map_count bounds a stub's mappings)",
			fr, addr, a.pid, err)
	}
	if err != nil {
		return fmt.Errorf("ptrace: mmap %v at %#x (%v) in stub %d: %w", fr, addr, at, a.pid, err)
	}
	return nil
}

// Unmap implements platform.AddressSpace.Unmap with an injected munmap.
// The host's munmap flushes every CPU's TLB before it returns, so no stub
// thread can reach the old pages afterwards. The stub's own pages are
// never unmapped, whatever the range.
func (a *addressSpace) Unmap(addr, length uint64) {
	if err := checkRange(addr, length); err != nil {
		a.p.log.Error("Unmap", zap.Error(err))
		return
	}
	var ranges [][2]uint64
	end := addr + length
	if addr < stubStart {
		ranges = append(ranges, [2]uint64{addr, min(end, stubStart)})
	}
	if end > stubEnd {
		ranges = append(ranges, [2]uint64{max(addr, stubEnd), end})
	}
	for _, r := range ranges {
		if _, err := a.syscall(unix.SYS_MUNMAP, r[0], r[1]-r[0]); err != nil {
			a.p.log.Error("munmap in stub", zap.Int("pid", int(a.pid)), zap.Uint64("addr", r[0]),
				zap.Uint64("length", r[1]-r[0]), zap.Error(err))
		}
	}
}

// syscall injects a system call into a stopped thread of the stub.
func (a *addressSpace) syscall(nr uintptr, args ...uint64) (uint64, error) {
	self := tid(unix.Gettid())
	a.mu.Lock()
	t := a.byTracer[self]
	if t != nil && (t.reaped || t.dr7 != 0) {
		t = nil
	}
	a.mu.Unlock()
	if t != nil {
		// The caller's own stub thread: it is stopped, because the
		// goroutine locked to its tracer is here and not in Switch.
		return injectResult(t.inject(stubInjectSyscall, nr, args...))
	}
	var r uint64
	err := a.call(func(l *tracee) error {
		var err error
		r, err = injectResult(l.inject(stubInjectSyscall, nr, args...))
		return err
	})
	return r, err
}

// Release implements platform.AddressSpace.Release: the stub is killed and
// every one of its threads reaped before it returns.
func (a *addressSpace) Release() {
	a.mu.Lock()
	if a.released {
		a.mu.Unlock()
		return
	}
	a.released = true
	a.mu.Unlock()
	close(a.quit)
	<-a.done
	a.p.forget(a)
}

// newThread clones a stub thread for a context and returns its tid. The
// caller seizes it.
func (a *addressSpace) newThread() (tid, error) {
	var child tid
	err := a.call(func(l *tracee) error {
		t, err := a.cloneThread(l)
		if err != nil {
			return err
		}
		child = t
		a.mu.Lock()
		a.tids[t] = t
		a.mu.Unlock()
		return nil
	})
	return child, err
}

// addThread records a seized stub thread.
func (a *addressSpace) addThread(t *stubThread) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return errReleased
	}
	a.threads[t] = struct{}{}
	a.byTracer[t.tracer] = t
	return nil
}

// removeThread forgets a stub thread that exited and was reaped.
func (a *addressSpace) removeThread(t *stubThread) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t.reaped = true
	delete(a.threads, t)
	delete(a.tids, t.tid)
	if a.byTracer[t.tracer] == t {
		delete(a.byTracer, t.tracer)
		// Another context driven from the same OS thread may still
		// have a stopped thread here.
		for o := range a.threads {
			if o.tracer == t.tracer {
				a.byTracer[o.tracer] = o
				break
			}
		}
	}
}

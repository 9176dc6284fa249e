package ptrace

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// Options configure the platform.
type Options struct {
	// CPUs is the number of virtual CPUs tasks share; 0 means the number
	// of host CPUs.
	CPUs int
	// Logger receives the platform's diagnostics; nil discards them.
	Logger *zap.Logger
}

// Platform is the ptrace platform. It implements platform.Platform.
type Platform struct {
	mf  *memfile.MemoryFile
	log *zap.Logger

	// stubFD is a sealed memfd holding the stub executable; every address
	// space execs it.
	stubFD int
	// fpSize and fpNote describe the FP regset exchanged with stub threads.
	fpSize int
	fpNote int

	// pool hands out vCPU indices; a Context holds one inside Switch.
	pool  *cpuPool
	stats []cpuStats

	mu sync.Mutex
	// spaces are the live address spaces. Protected by mu.
	spaces map[*addressSpace]struct{}
	// closed is set by Close. Protected by mu.
	closed bool
}

var _ platform.Platform = (*Platform)(nil)

// cpuStats are the counters of one vCPU, updated by the Context holding it
// and read by Stats at any time.
type cpuStats struct {
	exits      [platform.NumExitReasons]atomic.Uint64
	ioctls     atomic.Uint64
	guestNanos atomic.Uint64
}

// New returns a ptrace platform whose address spaces map pages of mf. It
// builds the stub executable; stub processes start with each address
// space. It adds SA_NOCLDSTOP to the process's SIGCHLD action (see
// quietTraceeStops), so that stub stops do not signal ringbox.
//
// Every goroutine that calls a Context's Switch, PullFPState or Release
// must be locked to its OS thread (runtime.LockOSThread) for as long as
// the context lives: that thread traces the context's stub threads, and a
// thread that exits while tracing one kills the whole stub
// (PTRACE_O_EXITKILL).
func New(mf *memfile.MemoryFile, opts Options) (*Platform, error) {
	if mf == nil {
		return nil, fmt.Errorf("ptrace: nil memory file")
	}
	n := opts.CPUs
	if n <= 0 {
		n = runtime.NumCPU()
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if err := quietTraceeStops(); err != nil {
		log.Warn("SIGCHLD stays loud: every Switch pays for a signal", zap.Error(err))
	}
	fd, err := newStubFile()
	if err != nil {
		return nil, err
	}
	p := &Platform{
		mf:     mf,
		log:    log,
		stubFD: fd,
		fpSize: hostXSAVESize(),
		fpNote: unix.NT_X86_XSTATE,
		pool:   newCPUPool(n),
		stats:  make([]cpuStats, n),
		spaces: map[*addressSpace]struct{}{},
	}
	if p.fpSize == arch.MinFPStateSize {
		// No XSAVE: only the legacy FXSAVE area exists (user_fpregs_struct).
		p.fpNote = unix.NT_PRFPREG
	}
	return p, nil
}

// newStubFile writes the stub executable to a sealed memfd.
func newStubFile() (int, error) {
	img, err := buildStubELF()
	if err != nil {
		return -1, err
	}
	fd, err := unix.MemfdCreate("ringbox-stub", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create for the stub: %w", err)
	}
	for b := img; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write stub executable: %w", err)
		}
		b = b[n:]
	}
	// Nobody, ringbox included, changes the executable once written.
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal stub executable: %w", err)
	}
	return fd, nil
}

// Name implements platform.Platform.Name.
func (p *Platform) Name() string { return "ptrace" }

// NumCPUs implements platform.Platform.NumCPUs.
func (p *Platform) NumCPUs() int { return len(p.stats) }

// FPStateSize implements platform.Platform.FPStateSize.
func (p *Platform) FPStateSize() int { return p.fpSize }

// ReservedRanges implements platform.Platform.ReservedRanges: the stub's
// code and data pages, in every address space.
func (p *Platform) ReservedRanges() []platform.AddrRange {
	return []platform.AddrRange{{Start: stubStart, End: stubEnd}}
}

// Stats implements platform.Platform.Stats. Requests the kernel's address
// space operations make outside Switch (injected mmap and munmap) belong
// to no vCPU and are not counted.
func (p *Platform) Stats() []platform.CPUStats {
	out := make([]platform.CPUStats, len(p.stats))
	for i := range p.stats {
		s := &p.stats[i]
		out[i].CPU = i
		for r := range s.exits {
			out[i].Exits[r] = s.exits[r].Load()
		}
		out[i].Ioctls = s.ioctls.Load()
		out[i].GuestNanos = s.guestNanos.Load()
	}
	return out
}

// Close implements platform.Platform.Close. Address spaces still alive
// are released (their stubs killed and reaped) so that no stub outlives
// the platform.
func (p *Platform) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var left []*addressSpace
	for as := range p.spaces {
		left = append(left, as)
	}
	p.mu.Unlock()
	for _, as := range left {
		p.log.Warn("address space not released before Close", zap.Int("stub_pid", int(as.pid)))
		as.Release()
	}
	if err := unix.Close(p.stubFD); err != nil {
		return fmt.Errorf("close stub executable: %w", err)
	}
	return nil
}

// NewAddressSpace implements platform.Platform.NewAddressSpace: it starts
// a stub process.
func (p *Platform) NewAddressSpace() (platform.AddressSpace, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("ptrace: platform closed")
	}
	as, err := newAddressSpace(p)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.spaces[as] = struct{}{}
	p.mu.Unlock()
	return as, nil
}

// NewContext implements platform.Platform.NewContext. The context gets its
// stub thread when it first runs in an address space.
func (p *Platform) NewContext() (platform.Context, error) {
	return &context{
		p:          p,
		kickWaiter: make(chan struct{}, 1),
		grant:      make(chan int, 1),
		lastCPU:    -1,
	}, nil
}

// forget drops a released address space.
func (p *Platform) forget(as *addressSpace) {
	p.mu.Lock()
	delete(p.spaces, as)
	p.mu.Unlock()
}

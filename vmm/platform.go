package vmm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/bobuhiro11/gokvm/kvm"
	"go.uber.org/zap"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/guest"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// Options configure New.
type Options struct {
	// CPUs is the number of vCPUs; 0 means runtime.NumCPU().
	CPUs int
	// Logger receives setup details; nil discards them.
	Logger *zap.Logger
}

// ErrMissingCapability is wrapped by New's error when the host's KVM lacks
// something ringbox needs.
var ErrMissingCapability = errors.New("KVM lacks a required capability")

// ErrUnsupportedKVM is wrapped by New's error when /dev/kvm is served by a
// KVM backend that cannot run ringbox's guest: PVM (module kvm_pvm), which
// runs only PVM-enlightened guest kernels and leaves a plain guest's
// syscall in user mode (CS keeps the user selector at the LSTAR entry).
var ErrUnsupportedKVM = errors.New("unsupported KVM implementation")

// pvmModule is present in sysfs when /dev/kvm is PVM's.
const pvmModule = "/sys/module/kvm_pvm"

// Platform is the KVM platform: one VM whose guest physical memory is the
// memory file, with a vCPU per context and NumCPUs logical CPUs that bound
// how many run at once.
type Platform struct {
	mf  *memfile.MemoryFile
	log *zap.Logger
	sys *system
	vm  *vmHandle

	// kernelPT is the template hierarchy that holds the ring-0 region;
	// upperPML4E is its PML4 entry 511, shared by every address space.
	kernelPT   *pageTables
	upperPML4E uint64
	// ring0 are the memory-file pages of the trap code and the IDT.
	ring0 []memfile.FileRange

	xcr0 uint64

	// cpuid and runSize are what newVCPU needs after New.
	cpuid   []kvm.CPUIDEntry2
	runSize int
	// maxVCPUs bounds the vCPUs: KVM's limit, and MaxCPUs.
	maxVCPUs int
	// vcpus are all the vCPUs created, indexed by id; replaced (under
	// mu) when one is added, read without a lock by shootdowns.
	vcpus atomic.Pointer[[]*vcpu]

	// mu protects the logical CPUs (cpu.held, cpu.last), the idle
	// vCPUs, their lastTID, and the ring-0 page tables after New
	// (newVCPU maps a block). cond is signalled when a CPU is released,
	// a waiting context is interrupted or a context's CPU mask changes.
	mu   sync.Mutex
	cond sync.Cond
	cpus []*cpu
	// idle are the vCPUs bound to no context.
	idle []*vcpu
}

var _ platform.Platform = (*Platform)(nil)

// New creates the KVM platform over mf. It fails, wrapping the errno, when
// /dev/kvm is missing (ENOENT) or not permitted (EACCES), and with
// ErrMissingCapability when KVM lacks KVM_CAP_SYNC_REGS (registers, special
// registers and events), KVM_CAP_IMMEDIATE_EXIT or KVM_CAP_XSAVE, and with
// ErrUnsupportedKVM on PVM.
func New(mf *memfile.MemoryFile, opts Options) (_ *Platform, err error) {
	n := opts.CPUs
	if n == 0 {
		n = runtime.NumCPU()
	}
	if n < 0 || n > MaxCPUs {
		return nil, fmt.Errorf("vmm: %d vCPUs, want 1 to %d", n, MaxCPUs)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &Platform{mf: mf, log: log}
	p.cond.L = &p.mu
	defer func() {
		if err != nil {
			p.Close()
			err = fmt.Errorf("vmm: %w", err)
		}
	}()
	if p.sys, err = openSystem(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(pvmModule); err == nil {
		return nil, fmt.Errorf("%w: /dev/kvm is PVM (%s loaded)", ErrUnsupportedKVM, pvmModule)
	}
	if err := p.checkCapabilities(); err != nil {
		return nil, err
	}
	if p.cpuid, err = p.sys.supportedCPUID(); err != nil {
		return nil, err
	}
	if p.xcr0, err = guestXCR0(p.cpuid); err != nil {
		return nil, err
	}
	if p.runSize, err = p.sys.vcpuMMapSize(); err != nil {
		return nil, err
	}
	if p.maxVCPUs, err = p.sys.maxVCPUs(); err != nil {
		return nil, err
	}
	p.maxVCPUs = min(p.maxVCPUs, MaxCPUs)
	if n > p.maxVCPUs {
		return nil, fmt.Errorf("%d vCPUs, KVM allows %d", n, p.maxVCPUs)
	}
	if p.vm, err = p.sys.createVM(); err != nil {
		return nil, err
	}
	// Intel needs the real-mode TSS pages placed even though the guest
	// never leaves long mode; they must not overlap the memslot.
	if tss := mf.Size(); tss+3*pageSize <= 1<<32 {
		if err := p.vm.setTSSAddr(tss); err != nil {
			return nil, err
		}
	}
	if err := p.vm.setMemory(0, 0, mf.Size(), mf.Base()); err != nil {
		return nil, err
	}
	if err := p.buildRing0(); err != nil {
		return nil, err
	}
	// As many vCPUs as logical CPUs to start with: a program with that
	// many threads creates none, and a KVM that cannot run them fails
	// here rather than at the first Switch.
	p.vcpus.Store(&[]*vcpu{})
	for i := 0; i < n; i++ {
		p.cpus = append(p.cpus, &cpu{id: i})
		v, err := p.addVCPULocked()
		if err != nil {
			return nil, err
		}
		p.idle = append(p.idle, v)
	}
	log.Debug("kvm platform ready", zap.Int("vcpus", n), zap.Uint64("memory", mf.Size()),
		zap.String("xcr0", fmt.Sprintf("%#x", p.xcr0)))
	return p, nil
}

// checkCapabilities verifies what the exit path relies on.
func (p *Platform) checkCapabilities() error {
	for _, c := range []struct {
		name string
		cap  uintptr
		want uintptr
	}{
		{"KVM_CAP_USER_MEMORY", capUserMemory, 1},
		{"KVM_CAP_SYNC_REGS (regs, sregs, events)", capSyncRegs, syncRegs | syncSregs | syncEvents},
		{"KVM_CAP_IMMEDIATE_EXIT", capImmediateExit, 1},
		{"KVM_CAP_XSAVE", capXSave, 1},
		{"KVM_CAP_XCRS", capXCRs, 1},
		{"KVM_CAP_DEBUGREGS", capDebugRegs, 1},
	} {
		got, err := p.sys.checkExtension(c.cap)
		if err != nil {
			return err
		}
		if got&c.want != c.want {
			return fmt.Errorf("%w: %s (KVM_CHECK_EXTENSION = %#x)", ErrMissingCapability, c.name, got)
		}
	}
	return nil
}

// XCR0 components ringbox enables for user code when the host has them:
// x87, SSE, AVX and the three AVX-512 components. They all fit struct
// kvm_xsave's 4096 bytes (AVX-512 state ends at 2688). MPX (deprecated),
// PKRU (needs CR4.PKE) and AMX (needs XSAVE2 and a permission request)
// stay off.
const xcr0Wanted = 0x7 | 0xe0

// guestXCR0 returns the XCR0 value from KVM's supported CPUID (leaf 0xd,
// subleaf 0), or 0 when the guest CPUID has no XSAVE (CPUID.1:ECX bit 26):
// then CR4.OSXSAVE stays off and programs see x87 and SSE only, which
// KVM_GET_XSAVE and KVM_SET_XSAVE still carry (KVM_CAP_XSAVE is required
// separately).
func guestXCR0(cpuid []kvm.CPUIDEntry2) (uint64, error) {
	var xsave bool
	var supported uint64
	for _, e := range cpuid {
		if e.Function == 1 && e.Ecx&(1<<26) != 0 {
			xsave = true
		}
		if e.Function == 0xd && e.Index == 0 {
			supported = uint64(e.Eax) | uint64(e.Edx)<<32
		}
	}
	if !xsave {
		return 0, nil
	}
	if supported&0x3 != 0x3 {
		return 0, fmt.Errorf("%w: XSAVE without x87 and SSE state (CPUID leaf 0xd = %#x)", ErrMissingCapability, supported)
	}
	// AVX-512 components are usable only all together (Intel SDM Vol. 1,
	// 13.3); AVX needs SSE.
	x := supported & xcr0Wanted
	if x&0xe0 != 0xe0 || x&0x4 == 0 {
		x &^= 0xe0
	}
	return x, nil
}

// buildRing0 allocates and maps the ring-0 region shared by every address
// space: trap code, IDT and (in newVCPU) the per-vCPU blocks.
func (p *Platform) buildRing0() error {
	var err error
	if p.kernelPT, err = newPageTables(p.mf, 0); err != nil {
		return err
	}
	code, err := p.mf.Allocate(1)
	if err != nil {
		return fmt.Errorf("allocate trap code page: %w", err)
	}
	p.ring0 = append(p.ring0, code)
	copy(p.mf.Bytes(code), guest.Code())
	idt, err := p.mf.Allocate(1)
	if err != nil {
		return fmt.Errorf("allocate IDT page: %w", err)
	}
	p.ring0 = append(p.ring0, idt)
	copy(p.mf.Bytes(idt), guest.IDT(CodeVA))
	if _, err := p.kernelPT.mapRange(CodeVA, code, leafFlags(false, true, false)); err != nil {
		return err
	}
	if _, err := p.kernelPT.mapRange(IDTVA, idt, leafFlags(false, false, false)); err != nil {
		return err
	}
	// Pre-build the page directory for the vCPU blocks now, so that the
	// PML4 entry shared by address spaces never changes afterwards.
	if _, err := p.kernelPT.leafTable(CPUBase, true); err != nil {
		return err
	}
	p.upperPML4E = loadPTE(p.kernelPT.entry(p.kernelPT.root, kernelPML4Index))
	return nil
}

// mapCPUBlock maps vCPU id's block pages: GDT page, RSP0 stack, IST
// stacks, with unmapped guard pages between them. Everything is
// supervisor-only, writable and not executable.
func (p *Platform) mapCPUBlock(id int, block memfile.FileRange) error {
	rw := leafFlags(true, false, false)
	page := func(i uint64) memfile.FileRange {
		return memfile.FileRange{Start: block.Start + i*pageSize, End: block.Start + (i+1)*pageSize}
	}
	base := cpuBlockVA(id)
	if _, err := p.kernelPT.mapRange(base+gdtOffset, page(0), rw); err != nil {
		return err
	}
	if _, err := p.kernelPT.mapRange(base+stackOffset, page(1), rw); err != nil {
		return err
	}
	for i := uint64(0); i < guest.NumIST; i++ {
		if _, err := p.kernelPT.mapRange(base+istOffset+i*istStride, page(2+i), rw); err != nil {
			return err
		}
	}
	return nil
}

// Name implements platform.Platform.Name.
func (p *Platform) Name() string { return "kvm" }

// NumCPUs implements platform.Platform.NumCPUs.
func (p *Platform) NumCPUs() int { return len(p.cpus) }

// FPStateSize implements platform.Platform.FPStateSize: struct kvm_xsave.
func (p *Platform) FPStateSize() int { return xsaveSize }

// ReservedRanges implements platform.Platform.ReservedRanges. The ring-0
// region is in the upper half, out of the program's reach; nothing in the
// lower half is taken.
func (p *Platform) ReservedRanges() []platform.AddrRange { return nil }

// NewAddressSpace implements platform.Platform.NewAddressSpace.
func (p *Platform) NewAddressSpace() (platform.AddressSpace, error) {
	pt, err := newPageTables(p.mf, p.upperPML4E)
	if err != nil {
		return nil, fmt.Errorf("vmm: new address space: %w", err)
	}
	return &addressSpace{p: p, pt: pt}, nil
}

// NewContext implements platform.Platform.NewContext.
func (p *Platform) NewContext() (platform.Context, error) {
	return &context{p: p, fp: arch.NewFPState(xsaveSize)}, nil
}

// Close implements platform.Platform.Close.
func (p *Platform) Close() error {
	var errs []error
	for _, v := range p.allVCPUs() {
		if err := v.close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.vcpus.Store(nil)
	p.idle, p.cpus = nil, nil
	if p.vm != nil {
		if err := p.vm.close(); err != nil {
			errs = append(errs, fmt.Errorf("close VM: %w", err))
		}
		p.vm = nil
	}
	if p.sys != nil {
		if err := p.sys.close(); err != nil {
			errs = append(errs, fmt.Errorf("close /dev/kvm: %w", err))
		}
		p.sys = nil
	}
	// The guest is gone; its tables and pages can go back to the file.
	if p.kernelPT != nil {
		var freed []uint64
		_, freed = p.kernelPT.unmapKernel()
		freeTables(p.mf, append(freed, p.kernelPT.root))
		p.kernelPT = nil
	}
	for _, fr := range p.ring0 {
		p.mf.DecRef(fr)
	}
	p.ring0 = nil
	return errors.Join(errs...)
}

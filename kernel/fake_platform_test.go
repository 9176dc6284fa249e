package kernel

import (
	"sync"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// fakePlatform runs no user code: each context follows a script that
// plays the program, so that the kernel's dispatch, memory manager and run
// loop can be tested without a mechanism.
type fakePlatform struct {
	mu     sync.Mutex
	script func(ctx *fakeContext, st *arch.State) platform.Event
	maps   []fakeMapping
}

type fakeMapping struct {
	addr  uint64
	fr    memfile.FileRange
	at    platform.AccessType
	unmap bool
}

func (p *fakePlatform) Name() string { return "fake" }
func (p *fakePlatform) NewAddressSpace() (platform.AddressSpace, error) {
	return &fakeAS{p: p}, nil
}
func (p *fakePlatform) NewContext() (platform.Context, error) {
	return &fakeContext{p: p}, nil
}
func (p *fakePlatform) ReservedRanges() []platform.AddrRange { return nil }
func (p *fakePlatform) NumCPUs() int                         { return 1 }
func (p *fakePlatform) Stats() []platform.CPUStats           { return make([]platform.CPUStats, 1) }
func (p *fakePlatform) FPStateSize() int                     { return arch.MinFPStateSize }
func (p *fakePlatform) Close() error                         { return nil }

type fakeAS struct{ p *fakePlatform }

func (a *fakeAS) MapFile(addr uint64, fr memfile.FileRange, at platform.AccessType) error {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.maps = append(a.p.maps, fakeMapping{addr: addr, fr: fr, at: at})
	return nil
}
func (a *fakeAS) Unmap(addr, length uint64) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.maps = append(a.p.maps, fakeMapping{addr: addr, fr: memfile.FileRange{End: length}, unmap: true})
}
func (a *fakeAS) Release() {}

type fakeContext struct {
	p    *fakePlatform
	step int
}

func (c *fakeContext) Switch(as platform.AddressSpace, st *arch.State) (platform.Event, error) {
	st.FPDirty = false
	ev := c.p.script(c, st)
	c.step++
	return ev, nil
}
func (c *fakeContext) PullFPState(st *arch.State) error { st.FPValid = true; return nil }
func (c *fakeContext) Interrupt()                       {}
func (c *fakeContext) Release()                         {}

// syscallEvent loads a system call into st as the syscall instruction
// leaves it.
func syscallEvent(st *arch.State, nr uint64, args ...uint64) platform.Event {
	r := &st.Regs
	r.Rax, r.OrigRax = nr, nr
	regs := []*uint64{&r.Rdi, &r.Rsi, &r.Rdx, &r.R10, &r.R8, &r.R9}
	for i, a := range args {
		*regs[i] = a
	}
	return platform.Event{Kind: platform.EventSyscall}
}

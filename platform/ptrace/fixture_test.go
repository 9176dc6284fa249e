package ptrace

import (
	"testing"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// Test addresses, clear of the stub.
const (
	testCode = 0x400000
)

// fixture is a platform with one address space and one context, for the
// tests and benchmarks of this package (the conformance suite has its own).
type fixture struct {
	tb  testing.TB
	mf  *memfile.MemoryFile
	p   *Platform
	as  platform.AddressSpace
	ctx platform.Context
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	mf, err := memfile.New("ptrace-test", 16<<20)
	if err != nil {
		tb.Fatalf("memfile.New: %v", err)
	}
	p, err := New(mf, Options{CPUs: 2})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	as, err := p.NewAddressSpace()
	if err != nil {
		tb.Fatalf("NewAddressSpace: %v", err)
	}
	c, err := p.NewContext()
	if err != nil {
		tb.Fatalf("NewContext: %v", err)
	}
	return &fixture{tb: tb, mf: mf, p: p, as: as, ctx: c}
}

// state maps code at testCode and returns a state that starts there.
func (f *fixture) state(code []byte) *arch.State {
	f.tb.Helper()
	fr, err := f.mf.Allocate(1)
	if err != nil {
		f.tb.Fatalf("Allocate: %v", err)
	}
	copy(f.mf.Bytes(fr), code)
	if err := f.as.MapFile(testCode, fr, platform.Read|platform.Execute); err != nil {
		f.tb.Fatalf("MapFile: %v", err)
	}
	st := &arch.State{Regs: arch.Registers{Rip: testCode, Cs: arch.UserCS, Ss: arch.UserDS, Eflags: arch.FlagReserved | arch.FlagIF}}
	st.SetFP(arch.NewFPState(f.p.FPStateSize()))
	return st
}

// close releases everything, on the calling (locked) thread.
func (f *fixture) close() {
	f.ctx.Release()
	f.as.Release()
	if err := f.p.Close(); err != nil {
		f.tb.Errorf("Close: %v", err)
	}
	if err := f.mf.Close(); err != nil {
		f.tb.Errorf("memfile Close: %v", err)
	}
}

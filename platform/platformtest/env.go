package platformtest

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// Fixed user addresses of the test programs, chosen clear of anything a
// platform reserves (checked by newEnv).
const (
	codeAddr  = 0x400000
	dataAddr  = 0x600000
	stackAddr = 0x700000
	// unmappedAddr is never mapped by any test.
	unmappedAddr = 0x10000000
	// nonCanonical is an address no x86-64 access may use (#GP).
	nonCanonical = 0x8000000000000000

	memFileSize = 64 << 20
)

// Run runs the conformance suite against the platforms newPlatform makes.
// Each test gets a fresh memory file and platform, and runs on a
// goroutine locked to its OS thread, as the kernel's task goroutines are.
func Run(t *testing.T, newPlatform func(t *testing.T, mf *memfile.MemoryFile) platform.Platform) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Syscall", testSyscall},
		{"Faults", testFaults},
		{"Exceptions", testExceptions},
		{"DebugRegisters", testDebugRegisters},
		{"Interrupt", testInterrupt},
		{"Affinity", testAffinity},
		{"AffinityBusy", testAffinityBusy},
		{"FPState", testFPState},
		{"FPStatePerContext", testFPStatePerContext},
		{"MapUnmapProtect", testMapUnmapProtect},
		{"UnmapWhileRunning", testUnmapWhileRunning},
		{"ReservedRanges", testReservedRanges},
		{"AddressSpaceIsolation", testIsolation},
		{"ManyContextsOneAddressSpace", testManyContexts},
		{"ManyAddressSpaces", testManyAddressSpaces},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			e := newEnv(t, newPlatform)
			defer e.close()
			tc.fn(t, e)
		})
	}
}

// env is one test's platform and the things it made, released in order
// by close on the test's OS thread.
type env struct {
	t   *testing.T
	mf  *memfile.MemoryFile
	p   platform.Platform
	ctx []platform.Context
	as  []platform.AddressSpace
}

func newEnv(t *testing.T, newPlatform func(t *testing.T, mf *memfile.MemoryFile) platform.Platform) *env {
	t.Helper()
	mf, err := memfile.New("platformtest", memFileSize)
	if err != nil {
		t.Fatalf("memfile.New: %v", err)
	}
	e := &env{t: t, mf: mf}
	e.p = newPlatform(t, mf)
	for _, r := range e.p.ReservedRanges() {
		for _, a := range []uint64{codeAddr, dataAddr, stackAddr, unmappedAddr} {
			if a+arch.PageSize > r.Start && a < r.End {
				e.close()
				t.Fatalf("test address %#x lies in the platform's reserved range [%#x, %#x)", a, r.Start, r.End)
			}
		}
	}
	return e
}

// close releases contexts, then address spaces, then the platform.
func (e *env) close() {
	for _, c := range e.ctx {
		c.Release()
	}
	for _, a := range e.as {
		a.Release()
	}
	if err := e.p.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	if err := e.mf.Close(); err != nil {
		e.t.Errorf("memfile Close: %v", err)
	}
}

// newAS returns an address space with a stack page mapped; close
// releases it.
func (e *env) newAS(t *testing.T) platform.AddressSpace {
	t.Helper()
	as, err := e.p.NewAddressSpace()
	if err != nil {
		t.Fatalf("NewAddressSpace: %v", err)
	}
	e.as = append(e.as, as)
	e.mapPage(t, as, stackAddr, e.page(t, nil), platform.ReadWrite)
	return as
}

// newContext returns a context that close releases. Contexts used on
// other goroutines are released there instead.
func (e *env) newContext(t *testing.T) platform.Context {
	t.Helper()
	c, err := e.p.NewContext()
	if err != nil {
		t.Fatalf("NewContext: %v", err)
	}
	e.ctx = append(e.ctx, c)
	return c
}

// page allocates a page of the memory file holding content.
func (e *env) page(t *testing.T, content []byte) memfile.FileRange {
	t.Helper()
	fr, err := e.mf.Allocate(1)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	copy(e.mf.Bytes(fr), content)
	return fr
}

// word returns the 64-bit word at off in the page fr.
func (e *env) word(fr memfile.FileRange, off int) uint64 {
	return binary.LittleEndian.Uint64(e.mf.Bytes(fr)[off:])
}

// setWord stores v at off in the page fr.
func (e *env) setWord(fr memfile.FileRange, off int, v uint64) {
	binary.LittleEndian.PutUint64(e.mf.Bytes(fr)[off:], v)
}

func (e *env) mapPage(t *testing.T, as platform.AddressSpace, addr uint64, fr memfile.FileRange, at platform.AccessType) {
	t.Helper()
	if err := as.MapFile(addr, fr, at); err != nil {
		t.Fatalf("MapFile(%#x, %v, %v): %v", addr, fr, at, err)
	}
}

// mapCode maps a page holding code at codeAddr, readable and executable.
func (e *env) mapCode(t *testing.T, as platform.AddressSpace, code []byte) {
	t.Helper()
	e.mapPage(t, as, codeAddr, e.page(t, code), platform.Read|platform.Execute)
}

// newState returns a fresh thread state starting at rip, with the FP
// state of a new thread.
func (e *env) newState(rip uint64) *arch.State {
	st := &arch.State{Regs: arch.Registers{
		Rip:    rip,
		Rsp:    stackAddr + arch.PageSize,
		Cs:     arch.UserCS,
		Ss:     arch.UserDS,
		Eflags: arch.FlagReserved | arch.FlagIF,
	}}
	st.SetFP(arch.NewFPState(e.p.FPStateSize()))
	return st
}

// switchTo runs one Switch and fails the test on error.
func switchTo(t *testing.T, c platform.Context, as platform.AddressSpace, st *arch.State) platform.Event {
	t.Helper()
	ev, err := c.Switch(as, st)
	if err != nil {
		t.Fatalf("Switch at rip %#x: %v", st.Regs.Rip, err)
	}
	return ev
}

// infersAccess reports whether the platform cannot see the access type of
// a fault and infers it as platform.Event documents (ptrace).
func infersAccess(p platform.Platform) bool { return p.Name() == "ptrace" }

// documentedAccess is the access a platform that infers it reports.
func documentedAccess(ev platform.Event, rip uint64) platform.AccessType {
	switch {
	case ev.Addr == rip:
		return platform.Execute
	case ev.NotPresent:
		return platform.Read
	}
	return platform.Write
}

// pageAt is the one-page file range at off.
func pageAt(off uint64) memfile.FileRange {
	return memfile.FileRange{Start: off, End: off + arch.PageSize}
}

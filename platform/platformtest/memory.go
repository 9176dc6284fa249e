package platformtest

import (
	"runtime"
	"testing"
	"time"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// progLoadStore loads [rbx] into rdi (entry 0x0) or stores rsi at [rbx]
// (entry 0x5), each followed by a syscall.
var progLoadStore = []byte{
	0x48, 0x8b, 0x3b, // 0x0: mov rdi, [rbx]
	0x0f, 0x05, // 0x3: syscall
	0x48, 0x89, 0x33, // 0x5: mov [rbx], rsi
	0x0f, 0x05, // 0x8: syscall
	0xeb, 0xfe, // 0xa: jmp .
}

const (
	entryLoad  = codeAddr
	entryStore = codeAddr + 5
)

// load runs the load program and returns what it read, or the event that
// stopped it.
func load(t *testing.T, c platform.Context, as platform.AddressSpace, st *arch.State) (uint64, platform.Event) {
	t.Helper()
	st.Regs.Rip, st.Regs.Rbx = entryLoad, dataAddr
	ev := switchTo(t, c, as, st)
	return st.Regs.Rdi, ev
}

func testMapUnmapProtect(t *testing.T, e *env) {
	as := e.newAS(t)
	c := e.newContext(t)
	e.mapCode(t, as, progLoadStore)
	first, second := e.page(t, nil), e.page(t, nil)
	e.setWord(first, 0, 0x1122334455667788)
	e.setWord(second, 0, 0x0123456789abcdef)
	st := e.newState(entryLoad)

	e.mapPage(t, as, dataAddr, first, platform.ReadWrite)
	if got, ev := load(t, c, as, st); ev.Kind != platform.EventSyscall || got != 0x1122334455667788 {
		t.Fatalf("load after map: event %v, value %#x, want syscall, %#x", ev.Kind, got, uint64(0x1122334455667788))
	}

	// A store lands in the memory file, where the kernel sees it.
	st.Regs.Rip, st.Regs.Rsi = entryStore, 0xabc
	if ev := switchTo(t, c, as, st); ev.Kind != platform.EventSyscall {
		t.Fatalf("store: event %v, want syscall", ev.Kind)
	}
	if got := e.word(first, 0); got != 0xabc {
		t.Errorf("memory file after store = %#x, want 0xabc", got)
	}

	// Read-only now: the store faults, the load still works.
	e.mapPage(t, as, dataAddr, first, platform.Read)
	st.Regs.Rip, st.Regs.Rsi = entryStore, 0xdef
	ev := switchTo(t, c, as, st)
	if ev.Kind != platform.EventFault || ev.Addr != dataAddr || ev.NotPresent {
		t.Fatalf("store to read-only page: event %v addr %#x notPresent %v, want a protection fault at %#x",
			ev.Kind, ev.Addr, ev.NotPresent, uint64(dataAddr))
	}
	if got := e.word(first, 0); got != 0xabc {
		t.Errorf("memory file after refused store = %#x, want 0xabc", got)
	}
	if got, ev := load(t, c, as, st); ev.Kind != platform.EventSyscall || got != 0xabc {
		t.Fatalf("load from read-only page: event %v, value %#x, want syscall, 0xabc", ev.Kind, got)
	}

	// Unmapped: the load faults on an absent page.
	as.Unmap(dataAddr, arch.PageSize)
	if _, ev := load(t, c, as, st); ev.Kind != platform.EventFault || ev.Addr != dataAddr || !ev.NotPresent {
		t.Fatalf("load after unmap: event %v addr %#x notPresent %v, want a not-present fault at %#x",
			ev.Kind, ev.Addr, ev.NotPresent, uint64(dataAddr))
	}

	// Mapped again, to another page of the file.
	e.mapPage(t, as, dataAddr, second, platform.Read)
	if got, ev := load(t, c, as, st); ev.Kind != platform.EventSyscall || got != 0x0123456789abcdef {
		t.Fatalf("load after remap: event %v, value %#x, want syscall, %#x", ev.Kind, got, uint64(0x0123456789abcdef))
	}

	// No access at all.
	e.mapPage(t, as, dataAddr, second, platform.NoAccess)
	if _, ev := load(t, c, as, st); ev.Kind != platform.EventFault || ev.Addr != dataAddr {
		t.Fatalf("load from inaccessible page: event %v addr %#x, want a fault at %#x", ev.Kind, ev.Addr, uint64(dataAddr))
	}
}

func testReservedRanges(t *testing.T, e *env) {
	as := e.newAS(t)
	fr := e.page(t, nil)
	for _, r := range e.p.ReservedRanges() {
		if r.Start >= arch.MaxUserAddress || r.End <= r.Start {
			continue
		}
		if err := as.MapFile(r.Start, fr, platform.ReadWrite); err == nil {
			t.Errorf("MapFile at reserved %#x succeeded, want an error", r.Start)
		}
		if last := r.End - arch.PageSize; last > r.Start {
			if err := as.MapFile(last, fr, platform.ReadWrite); err == nil {
				t.Errorf("MapFile at reserved %#x succeeded, want an error", last)
			}
		}
	}
	// Ranges outside user addresses are refused too.
	for _, addr := range []uint64{arch.MaxUserAddress, nonCanonical, codeAddr + 1} {
		if err := as.MapFile(addr, fr, platform.ReadWrite); err == nil {
			t.Errorf("MapFile at %#x succeeded, want an error", addr)
		}
	}
}

func testIsolation(t *testing.T, e *env) {
	c := e.newContext(t)
	var spaces [2]platform.AddressSpace
	var pages [2]uint64
	for i := range spaces {
		spaces[i] = e.newAS(t)
		e.mapCode(t, spaces[i], progLoadStore)
		fr := e.page(t, nil)
		e.setWord(fr, 0, uint64(100+i))
		e.mapPage(t, spaces[i], dataAddr, fr, platform.ReadWrite)
		pages[i] = fr.Start
	}
	st := e.newState(entryLoad)
	// One context moves between the two, as execve moves a task; each
	// address space keeps its own page at the same address.
	for _, i := range []int{0, 1, 0, 1} {
		if got, ev := load(t, c, spaces[i], st); ev.Kind != platform.EventSyscall || got != uint64(100+i) {
			t.Fatalf("load in address space %d: event %v, value %d, want syscall, %d", i, ev.Kind, got, 100+i)
		}
	}
	// Unmapping in one leaves the other alone.
	spaces[0].Unmap(dataAddr, arch.PageSize)
	if _, ev := load(t, c, spaces[0], st); ev.Kind != platform.EventFault {
		t.Errorf("load after unmap in address space 0: event %v, want fault", ev.Kind)
	}
	if got, ev := load(t, c, spaces[1], st); ev.Kind != platform.EventSyscall || got != 101 {
		t.Errorf("load in address space 1 after unmap in 0: event %v, value %d, want syscall, 101", ev.Kind, got)
	}
}

// progTouchLoop counts its iterations at [rbx+8] and reads [rbx], forever.
var progTouchLoop = []byte{
	0x48, 0xff, 0x43, 0x08, // 0x0: inc qword [rbx+8]
	0x48, 0x8b, 0x03, // 0x4: mov rax, [rbx]
	0xeb, 0xf7, // 0x7: jmp 0x0
}

// testUnmapWhileRunning unmaps a page that another thread is using in
// user mode: when Unmap returns, that thread must fault (DESIGN.md, TLB
// coherence: the running vCPU must drop its stale translation).
func testUnmapWhileRunning(t *testing.T, e *env) {
	as := e.newAS(t)
	e.mapCode(t, as, progTouchLoop)
	data := e.page(t, nil)
	e.mapPage(t, as, dataAddr, data, platform.ReadWrite)

	type result struct {
		ev  platform.Event
		err error
	}
	c, err := e.p.NewContext()
	if err != nil {
		t.Fatalf("NewContext: %v", err)
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer c.Release()
		st := e.newState(codeAddr)
		st.Regs.Rbx = dataAddr
		ev, err := c.Switch(as, st)
		done <- result{ev: ev, err: err}
	}()
	// Wait until the loop runs: its counter moves.
	for e.word(data, 8) == 0 {
		time.Sleep(time.Millisecond)
	}
	as.Unmap(dataAddr, arch.PageSize)
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		// A watchdog, not a timing assertion: the loop would spin
		// forever on a stale translation.
		c.Interrupt()
		r = <-done
		t.Errorf("the loop still ran 30s after Unmap returned: a stale mapping survived")
	}
	if r.err != nil {
		t.Fatalf("Switch: %v", r.err)
	}
	if r.ev.Kind != platform.EventFault || r.ev.Addr&^(arch.PageSize-1) != dataAddr || !r.ev.NotPresent {
		t.Errorf("event = %v at %#x (not present %v), want a not-present fault in the page at %#x",
			r.ev.Kind, r.ev.Addr, r.ev.NotPresent, uint64(dataAddr))
	}
}

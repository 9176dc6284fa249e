package platformtest

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/ringbox/ringbox/platform"
)

// progCount adds rdi to rsi, stores rsi in the rdi'th word of the page at
// rbx and makes a syscall, forever.
var progCount = []byte{
	0x48, 0x01, 0xfe, // 0x0: add rsi, rdi
	0x48, 0x89, 0x34, 0xfb, // 0x3: mov [rbx+rdi*8], rsi
	0x0f, 0x05, // 0x7: syscall
	0xeb, 0xf5, // 0x9: jmp 0x0
}

const (
	concurrentTasks = 4
	roundTrips      = 50
)

// runCounter drives progCount for roundTrips system calls on the calling
// goroutine's own OS thread with its own context, checking every step.
// It reports failures as errors so it can run on any goroutine.
func runCounter(e *env, as platform.AddressSpace, id uint64) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c, err := e.p.NewContext()
	if err != nil {
		return fmt.Errorf("NewContext: %w", err)
	}
	defer c.Release()
	st := e.newState(codeAddr)
	st.Regs.Rdi, st.Regs.Rbx = id, dataAddr
	for i := uint64(1); i <= roundTrips; i++ {
		ev, err := c.Switch(as, st)
		if err != nil {
			return fmt.Errorf("task %d, round trip %d: Switch: %w", id, i, err)
		}
		if ev.Kind != platform.EventSyscall {
			return fmt.Errorf("task %d, round trip %d: event %v (vector %d, addr %#x), want syscall", id, i, ev.Kind, ev.Vector, ev.Addr)
		}
		if got, want := st.Regs.Rsi, i*id; got != want {
			return fmt.Errorf("task %d, round trip %d: rsi = %d, want %d", id, i, got, want)
		}
		st.Regs.SetReturn(0)
	}
	return nil
}

// runAll runs fn(i) for i in [1, n] on n goroutines and reports errors.
func runAll(t *testing.T, n int, fn func(i uint64) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(uint64(i + 1))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func testManyContexts(t *testing.T, e *env) {
	as := e.newAS(t)
	e.mapCode(t, as, progCount)
	data := e.page(t, nil)
	e.mapPage(t, as, dataAddr, data, platform.ReadWrite)
	before := syscallExits(e.p)
	runAll(t, concurrentTasks, func(id uint64) error { return runCounter(e, as, id) })
	for id := 1; id <= concurrentTasks; id++ {
		if got, want := e.word(data, 8*id), uint64(roundTrips*id); got != want {
			t.Errorf("task %d's counter in memory = %d, want %d", id, got, want)
		}
	}
	if got, want := syscallExits(e.p)-before, uint64(concurrentTasks*roundTrips); got < want {
		t.Errorf("syscall exits in Stats = %d, want at least %d", got, want)
	}
}

func testManyAddressSpaces(t *testing.T, e *env) {
	spaces := make([]platform.AddressSpace, concurrentTasks)
	pages := make([]uint64, concurrentTasks)
	for i := range spaces {
		spaces[i] = e.newAS(t)
		e.mapCode(t, spaces[i], progCount)
		fr := e.page(t, nil)
		e.mapPage(t, spaces[i], dataAddr, fr, platform.ReadWrite)
		pages[i] = fr.Start
	}
	runAll(t, concurrentTasks, func(id uint64) error { return runCounter(e, spaces[id-1], id) })
	for i := range spaces {
		for id := 1; id <= concurrentTasks; id++ {
			want := uint64(0)
			if id == i+1 {
				want = uint64(roundTrips * id)
			}
			if got := e.word(pageAt(pages[i]), 8*id); got != want {
				t.Errorf("address space %d, counter %d = %d, want %d", i, id, got, want)
			}
		}
	}
}

// syscallExits sums the syscall exits of all vCPUs.
func syscallExits(p platform.Platform) uint64 {
	var n uint64
	for _, s := range p.Stats() {
		n += s.Exits[platform.ExitSyscall]
	}
	return n
}

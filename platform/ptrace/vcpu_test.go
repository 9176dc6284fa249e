package ptrace

import (
	"runtime"
	"testing"
	"time"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// TestInterruptWhileWaitingForCPU checks that a Switch waiting for a vCPU
// returns on Interrupt, and that the vCPU stays accounted.
func TestInterruptWhileWaitingForCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mf, err := memfile.New("ptrace-test", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	p, err := New(mf, Options{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	as, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	defer as.Release()
	fr, err := mf.Allocate(1)
	if err != nil {
		t.Fatal(err)
	}
	copy(mf.Bytes(fr), []byte{0xeb, 0xfe}) // jmp .
	if err := as.MapFile(testCode, fr, platform.Read|platform.Execute); err != nil {
		t.Fatal(err)
	}
	newState := func() *arch.State {
		return &arch.State{Regs: arch.Registers{Rip: testCode, Eflags: arch.FlagReserved | arch.FlagIF}}
	}

	// A spinner holds the only vCPU until interrupted.
	spinner, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	spun := make(chan platform.Event)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer spinner.Release()
		ev, err := spinner.Switch(as, newState())
		if err != nil {
			t.Errorf("spinner Switch: %v", err)
		}
		spun <- ev
	}()
	for p.pool.numFree() > 0 {
		time.Sleep(time.Millisecond)
	}

	waiter, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Release()
	// Whether the Interrupt lands before or while the waiter blocks, the
	// vCPU is taken, so the waiter must come back without one.
	go waiter.Interrupt()
	ev, err := waiter.Switch(as, newState())
	if err != nil {
		t.Fatalf("waiting Switch: %v", err)
	}
	if ev.Kind != platform.EventInterrupt || ev.CPU != -1 {
		t.Errorf("waiting Switch: event %v on CPU %d, want interrupt on no CPU (-1)", ev.Kind, ev.CPU)
	}
	spinner.Interrupt()
	if ev := <-spun; ev.Kind != platform.EventInterrupt || ev.CPU != 0 {
		t.Errorf("spinner: event %v on CPU %d, want interrupt on CPU 0", ev.Kind, ev.CPU)
	}
	if got := p.pool.numFree(); got != 1 {
		t.Errorf("free vCPUs after both returned = %d, want 1", got)
	}
}

// BenchmarkCPUPool measures taking and returning a free vCPU, the cost
// Switch pays per event on top of the ptrace round trip, against the
// buffered channel of indices the pool replaced (which could not honour
// CPU masks).
func BenchmarkCPUPool(b *testing.B) {
	b.Run("pool", func(b *testing.B) {
		p := newCPUPool(2)
		c := &context{grant: make(chan int, 1), kickWaiter: make(chan struct{}, 1), lastCPU: -1}
		c.cpus.Store(&[]bool{false, true})
		for i := 0; i < b.N; i++ {
			cpu, ok := p.acquire(c)
			if !ok || cpu != 1 {
				b.Fatalf("acquire = %d, %v; want 1, true", cpu, ok)
			}
			p.release(cpu)
		}
	})
	b.Run("channel", func(b *testing.B) {
		ch := make(chan int, 2)
		ch <- 0
		ch <- 1
		for i := 0; i < b.N; i++ {
			ch <- <-ch
		}
	})
}

// TestCPUPoolHandoff checks that a released vCPU goes to the oldest
// waiter allowed to run on it, passing over older waiters it is not
// allowed to, and to the free set when no waiter may take it.
func TestCPUPoolHandoff(t *testing.T) {
	// mask has one entry per vCPU, as SetCPUs leaves it.
	newCtx := func(mask []bool) *context {
		c := &context{grant: make(chan int, 1), kickWaiter: make(chan struct{}, 1), lastCPU: -1}
		if mask != nil {
			c.cpus.Store(&mask)
		}
		return c
	}
	p := newCPUPool(3)
	for want := range 3 {
		if cpu, ok := p.acquire(newCtx(nil)); !ok || cpu != want {
			t.Fatalf("acquire with all free = %d, %v; want %d, true", cpu, ok, want)
		}
	}
	// Queued oldest first: one allowed only vCPU 2, then one allowed
	// only vCPU 0, then one allowed any.
	waiters := []*context{newCtx([]bool{false, false, true}), newCtx([]bool{true, false, false}), newCtx(nil)}
	// Each grant reports which waiter got which vCPU, so that a wrong
	// handoff shows as a mismatch rather than a hang.
	type grant struct{ waiter, cpu int }
	got := make(chan grant, len(waiters))
	for i, w := range waiters {
		go func() {
			cpu, ok := p.acquire(w)
			if !ok {
				cpu = -1
			}
			got <- grant{i, cpu}
		}()
		for {
			p.mu.Lock()
			n := len(p.waiters)
			p.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	tests := []struct {
		release int
		waiter  int // index of the waiter that gets it, -1: none
	}{
		{release: 1, waiter: 2}, // the first two may not run on vCPU 1
		{release: 0, waiter: 1}, // passes over the older waiter for vCPU 2
		{release: 2, waiter: 0},
		{release: 1, waiter: -1}, // nobody waits: free again
	}
	for _, tc := range tests {
		p.release(tc.release)
		if tc.waiter < 0 {
			if n := p.numFree(); n != 1 {
				t.Errorf("free vCPUs after releasing %d with no waiter = %d, want 1", tc.release, n)
			}
			continue
		}
		if g := <-got; g != (grant{tc.waiter, tc.release}) {
			t.Fatalf("releasing vCPU %d: waiter %d got vCPU %d, want waiter %d", tc.release, g.waiter, g.cpu, tc.waiter)
		}
	}
}

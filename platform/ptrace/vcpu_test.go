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

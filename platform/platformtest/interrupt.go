package platformtest

import (
	"testing"
	"time"

	"github.com/ringbox/ringbox/platform"
)

// progSpin spins until interrupted; a syscall follows it.
var progSpin = []byte{
	0xeb, 0xfe, // 0x0: jmp .
	0x0f, 0x05, // 0x2: syscall
}

func testInterrupt(t *testing.T, e *env) {
	as := e.newAS(t)
	c := e.newContext(t)
	e.mapCode(t, as, progSpin)
	st := e.newState(codeAddr)

	// A busy loop in user mode ends promptly when another goroutine
	// interrupts it. The interrupter repeats until Switch returns, so the
	// test does not depend on when the loop starts.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				c.Interrupt()
			}
		}
	}()
	ev, err := c.Switch(as, st)
	close(done)
	if err != nil {
		t.Fatalf("Switch: %v", err)
	}
	if ev.Kind != platform.EventInterrupt {
		t.Fatalf("event = %v, want interrupt", ev.Kind)
	}
	if got, want := st.Regs.Rip, uint64(codeAddr); got != want {
		t.Errorf("rip = %#x, want %#x (inside the loop)", got, want)
	}

	// An Interrupt before Switch makes the next Switch return at once,
	// without running the program.
	c.Interrupt()
	st.Regs.Rip = codeAddr + 2
	ev = switchTo(t, c, as, st)
	if ev.Kind != platform.EventInterrupt {
		t.Fatalf("after Interrupt outside Switch: event = %v, want interrupt", ev.Kind)
	}
	if got, want := st.Regs.Rip, uint64(codeAddr+2); got != want {
		t.Errorf("rip = %#x, want %#x (nothing ran)", got, want)
	}
	// The interrupt is consumed: the program runs to its syscall, which
	// is reported once, with the registers the kernel set.
	for i := 0; i < 3; i++ {
		st.Regs.Rip = codeAddr + 2
		ev = switchTo(t, c, as, st)
		if ev.Kind != platform.EventSyscall {
			t.Fatalf("run %d after the interrupt: event = %v, want syscall", i, ev.Kind)
		}
	}
	var n uint64
	for _, s := range e.p.Stats() {
		n += s.Exits[platform.ExitInterrupt]
	}
	if n < 1 {
		t.Errorf("interrupt exits in Stats = %d, want at least 1 (the busy loop's)", n)
	}
}

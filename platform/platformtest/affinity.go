package platformtest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ringbox/ringbox/platform"
)

// onlyCPU1 is the mask of vCPU 1 alone.
var onlyCPU1 = []bool{false, true}

// affinityOf returns c as a platform.CPUAffinity, failing the test if the
// platform's contexts cannot be limited to vCPUs: the kernel's
// sched_setaffinity(2) relies on it.
func affinityOf(t *testing.T, c platform.Context) platform.CPUAffinity {
	t.Helper()
	a, ok := c.(platform.CPUAffinity)
	if !ok {
		t.Fatalf("context %T does not implement platform.CPUAffinity", c)
	}
	return a
}

// syscallOn runs progSpin's syscall (at codeAddr+2) once and checks that
// it is reported on one of the vCPUs in want (nil: any vCPU).
func syscallOn(t *testing.T, e *env, c platform.Context, as platform.AddressSpace, want []bool, what string) {
	t.Helper()
	st := e.newState(codeAddr + 2)
	ev := switchTo(t, c, as, st)
	if ev.Kind != platform.EventSyscall {
		t.Fatalf("%s: event %v, want syscall", what, ev.Kind)
	}
	if ev.CPU < 0 || ev.CPU >= e.p.NumCPUs() || want != nil && (ev.CPU >= len(want) || !want[ev.CPU]) {
		t.Errorf("%s: syscall on vCPU %d, want one of %v", what, ev.CPU, want)
	}
}

// testAffinity checks platform.CPUAffinity: a context limited to some
// vCPUs runs on those only, whichever vCPU the platform would otherwise
// prefer; a mask allowing none of the platform's vCPUs allows all; a new
// mask applies from the next Switch.
func testAffinity(t *testing.T, e *env) {
	if e.p.NumCPUs() < 2 {
		t.Skipf("%d vCPUs, want at least 2", e.p.NumCPUs())
	}
	as := e.newAS(t)
	e.mapCode(t, as, progSpin)
	tests := []struct {
		name string
		mask []bool
		// want are the vCPUs the context may be reported on; nil: any.
		want []bool
	}{
		{"vCPU 0", []bool{true}, []bool{true}},
		{"vCPU 1", onlyCPU1, onlyCPU1},
		{"vCPU 1, mask longer than the platform's", []bool{false, true, false, true, true, true, true, true, true}, onlyCPU1},
		{"nil mask", nil, nil},
		{"empty mask", []bool{false, false}, nil},
		{"only vCPUs the platform lacks", []bool{false, false, false, false, false, false, false, false, true}, nil},
	}
	// Not subtests: ptrace wants every Switch of a context on the OS
	// thread that made it, and a subtest runs on a goroutine of its own.
	for _, tc := range tests {
		c := e.newContext(t)
		affinityOf(t, c).SetCPUs(tc.mask)
		for i := range 4 {
			syscallOn(t, e, c, as, tc.want, fmt.Sprintf("%s, Switch %d", tc.name, i))
		}
	}

	// The mask of a context that has run changes where it runs next.
	c := e.newContext(t)
	a := affinityOf(t, c)
	syscallOn(t, e, c, as, nil, "before SetCPUs")
	a.SetCPUs(onlyCPU1)
	syscallOn(t, e, c, as, onlyCPU1, "after SetCPUs(vCPU 1)")
	a.SetCPUs([]bool{true, false})
	syscallOn(t, e, c, as, []bool{true}, "after SetCPUs(vCPU 0)")
}

// testAffinityBusy checks waiting for an allowed vCPU while another is
// free: Interrupt ends the wait without running anything, a new mask that
// allows the free vCPU ends it from another goroutine, and the release of
// the allowed vCPU ends it.
func testAffinityBusy(t *testing.T, e *env) {
	if e.p.NumCPUs() < 2 {
		t.Skipf("%d vCPUs, want at least 2", e.p.NumCPUs())
	}
	as := e.newAS(t)
	e.mapCode(t, as, progSpin)

	// A spinner holds vCPU 1 until interrupted. Its context lives on its
	// own locked goroutine, which ptrace requires of Switch and Release.
	type result struct {
		ev  platform.Event
		err error
	}
	spinCtx := make(chan platform.Context, 1)
	spun := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c, err := e.p.NewContext()
		if err != nil {
			spinCtx <- nil
			spun <- result{err: err}
			return
		}
		defer c.Release()
		if a, ok := c.(platform.CPUAffinity); ok {
			a.SetCPUs(onlyCPU1)
		}
		spinCtx <- c
		ev, err := c.Switch(as, e.newState(codeAddr))
		spun <- result{ev, err}
	}()
	spinner := <-spinCtx
	if spinner == nil {
		r := <-spun
		t.Fatalf("spinner NewContext: %v", r.err)
	}
	affinityOf(t, spinner)
	gt, ok := spinner.(platform.GuestTimer)
	if !ok {
		spinner.Interrupt()
		<-spun
		t.Fatalf("context %T does not implement platform.GuestTimer", spinner)
	}
	// GuestSince is set once the spinner holds its vCPU and is entering
	// user mode; the jmp-to-self keeps it there.
	for gt.GuestSince() == 0 {
		select {
		case r := <-spun:
			t.Fatalf("spinner returned early: event %v, err %v", r.ev.Kind, r.err)
		case <-time.After(time.Millisecond):
		}
	}

	c := e.newContext(t)
	a := affinityOf(t, c)
	a.SetCPUs(onlyCPU1)

	// vCPU 0 is free but not allowed: an Interrupt ends the wait for
	// vCPU 1 and nothing runs.
	c.Interrupt()
	st := e.newState(codeAddr + 2)
	ev := switchTo(t, c, as, st)
	if ev.Kind != platform.EventInterrupt || ev.CPU != -1 {
		t.Errorf("Interrupt while waiting for busy vCPU 1: event %v on vCPU %d, want interrupt on none (-1)", ev.Kind, ev.CPU)
	}
	if got, want := st.Regs.Rip, uint64(codeAddr+2); got != want {
		t.Errorf("Interrupt while waiting: rip = %#x, want %#x (nothing ran)", got, want)
	}

	// Allowing vCPU 0 from another goroutine, before or during the wait,
	// lets the context run there.
	go a.SetCPUs(nil)
	syscallOn(t, e, c, as, []bool{true}, "after SetCPUs(nil) with vCPU 1 busy")

	// Limited to vCPU 1 again, the context runs when the spinner
	// releases it, whether or not it waited for it.
	a.SetCPUs(onlyCPU1)
	go spinner.Interrupt()
	syscallOn(t, e, c, as, onlyCPU1, "after the spinner's interrupt")
	r := <-spun
	if r.err != nil {
		t.Fatalf("spinner Switch: %v", r.err)
	}
	if r.ev.Kind != platform.EventInterrupt || r.ev.CPU != 1 {
		t.Errorf("spinner: event %v on vCPU %d, want interrupt on vCPU 1", r.ev.Kind, r.ev.CPU)
	}
}

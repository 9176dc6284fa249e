package platformtest

import (
	"testing"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// progMXCSR stores MXCSR, then loads it.
var progMXCSR = []byte{
	0x0f, 0xae, 0x1b, // 0x0: stmxcsr [rbx]
	0x0f, 0x05, // 0x3: syscall
	0x0f, 0xae, 0x13, // 0x5: ldmxcsr [rbx]
	0x0f, 0x05, // 0x8: syscall
}

// MXCSR rounding control (Intel SDM Vol. 1, 10.2.3.1).
const (
	mxcsrRoundDown   = 1 << 13
	mxcsrRoundToZero = 3 << 13
)

func testFPState(t *testing.T, e *env) {
	as := e.newAS(t)
	c := e.newContext(t)
	e.mapCode(t, as, progMXCSR)
	data := e.page(t, nil)
	e.mapPage(t, as, dataAddr, data, platform.ReadWrite)
	st := e.newState(codeAddr)
	st.Regs.Rbx = dataAddr

	// The kernel's FP state is loaded before the program runs.
	fp := arch.NewFPState(e.p.FPStateSize())
	setMXCSR(fp, arch.DefaultMXCSR|mxcsrRoundToZero)
	st.SetFP(fp)
	if ev := switchTo(t, c, as, st); ev.Kind != platform.EventSyscall {
		t.Fatalf("event = %v, want syscall", ev.Kind)
	}
	if st.FPValid || st.FPDirty {
		t.Errorf("after Switch: FPValid, FPDirty = %v, %v, want false, false", st.FPValid, st.FPDirty)
	}
	if got, want := uint32(e.word(data, 0)), uint32(arch.DefaultMXCSR|mxcsrRoundToZero); got != want {
		t.Errorf("MXCSR seen by the program = %#x, want %#x", got, want)
	}

	// What the program sets, PullFPState returns.
	e.setWord(data, 0, arch.DefaultMXCSR|mxcsrRoundDown)
	st.Regs.Rip = codeAddr + 5
	if ev := switchTo(t, c, as, st); ev.Kind != platform.EventSyscall {
		t.Fatalf("event = %v, want syscall", ev.Kind)
	}
	if err := c.PullFPState(st); err != nil {
		t.Fatalf("PullFPState: %v", err)
	}
	if !st.FPValid {
		t.Errorf("FPValid = false after PullFPState")
	}
	if got, want := st.FP.MXCSR(), uint32(arch.DefaultMXCSR|mxcsrRoundDown); got != want {
		t.Errorf("pulled MXCSR = %#x, want %#x", got, want)
	}
}

func setMXCSR(fp arch.FPState, v uint32) {
	fp[24], fp[25], fp[26], fp[27] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// testFPStatePerContext runs two contexts with different FP state in turn
// on one goroutine (so a platform with few vCPUs runs them on the same
// one): each must find its own state again without the kernel reloading
// it.
func testFPStatePerContext(t *testing.T, e *env) {
	as := e.newAS(t)
	e.mapCode(t, as, progMXCSR)
	data := e.page(t, nil)
	e.mapPage(t, as, dataAddr, data, platform.ReadWrite)
	ctxs := [2]platform.Context{e.newContext(t), e.newContext(t)}
	want := [2]uint32{arch.DefaultMXCSR | mxcsrRoundToZero, arch.DefaultMXCSR | mxcsrRoundDown}
	var sts [2]*arch.State
	for i := range sts {
		sts[i] = e.newState(codeAddr)
		fp := arch.NewFPState(e.p.FPStateSize())
		setMXCSR(fp, want[i])
		sts[i].SetFP(fp)
	}
	// Each run stores MXCSR in its own word: A, B, A, B.
	for n, i := range []int{0, 1, 0, 1} {
		st := sts[i]
		st.Regs.Rip, st.Regs.Rbx = codeAddr, dataAddr+uint64(8*n)
		if ev := switchTo(t, ctxs[i], as, st); ev.Kind != platform.EventSyscall {
			t.Fatalf("run %d (context %d): event %v, want syscall", n, i, ev.Kind)
		}
		if st.FPDirty {
			t.Fatalf("run %d: FPDirty still set after Switch", n)
		}
		if got := uint32(e.word(data, 8*n)); got != want[i] {
			t.Errorf("run %d: context %d saw MXCSR %#x, want its own %#x", n, i, got, want[i])
		}
	}
}

package kernel

import (
	"encoding/binary"
	"testing"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

func TestRseqFixup(t *testing.T) {
	const (
		area  = dataAddr
		cs    = dataAddr + 0x100
		start = 0x401000
		abort = 0x401100
		sig   = 0x53053053
	)
	tests := []struct {
		name     string
		rip      uint64
		version  uint32
		sigWord  uint32
		wantOK   bool
		wantRip  uint64
		wantCSed bool // rseq_cs cleared
	}{
		{"inside the section aborts", start + 8, 0, sig, true, abort, true},
		{"after the section only clears", start + 0x40, 0, sig, true, start + 0x40, true},
		{"bad signature is fatal", start + 8, 0, 0xdead, false, start + 8, false},
		{"bad version is fatal", start + 8, 1, sig, false, start + 8, false},
	}
	for _, tc := range tests {
		_, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event { panic("no run") })
		task.rseq = rseqState{addr: area, length: rseqOrigSize, sig: sig, cpu: -1}
		var csb [rseqCSSize]byte
		binary.LittleEndian.PutUint32(csb[0:], tc.version)
		binary.LittleEndian.PutUint64(csb[rseqCSStartOff:], start)
		binary.LittleEndian.PutUint64(csb[rseqCSPostCommitOff:], 0x20)
		binary.LittleEndian.PutUint64(csb[rseqCSAbortOff:], abort)
		if err := task.CopyOut(cs, csb[:]); err != nil {
			t.Fatal(err)
		}
		var p [8]byte
		binary.LittleEndian.PutUint64(p[:], cs)
		task.CopyOut(area+rseqCSOff, p[:])
		// The abort handler is preceded by the signature.
		task.mm.mu.Lock()
		task.mm.insertLocked(&vma{start: 0x401000, end: 0x402000, perms: platform.AnyAccess, maxPerms: platform.AnyAccess})
		task.mm.mu.Unlock()
		var sb [4]byte
		binary.LittleEndian.PutUint32(sb[:], tc.sigWord)
		task.CopyOut(abort-4, sb[:])
		task.st.Regs.Rip = tc.rip

		ok := task.rseqFixup()
		if ok != tc.wantOK {
			t.Errorf("%s: rseqFixup = %v, want %v", tc.name, ok, tc.wantOK)
		}
		if got := task.st.Regs.Rip; got != tc.wantRip {
			t.Errorf("%s: rip = %#x, want %#x", tc.name, got, tc.wantRip)
		}
		task.CopyIn(area+rseqCSOff, p[:])
		if got := binary.LittleEndian.Uint64(p[:]) == 0; got != tc.wantCSed {
			t.Errorf("%s: rseq_cs cleared = %v, want %v", tc.name, got, tc.wantCSed)
		}
	}
}

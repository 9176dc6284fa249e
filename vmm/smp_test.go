package vmm

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// progCountStore: 0x0: inc r12; 0x3: mov [rbx], r12; 0x6: syscall;
// 0x8: jmp 0x0. 0x10: jmp 0x10 (a spinner).
var progCountStore = []byte{
	0x49, 0xff, 0xc4, 0x4c, 0x89, 0x23, 0x0f, 0x05, 0xeb, 0xf6,
	0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
	0xeb, 0xfe,
}

const (
	countStoreSyscallRIP = userCode + 8
	spinnerRIP           = userCode + 0x10
)

// TestContextsOutnumberVCPUs runs more threads than vCPUs, as the kernel
// does with a multi-threaded program: each goroutine, locked to its OS
// thread, drives its own context in one of two address spaces through
// system calls, while spinners are preempted by Interrupt, the data page
// is write-protected behind the workers' backs (a shootdown) and the
// contexts take turns on the two logical CPUs. Each context must see only
// its own registers (R12 counts its system calls, R13 and the FS base name
// it), and no vCPU may change threads.
func TestContextsOutnumberVCPUs(t *testing.T) {
	const (
		workers  = 6
		spinners = 2
		rounds   = 60
	)
	e := newKVMEnv(t, 2, progCountStore)
	as2, err := e.p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	defer as2.Release()
	// The second address space maps the same code and data pages.
	ases := []platform.AddressSpace{e.as, as2}
	for _, m := range []struct {
		addr uint64
		at   platform.AccessType
	}{{userCode, platform.Read | platform.Execute}, {userData, platform.ReadWrite}} {
		pa, ok := e.as.(*addressSpace).pt.translate(m.addr)
		if !ok {
			t.Fatalf("no page at %#x", m.addr)
		}
		fr := memfile.FileRange{Start: pa, End: pa + arch.PageSize}
		if err := as2.MapFile(m.addr, fr, m.at); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, workers+spinners+1)
	var spinCtxs []platform.Context
	for i := 0; i < spinners; i++ {
		c := e.newContext(t)
		defer c.Release()
		spinCtxs = append(spinCtxs, c)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			st := newTestState(spinnerRIP)
			st.Regs.R13 = uint64(100 + i)
			st.Regs.FsBase = uint64(0x10000 * (100 + i))
			for {
				select {
				case <-stop:
					return
				default:
				}
				ev, err := c.Switch(ases[i%2], st)
				if err != nil {
					errs <- err
					return
				}
				if ev.Kind != platform.EventInterrupt || st.Regs.Rip != spinnerRIP || st.Regs.R13 != uint64(100+i) || st.Regs.FsBase != uint64(0x10000*(100+i)) {
					t.Errorf("spinner %d: event %v at RIP %#x, R13 %d, FS base %#x", i, ev.Kind, st.Regs.Rip, st.Regs.R13, st.Regs.FsBase)
					return
				}
			}
		}(i)
	}
	// Preempt the spinners as the kernel's tick does.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			spinCtxs[n%spinners].Interrupt()
			if n%8 == 0 {
				// Write-protect the data page: every vCPU running
				// the first address space must leave the guest.
				if err := e.as.MapFile(userData, e.data, platform.Read); err != nil {
					errs <- err
					return
				}
			}
		}
	}()

	var workWG sync.WaitGroup
	for i := 0; i < workers; i++ {
		c := e.newContext(t)
		defer c.Release()
		workWG.Add(1)
		go func(i int) {
			defer workWG.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			a := ases[i%2]
			st := newTestState(userCode)
			st.Regs.Rbx = userData + uint64(8*i)
			st.Regs.R13 = uint64(i)
			st.Regs.FsBase = uint64(0x10000 * (i + 1))
			var count uint64
			for count < rounds {
				// The kernel's work between two entries, during
				// which another thread takes the vCPU.
				time.Sleep(50 * time.Microsecond)
				ev, err := c.Switch(a, st)
				if err != nil {
					errs <- err
					return
				}
				if st.Regs.R13 != uint64(i) || st.Regs.FsBase != uint64(0x10000*(i+1)) {
					t.Errorf("worker %d: R13 %d, FS base %#x after %v: another context's registers", i, st.Regs.R13, st.Regs.FsBase, ev.Kind)
					return
				}
				if ev.CPU < 0 || ev.CPU >= e.p.NumCPUs() {
					t.Errorf("worker %d: %v on CPU %d, want 0 to %d", i, ev.Kind, ev.CPU, e.p.NumCPUs()-1)
					return
				}
				switch ev.Kind {
				case platform.EventSyscall:
					count++
					if st.Regs.Rip != countStoreSyscallRIP || st.Regs.R12 != count {
						t.Errorf("worker %d: system call %d at RIP %#x with R12 %d, want RIP %#x, R12 %d", i, count, st.Regs.Rip, st.Regs.R12, uint64(countStoreSyscallRIP), count)
						return
					}
					st.Regs.Rax = 0
				case platform.EventFault:
					if ev.Addr != st.Regs.Rbx || ev.Access != platform.Write {
						t.Errorf("worker %d: fault %+v, want a write at %#x", i, ev, st.Regs.Rbx)
						return
					}
					if err := a.MapFile(userData, e.data, platform.ReadWrite); err != nil {
						errs <- err
						return
					}
				case platform.EventInterrupt:
				default:
					t.Errorf("worker %d: event %+v", i, ev)
					return
				}
			}
		}(i)
	}
	workWG.Wait()
	close(stop)
	for _, c := range spinCtxs {
		c.Interrupt()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each context keeps its vCPU, which only its thread enters: KVM
	// never sees a vCPU change threads (costly, see doc.go).
	for _, st := range e.p.VCPUStats() {
		if st.Migrations != 0 {
			t.Errorf("CPU %d: %d vCPU thread changes, want 0", st.CPU, st.Migrations)
		}
	}
	mem := e.mf.Bytes(e.data)
	for i := 0; i < workers; i++ {
		if got := binary.LittleEndian.Uint64(mem[8*i:]); got != rounds {
			t.Errorf("worker %d stored %d, want %d", i, got, rounds)
		}
	}
}

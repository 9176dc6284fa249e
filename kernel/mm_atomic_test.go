package kernel

import (
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/platform"
)

func TestUserU32Errors(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm := t1.mm
	mm.mu.Lock()
	mm.insertLocked(&vma{start: roAddr, end: roAddr + pageSize, perms: platform.Read, maxPerms: platform.AnyAccess})
	mm.insertLocked(&vma{start: roAddr + pageSize, end: roAddr + 2*pageSize, perms: platform.NoAccess, maxPerms: platform.AnyAccess})
	mm.mu.Unlock()
	tests := []struct {
		name      string
		addr      uint64
		wantLoad  error
		wantStore error
	}{
		{"read-write", dataAddr, nil, nil},
		{"unaligned", dataAddr + 2, unix.EINVAL, unix.EINVAL},
		{"read-only", roAddr, nil, unix.EFAULT},
		{"PROT_NONE", roAddr + pageSize, unix.EFAULT, unix.EFAULT},
		{"unmapped", 0x10000, unix.EFAULT, unix.EFAULT},
		{"kernel half", 0xffff800000000000, unix.EFAULT, unix.EFAULT},
		{"end of the user half", 0x7ffffffffffc, unix.EFAULT, unix.EFAULT},
	}
	for _, tc := range tests {
		if _, err := mm.LoadU32(tc.addr); err != tc.wantLoad {
			t.Errorf("%s: LoadU32: got %v, want %v", tc.name, err, tc.wantLoad)
		}
		if _, err := mm.CompareAndSwapU32(tc.addr, 0, 1); err != tc.wantStore {
			t.Errorf("%s: CompareAndSwapU32: got %v, want %v", tc.name, err, tc.wantStore)
		}
		if _, err := mm.ReadModifyWriteU32(tc.addr, func(v uint32) uint32 { return v }); err != tc.wantStore {
			t.Errorf("%s: ReadModifyWriteU32: got %v, want %v", tc.name, err, tc.wantStore)
		}
	}
}

func TestCompareAndSwapU32(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm := t1.mm
	if err := mm.StoreU32(dataAddr, 5); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		old, new, wantPrev, wantWord uint32
	}{
		{4, 9, 5, 5}, // mismatch: nothing stored, current value returned
		{5, 9, 5, 9},
		{9, 0, 9, 0},
	}
	for _, tc := range tests {
		prev, err := mm.CompareAndSwapU32(dataAddr, tc.old, tc.new)
		word, _ := mm.LoadU32(dataAddr)
		if err != nil || prev != tc.wantPrev || word != tc.wantWord {
			t.Errorf("CAS(%d, %d): got prev %d, word %d, err %v; want %d, %d", tc.old, tc.new, prev, word, err, tc.wantPrev, tc.wantWord)
		}
	}
	// The word is the one CopyIn sees.
	var b [4]byte
	mm.StoreU32(dataAddr+4, 0x11223344)
	if _, err := mm.CopyIn(dataAddr+4, b[:]); err != nil || b != [4]byte{0x44, 0x33, 0x22, 0x11} {
		t.Errorf("CopyIn after StoreU32: %x, %v", b, err)
	}
}

// TestAtomicU32BreaksCOW shares a private page between two address spaces
// as fork does: an atomic write must give the writer its own copy and
// leave the other's value alone, like a write fault.
func TestAtomicU32BreaksCOW(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm1 := t1.mm
	if err := mm1.StoreU32(dataAddr, 7); err != nil {
		t.Fatal(err)
	}
	mm2, err := t1.k.newMM()
	if err != nil {
		t.Fatal(err)
	}
	mm2.insertLocked(&vma{start: dataAddr, end: dataAddr + pageSize, perms: platform.ReadWrite, maxPerms: platform.AnyAccess})
	p := mm1.pages[dataAddr]
	mm1.mf.IncRef(memfileRange(p.off))
	mm2.pages[dataAddr] = p

	if v, err := mm1.LoadU32(dataAddr); v != 7 || err != nil {
		t.Fatalf("load of the shared page: %d, %v", v, err)
	}
	if mm1.pages[dataAddr] != p {
		t.Errorf("a load broke copy-on-write")
	}
	if old, err := mm1.ReadModifyWriteU32(dataAddr, func(v uint32) uint32 { return v + 1 }); old != 7 || err != nil {
		t.Fatalf("ReadModifyWriteU32: got %d, %v, want 7", old, err)
	}
	if mm1.pages[dataAddr] == p {
		t.Errorf("an atomic write kept the shared page")
	}
	v1, _ := mm1.LoadU32(dataAddr)
	v2, _ := mm2.LoadU32(dataAddr)
	if v1 != 8 || v2 != 7 {
		t.Errorf("after the write: writer sees %d, other sees %d; want 8 and 7", v1, v2)
	}
}

// TestReadModifyWriteU32IsAtomic races kernel read-modify-writes against
// plain atomic adds on the same word of the memory file, as user threads
// on other vCPUs would do: no update may be lost.
func TestReadModifyWriteU32IsAtomic(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm := t1.mm
	if err := mm.StoreU32(dataAddr, 0); err != nil {
		t.Fatal(err)
	}
	user := u32At(mm.mf.Bytes(memfileRange(mm.pages[dataAddr].off)), 0)
	const n = 20000
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range n {
			mm.ReadModifyWriteU32(dataAddr, func(v uint32) uint32 { return v + 1 })
		}
	}()
	go func() {
		defer wg.Done()
		for range n {
			atomic.AddUint32(user, 1)
		}
	}()
	wg.Wait()
	if got, _ := mm.LoadU32(dataAddr); got != 2*n {
		t.Errorf("counter = %d, want %d", got, 2*n)
	}
}

package vmm

import (
	"testing"

	"github.com/ringbox/ringbox/platform/memfile"
)

func newTestMemfile(t *testing.T, size uint64) *memfile.MemoryFile {
	t.Helper()
	mf, err := memfile.New("vmm-test", size)
	if err != nil {
		t.Fatalf("memfile.New: %v", err)
	}
	t.Cleanup(func() { mf.Close() })
	return mf
}

func alloc(t *testing.T, mf *memfile.MemoryFile, n uint64) memfile.FileRange {
	t.Helper()
	fr, err := mf.Allocate(n)
	if err != nil {
		t.Fatalf("Allocate(%d): %v", n, err)
	}
	return fr
}

func TestIndex(t *testing.T) {
	for _, c := range []struct {
		va    uint64
		level int
		want  int
	}{
		{0x0000_7fff_ffff_f000, 4, 255},
		{0x0000_7fff_ffff_f000, 1, 511},
		{KernelBase, 4, 511},
		{KernelBase, 3, 0},
		{0x40_0000, 2, 2},
		{0x40_3000, 1, 3},
		{0x80_0000_0000, 4, 1},
	} {
		if got := index(c.va, c.level); got != c.want {
			t.Errorf("index(%#x, %d) = %d, want %d", c.va, c.level, got, c.want)
		}
	}
}

func TestLeafFlags(t *testing.T) {
	for _, c := range []struct {
		write, exec, user bool
		want              uint64
	}{
		{false, false, true, ptePresent | pteAccessed | pteUser | pteNX},
		{true, false, true, ptePresent | pteAccessed | pteUser | pteNX | pteWrite | pteDirty},
		{false, true, true, ptePresent | pteAccessed | pteUser},
		{true, true, false, ptePresent | pteAccessed | pteWrite | pteDirty},
	} {
		if got := uint64(leafFlags(c.write, c.exec, c.user)); got != c.want {
			t.Errorf("leafFlags(w=%v, x=%v, u=%v) = %#x, want %#x", c.write, c.exec, c.user, got, c.want)
		}
	}
}

func TestMapLookupUnmap(t *testing.T) {
	mf := newTestMemfile(t, 16<<20)
	pt, err := newPageTables(mf, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := alloc(t, mf, 4)
	// Straddle a 2 MiB boundary so that two page tables are involved.
	const va = 0x3f_e000
	rw := leafFlags(true, false, true)
	if _, err := pt.mapRange(va, data, rw); err != nil {
		t.Fatalf("mapRange: %v", err)
	}
	if got, want := pt.tables, 1+1+1+2; got != want {
		t.Errorf("tables after map = %d, want %d (PML4, PDPT, PD, 2 PTs)", got, want)
	}
	for i := uint64(0); i < 4; i++ {
		got, ok := pt.translate(va + i*pageSize + 0x123)
		if want := data.Start + i*pageSize + 0x123; !ok || got != want {
			t.Errorf("translate(page %d) = %#x, %v, want %#x, true", i, got, ok, want)
		}
		if got := pt.lookup(va+i*pageSize) &^ pteAddrMask; got != uint64(rw) {
			t.Errorf("flags of page %d = %#x, want %#x", i, got, uint64(rw))
		}
	}
	if _, ok := pt.translate(va - pageSize); ok {
		t.Errorf("page below the range is mapped")
	}
	if _, ok := pt.translate(va + 4*pageSize); ok {
		t.Errorf("page above the range is mapped")
	}

	// Unmapping the first two pages empties the first page table.
	cleared, freed := pt.unmap(va, 2*pageSize)
	if !cleared {
		t.Errorf("unmap of mapped pages reported nothing cleared")
	}
	if got, want := len(freed), 1; got != want {
		t.Errorf("unmap freed %d tables, want %d", got, want)
	}
	freeTables(mf, freed)
	if _, ok := pt.translate(va); ok {
		t.Errorf("unmapped page still translates")
	}
	if _, ok := pt.translate(va + 2*pageSize); !ok {
		t.Errorf("page outside the unmapped range was lost")
	}
	// Unmapping the rest reclaims every table below the root.
	if _, freed = pt.unmap(0, userHalfEnd); len(freed) != 3 {
		t.Errorf("second unmap freed %d tables, want 3 (PT, PD, PDPT)", len(freed))
	}
	freeTables(mf, freed)
	if got, want := pt.tables, 1; got != want {
		t.Errorf("tables after full unmap = %d, want %d", got, want)
	}
	if cleared, _ := pt.unmap(va, pageSize); cleared {
		t.Errorf("unmap of an empty range reported a cleared entry")
	}
	before := mf.Usage()
	pt.release()
	if got, want := mf.Usage(), before-pageSize; got != want {
		t.Errorf("usage after release = %d, want %d", got, want)
	}
}

func TestMapNarrowing(t *testing.T) {
	mf := newTestMemfile(t, 4<<20)
	pt, err := newPageTables(mf, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := alloc(t, mf, 1), alloc(t, mf, 1)
	const va = 0x1000_0000
	ro, rw, rx := leafFlags(false, false, true), leafFlags(true, false, true), leafFlags(false, true, true)
	for _, c := range []struct {
		name   string
		fr     memfile.FileRange
		flags  pteFlags
		narrow bool
	}{
		{"first map", a, ro, false},
		{"same again", a, ro, false},
		{"add write", a, rw, false},
		{"drop write", a, ro, true},
		{"add exec", a, rx, false},
		{"drop exec", a, ro, true},
		{"other page", b, ro, true},
	} {
		got, err := pt.mapRange(va, c.fr, c.flags)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.narrow {
			t.Errorf("%s: narrowed = %v, want %v", c.name, got, c.narrow)
		}
	}
}

func TestUpperHalfShared(t *testing.T) {
	mf := newTestMemfile(t, 4<<20)
	kernel, err := newPageTables(mf, 0)
	if err != nil {
		t.Fatal(err)
	}
	code := alloc(t, mf, 1)
	if _, err := kernel.mapRange(CodeVA, code, leafFlags(false, true, false)); err != nil {
		t.Fatal(err)
	}
	upper := loadPTE(kernel.entry(kernel.root, kernelPML4Index))
	if upper&pteUser != 0 {
		t.Errorf("upper PML4 entry %#x is user accessible", upper)
	}
	var spaces []*pageTables
	for i := 0; i < 2; i++ {
		pt, err := newPageTables(mf, upper)
		if err != nil {
			t.Fatal(err)
		}
		spaces = append(spaces, pt)
		got, ok := pt.translate(CodeVA + 8)
		if want := code.Start + 8; !ok || got != want {
			t.Errorf("space %d: translate(CodeVA) = %#x, %v, want %#x", i, got, ok, want)
		}
		if e := pt.lookup(CodeVA); e&pteUser != 0 || e&pteWrite != 0 || e&pteNX != 0 {
			t.Errorf("space %d: code entry %#x, want supervisor read-only executable", i, e)
		}
	}
	// A user unmap of everything must leave the shared half alone.
	_, freed := spaces[0].unmap(0, ^uint64(0))
	if len(freed) != 0 {
		t.Errorf("unmap of everything freed %d tables of the shared half", len(freed))
	}
	if _, ok := spaces[1].translate(CodeVA); !ok {
		t.Errorf("upper half lost after a user unmap")
	}
	if _, ok := spaces[0].translate(CodeVA); !ok {
		t.Errorf("upper half lost in the unmapped space")
	}
}

func TestUserIntermediateFlags(t *testing.T) {
	mf := newTestMemfile(t, 4<<20)
	pt, err := newPageTables(mf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pt.mapRange(0x40_0000, alloc(t, mf, 1), leafFlags(false, false, true)); err != nil {
		t.Fatal(err)
	}
	table := pt.root
	for level := levelsTotal; level > 1; level-- {
		e := loadPTE(pt.entry(table, index(0x40_0000, level)))
		if want := uint64(ptePresent | pteWrite | pteUser); e&want != want || e&pteNX != 0 {
			t.Errorf("level %d entry %#x, want P|RW|U and no NX", level, e)
		}
		table = e & pteAddrMask
	}
}

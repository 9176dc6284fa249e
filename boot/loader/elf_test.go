package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// testELF is an ELF64 file under construction: a header, a program header
// table at e_phoff and arbitrary contents at given offsets.
type testELF struct {
	hdr   elf.Header64
	progs []elf.Prog64
	size  int
	data  map[int][]byte
	// raw, when set, replaces everything with these bytes.
	raw []byte
}

// newTestELF returns a valid static ET_EXEC: PT_PHDR, a text and a data
// segment (with .bss), and PT_GNU_STACK RW.
func newTestELF() *testELF {
	e := &testELF{size: 0x300, data: map[int][]byte{}}
	copy(e.hdr.Ident[:], elf.ELFMAG)
	e.hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	e.hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	e.hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	e.hdr.Type = uint16(elf.ET_EXEC)
	e.hdr.Machine = uint16(elf.EM_X86_64)
	e.hdr.Version = uint32(elf.EV_CURRENT)
	e.hdr.Entry = 0x400100
	e.hdr.Phoff = 64
	e.hdr.Ehsize = 64
	e.hdr.Phentsize = 56
	e.progs = []elf.Prog64{
		{Type: uint32(elf.PT_PHDR), Flags: uint32(elf.PF_R), Off: 64, Vaddr: 0x400040, Filesz: 4 * 56, Memsz: 4 * 56, Align: 8},
		{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0, Vaddr: 0x400000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000},
		{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_W), Off: 0x200, Vaddr: 0x401200, Filesz: 0x10, Memsz: 0x100, Align: 0x1000},
		{Type: uint32(elf.PT_GNU_STACK), Flags: uint32(elf.PF_R | elf.PF_W), Align: 16},
	}
	return e
}

// load returns the index in progs of the n-th PT_LOAD.
func (e *testELF) load(n int) *elf.Prog64 {
	for i := range e.progs {
		if elf.ProgType(e.progs[i].Type) == elf.PT_LOAD {
			if n == 0 {
				return &e.progs[i]
			}
			n--
		}
	}
	panic("no such PT_LOAD")
}

func (e *testELF) bytes() []byte {
	if e.raw != nil {
		return e.raw
	}
	e.hdr.Phnum = uint16(len(e.progs))
	var b bytes.Buffer
	mustWrite(&b, e.hdr)
	out := make([]byte, e.size)
	copy(out, b.Bytes())
	b.Reset()
	mustWrite(&b, e.progs)
	if e.hdr.Phoff < uint64(len(out)) {
		copy(out[e.hdr.Phoff:], b.Bytes())
	}
	for off, d := range e.data {
		copy(out[off:], d)
	}
	return out
}

func mustWrite(b *bytes.Buffer, v any) {
	if err := binary.Write(b, binary.LittleEndian, v); err != nil {
		panic(err)
	}
}

func parseBytes(b []byte) (*Image, error) {
	return Parse(bytes.NewReader(b), int64(len(b)))
}

func TestParseValid(t *testing.T) {
	text := Segment{Vaddr: 0x400000, Offset: 0, Filesz: 0x200, Memsz: 0x200, Read: true, Exec: true}
	data := Segment{Vaddr: 0x401200, Offset: 0x200, Filesz: 0x10, Memsz: 0x100, Read: true, Write: true}
	tests := []struct {
		name   string
		mutate func(e *testELF)
		want   Image
	}{{
		name:   "static exec",
		mutate: func(e *testELF) {},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000},
	}, {
		name: "executable stack",
		mutate: func(e *testELF) {
			e.progs[3].Flags |= uint32(elf.PF_X)
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000, ExecStack: true},
	}, {
		name: "no PT_GNU_STACK means a non-executable stack",
		mutate: func(e *testELF) {
			e.progs[3].Type = uint32(elf.PT_NULL)
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000},
	}, {
		name: "phdr from PT_PHDR when no PT_LOAD holds it",
		mutate: func(e *testELF) {
			e.size = 0x2000
			e.hdr.Phoff = 0x1000
			e.progs[0].Off, e.progs[0].Vaddr = 0x1000, 0x500000
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x500000, Phentsize: 56, Phnum: 4, Align: 0x1000},
	}, {
		name: "phdr from the PT_LOAD, not a disagreeing PT_PHDR",
		mutate: func(e *testELF) {
			e.progs[0].Vaddr = 0x123000
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000},
	}, {
		name: "empty PT_LOAD is skipped",
		mutate: func(e *testELF) {
			e.progs[0] = elf.Prog64{Type: uint32(elf.PT_LOAD), Vaddr: 0x900000, Off: 0}
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000},
	}, {
		name: "static-PIE with 2 MiB alignment",
		mutate: func(e *testELF) {
			e.hdr.Type = uint16(elf.ET_DYN)
			e.hdr.Entry = 0x100
			e.progs[0].Vaddr = 0x40
			e.load(0).Vaddr = 0
			e.load(0).Align = 0x200000
			e.load(1).Vaddr = 0x1200
		},
		want: Image{Type: elf.ET_DYN, Entry: 0x100,
			Segments: []Segment{
				{Vaddr: 0, Offset: 0, Filesz: 0x200, Memsz: 0x200, Read: true, Exec: true},
				{Vaddr: 0x1200, Offset: 0x200, Filesz: 0x10, Memsz: 0x100, Read: true, Write: true},
			},
			PhdrVaddr: 0x40, Phentsize: 56, Phnum: 4, Align: 0x200000},
	}, {
		name: "non-power-of-two alignment is ignored",
		mutate: func(e *testELF) {
			e.load(0).Align = 0x3000
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000},
	}, {
		name: "dynamic",
		mutate: func(e *testELF) {
			e.progs[3] = elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 0x280, Filesz: 9}
			e.data[0x280] = []byte("/lib/ld\x00\x00")
		},
		want: Image{Type: elf.ET_EXEC, Entry: 0x400100, Segments: []Segment{text, data},
			PhdrVaddr: 0x400040, Phentsize: 56, Phnum: 4, Align: 0x1000, Interp: "/lib/ld"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestELF()
			tt.mutate(e)
			got, err := parseBytes(e.bytes())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse:\ngot  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	valid := newTestELF().bytes()
	tests := []struct {
		name    string
		mutate  func(e *testELF)
		wantErr error
		wantMsg string
	}{
		{"empty", func(e *testELF) { e.raw = []byte{} }, ErrNotELF, "empty file"},
		{"script", func(e *testELF) { e.raw = []byte("#!/bin/sh -e\necho hi\n") }, ErrNotELF, `a script ("#!/bin/sh -e")`},
		{"text", func(e *testELF) { e.raw = []byte("hello world\n") }, ErrNotELF, "a text file"},
		{"binary junk", func(e *testELF) { e.raw = []byte{0xde, 0xad, 0xbe, 0xef, 0, 1} }, ErrNotELF, "de ad be ef 00 01"},
		{"magic only", func(e *testELF) { e.raw = []byte("\x7fELF\x02\x01\x01") }, ErrBadELF, "truncated ELF identification"},
		{"truncated header", func(e *testELF) { e.raw = valid[:40] }, ErrBadELF, "truncated ELF header"},
		{"ELF32 i386", func(e *testELF) {
			e.hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS32)
			e.hdr.Machine = uint16(elf.EM_386)
		}, ErrWrongArch, "ELF32 i386"},
		{"aarch64", func(e *testELF) { e.hdr.Machine = uint16(elf.EM_AARCH64) }, ErrWrongArch, "ELF64 aarch64"},
		{"big-endian", func(e *testELF) {
			e.hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
			e.hdr.Machine = uint16(elf.EM_PPC64) << 8 // as a big-endian reader sees it
		}, ErrWrongArch, "big-endian ELF64 ppc64"},
		{"bad class", func(e *testELF) { e.hdr.Ident[elf.EI_CLASS] = 7 }, ErrBadELF, "invalid class 7"},
		{"bad byte order", func(e *testELF) { e.hdr.Ident[elf.EI_DATA] = 0 }, ErrBadELF, "invalid byte order"},
		{"bad ident version", func(e *testELF) { e.hdr.Ident[elf.EI_VERSION] = 2 }, ErrBadELF, "EI_VERSION"},
		{"bad version", func(e *testELF) { e.hdr.Version = 0 }, ErrBadELF, "e_version 0"},
		{"relocatable", func(e *testELF) { e.hdr.Type = uint16(elf.ET_REL) }, ErrBadELF, "ET_REL is not an executable"},
		{"core", func(e *testELF) { e.hdr.Type = uint16(elf.ET_CORE) }, ErrBadELF, "ET_CORE"},
		{"phentsize", func(e *testELF) { e.hdr.Phentsize = 32 }, ErrBadELF, "e_phentsize 32"},
		{"no phdrs", func(e *testELF) { e.progs = nil }, ErrBadELF, "e_phnum 0"},
		{"huge phnum", func(e *testELF) {
			e.progs = make([]elf.Prog64, 1171)
			e.size = 64 + 1171*56
		}, ErrBadELF, "e_phnum 1171"},
		{"phdrs past EOF", func(e *testELF) { e.hdr.Phoff = 0x2f0 }, ErrBadELF, "program header table"},
		{"phoff overflow", func(e *testELF) { e.hdr.Phoff = 1<<64 - 8 }, ErrBadELF, "program header table"},
		{"segment outside file", func(e *testELF) { e.load(1).Filesz = 0x1000; e.load(1).Memsz = 0x1000 }, ErrBadELF, "outside the file"},
		{"segment offset overflow", func(e *testELF) { e.load(1).Off = 1<<64 - 8 }, ErrBadELF, "outside the file"},
		{"filesz > memsz", func(e *testELF) { e.load(1).Memsz = 0x8 }, ErrBadELF, "p_filesz 0x10 > p_memsz 0x8"},
		{"overlap", func(e *testELF) { e.load(0).Memsz = 0x300; e.load(1).Vaddr = 0x400200 }, ErrBadELF, "overlaps"},
		{"descending", func(e *testELF) { e.load(1).Vaddr = 0x300200 }, ErrBadELF, "overlaps or precedes"},
		{"incongruent", func(e *testELF) { e.load(1).Vaddr = 0x401300 }, ErrBadELF, "differ modulo the page size"},
		{"vaddr overflow", func(e *testELF) { e.load(1).Vaddr = 1<<64 - 0xe00; e.load(1).Memsz = 0x1000 }, ErrBadELF, "beyond the user address space"},
		{"beyond user space", func(e *testELF) { e.load(1).Vaddr = 0x7ffffffff200 }, ErrBadELF, "beyond the user address space"},
		{"entry outside", func(e *testELF) { e.hdr.Entry = 0x402000 }, ErrBadELF, "entry point 0x402000"},
		{"no PT_LOAD", func(e *testELF) {
			e.load(1).Type = uint32(elf.PT_NULL)
			e.load(0).Type = uint32(elf.PT_NULL)
		}, ErrBadELF, "no non-empty PT_LOAD"},
		{"interp not terminated", func(e *testELF) {
			e.progs[3] = elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 0x280, Filesz: 4}
			e.data[0x280] = []byte("/lib")
		}, ErrBadELF, "not NUL-terminated"},
		{"interp empty", func(e *testELF) {
			e.progs[3] = elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 0x280, Filesz: 4}
		}, ErrBadELF, "empty path"},
		{"interp too long", func(e *testELF) {
			e.progs[3] = elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 0, Filesz: 4097}
			e.size = 8192
		}, ErrBadELF, "p_filesz 4097"},
		{"interp outside file", func(e *testELF) {
			e.progs[3] = elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 0x2f0, Filesz: 0x20}
		}, ErrBadELF, "PT_INTERP 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestELF()
			tt.mutate(e)
			img, err := parseBytes(e.bytes())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse: got %+v, %v; want error %v", img, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Parse error: got %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestRequireStatic(t *testing.T) {
	tests := []struct {
		interp  string
		wantErr error
	}{
		{"", nil},
		{"/lib64/ld-linux-x86-64.so.2", ErrDynamic},
	}
	for _, tt := range tests {
		img := &Image{Interp: tt.interp}
		err := img.RequireStatic()
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("RequireStatic with interpreter %q: got %v, want %v", tt.interp, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tt.interp) {
			t.Errorf("RequireStatic: got %q, want it to name %q", err, tt.interp)
		}
	}
}

func TestBoundsBiasBrk(t *testing.T) {
	const mmapBase = 0x7ffff7fff000
	tests := []struct {
		name             string
		img              Image
		wantLo, wantHi   uint64
		wantBias, wantBr uint64
	}{{
		name: "exec",
		img: Image{Type: elf.ET_EXEC, Align: 0x1000, Segments: []Segment{
			{Vaddr: 0x400000, Memsz: 0x1234}, {Vaddr: 0x401e10, Memsz: 0x2000}}},
		wantLo: 0x400000, wantHi: 0x404000, wantBias: 0, wantBr: 0x404000,
	}, {
		// The numbers of a gcc -static-pie binary measured on Linux 6.18
		// under setarch -R: loaded at 0x7ffff7f47000, heap at
		// 0x555555555000.
		name: "static-PIE below mmap_base",
		img: Image{Type: elf.ET_DYN, Align: 0x1000, Segments: []Segment{
			{Vaddr: 0, Memsz: 0x8020}, {Vaddr: 0xac518, Memsz: 0xb528}}},
		wantLo: 0, wantHi: 0xb8000, wantBias: 0x7ffff7f47000, wantBr: 0x555555555000,
	}, {
		name: "static-PIE aligned to 2 MiB",
		img: Image{Type: elf.ET_DYN, Align: 0x200000, Segments: []Segment{
			{Vaddr: 0, Memsz: 0x8020}, {Vaddr: 0xac518, Memsz: 0xb528}}},
		wantLo: 0, wantHi: 0xb8000, wantBias: 0x7ffff7e00000, wantBr: 0x555555555000,
	}, {
		name: "PIE at ELF_ET_DYN_BASE",
		img: Image{Type: elf.ET_DYN, Align: 0x1000, Interp: "/lib/ld.so", Segments: []Segment{
			{Vaddr: 0, Memsz: 0x8020}, {Vaddr: 0xac518, Memsz: 0xb528}}},
		wantLo: 0, wantHi: 0xb8000, wantBias: 0x555555554000, wantBr: 0x55555560c000,
	}, {
		name: "ET_DYN linked at a non-zero address",
		img: Image{Type: elf.ET_DYN, Align: 0x1000, Segments: []Segment{
			{Vaddr: 0x10000, Memsz: 0x1000}}},
		wantLo: 0x10000, wantHi: 0x11000, wantBias: 0x7ffff7ffe000 - 0x10000, wantBr: 0x555555555000,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.img.Bounds()
			if lo != tt.wantLo || hi != tt.wantHi {
				t.Errorf("Bounds: got [%#x, %#x), want [%#x, %#x)", lo, hi, tt.wantLo, tt.wantHi)
			}
			bias := tt.img.Bias(mmapBase)
			if bias != tt.wantBias {
				t.Errorf("Bias(%#x): got %#x, want %#x", mmapBase, bias, tt.wantBias)
			}
			if got := tt.img.Brk(bias); got != tt.wantBr {
				t.Errorf("Brk(%#x): got %#x, want %#x", bias, got, tt.wantBr)
			}
		})
	}
}

func TestELFETDynBase(t *testing.T) {
	// DEFAULT_MAP_WINDOW / 3 * 2 as Linux computes it; the value is the
	// one Linux 6.x shows for a PIE under setarch -R (0x555555554000 after
	// ELF_PAGESTART).
	if got, want := uint64(ELFETDynBase), uint64(0x555555554aaa); got != want {
		t.Errorf("ELFETDynBase: got %#x, want %#x", got, want)
	}
}

// TestParseRandom feeds random mutations of a valid file to Parse: it must
// never panic, and what it accepts must satisfy its documented guarantees.
func TestParseRandom(t *testing.T) {
	valid := newTestELF().bytes()
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for i := 0; i < 20000; i++ {
		b := bytes.Clone(valid)
		for n := rng.IntN(4) + 1; n > 0; n-- {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		if rng.IntN(8) == 0 {
			b = b[:rng.IntN(len(b))]
		}
		img, err := parseBytes(b)
		if err != nil {
			if !errors.Is(err, ErrNotELF) && !errors.Is(err, ErrWrongArch) && !errors.Is(err, ErrBadELF) {
				t.Fatalf("Parse(%x): got error %v, want a sentinel", b, err)
			}
			continue
		}
		accepted++
		checkInvariants(t, img, int64(len(b)))
	}
	if accepted == 0 {
		t.Errorf("Parse accepted none of the mutations; the test is not exercising success paths")
	}
}

// FuzzParse is TestParseRandom for go test -fuzz.
func FuzzParse(f *testing.F) {
	f.Add(newTestELF().bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := parseBytes(b)
		if err == nil {
			checkInvariants(t, img, int64(len(b)))
		}
	})
}

func checkInvariants(t *testing.T, img *Image, size int64) {
	t.Helper()
	if len(img.Segments) == 0 {
		t.Fatalf("Parse accepted an image without segments: %+v", img)
	}
	inside := false
	for i, s := range img.Segments {
		if s.Filesz > s.Memsz || s.Offset+s.Filesz > uint64(size) || s.Vaddr%4096 != s.Offset%4096 || s.End() < s.Vaddr {
			t.Fatalf("Parse accepted a bad segment %d: %+v", i, s)
		}
		if i > 0 && s.Vaddr < img.Segments[i-1].End() {
			t.Fatalf("Parse accepted overlapping segments: %+v", img.Segments)
		}
		inside = inside || img.Entry >= s.Vaddr && img.Entry < s.End()
	}
	if !inside {
		t.Fatalf("Parse accepted an entry outside the segments: %+v", img)
	}
}

package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/ringbox/ringbox/arch"
)

// Limits from Linux's ELF loader (fs/binfmt_elf.c).
const (
	// maxPhdrBytes bounds the program header table:
	// Linux: fs/binfmt_elf.c:load_elf_phdrs() rejects e_phnum *
	// sizeof(struct elf_phdr) == 0 or > 65536, which caps e_phnum at 1170.
	maxPhdrBytes = 65536

	// maxInterpLen bounds PT_INTERP's p_filesz (PATH_MAX, NUL included);
	// Linux also rejects p_filesz < 2 (load_elf_binary()).
	maxInterpLen = 4096

	// headLen is how much of the file Parse reads to check the ELF header
	// and, for non-ELF files, to describe what they are.
	headLen = 128
)

// Segment is one PT_LOAD program header: the file bytes [Offset,
// Offset+Filesz) appear at the link-time address Vaddr (add Image.Bias for
// ET_DYN), followed by Memsz-Filesz zero bytes (.bss).
//
// Linux maps each segment from ELF_PAGESTART(Vaddr), file offset
// Offset-ELF_PAGEOFFSET(Vaddr), which Parse guarantees is page aligned; it
// zeroes the rest of the page after Vaddr+Filesz (padzero()) and maps
// anonymous pages up to Vaddr+Memsz (Linux: fs/binfmt_elf.c:elf_load()).
// Two segments never overlap in bytes, but the last page of one may be the
// first page of the next (GNU ld -N does this); Linux's later mapping
// replaces the earlier one on that page.
type Segment struct {
	Vaddr  uint64 // p_vaddr
	Offset uint64 // p_offset
	Filesz uint64 // p_filesz
	Memsz  uint64 // p_memsz, at least Filesz

	// Read, Write and Exec are PF_R, PF_W and PF_X.
	// TODO: Linux also maps PF_X segments readable on x86 (no execute-only
	// pages without PKEYs) and honours READ_IMPLIES_EXEC personalities;
	// the caller decides the page protections.
	Read, Write, Exec bool
}

// End returns Vaddr+Memsz, the end of the segment in memory (unbiased).
func (s Segment) End() uint64 { return s.Vaddr + s.Memsz }

// Image is what the kernel needs from an executable's ELF headers to load
// it. Addresses are link-time addresses: for ET_DYN they are relative to the
// load bias chosen with Bias.
type Image struct {
	// Type is elf.ET_EXEC (fixed addresses) or elf.ET_DYN (position
	// independent: static-PIE, or PIE with an interpreter).
	Type elf.Type

	// Entry is e_entry, inside one of Segments.
	Entry uint64

	// Segments are the non-empty PT_LOAD segments in ascending address
	// order, without overlap. There is at least one.
	Segments []Segment

	// PhdrVaddr is the address of the program header table in memory, for
	// AT_PHDR: found as Linux does, from the PT_LOAD whose file bytes hold
	// e_phoff; zero if no segment holds it and there is no PT_PHDR.
	PhdrVaddr uint64

	// Phentsize and Phnum are e_phentsize and e_phnum, for AT_PHENT and
	// AT_PHNUM.
	Phentsize, Phnum uint64

	// Interp is the PT_INTERP path (the dynamic linker), "" for a static
	// program. See RequireStatic.
	Interp string

	// ExecStack reports a PT_GNU_STACK with PF_X. Without PT_GNU_STACK an
	// x86-64 program gets a non-executable stack (Linux:
	// arch/x86/include/asm/elf.h:elf_read_implies_exec() only applies to
	// 32-bit programs).
	ExecStack bool

	// Align is the largest power-of-two p_align of the PT_LOAD segments, at
	// least the page size; Bias aligns ET_DYN images to it (Linux:
	// fs/binfmt_elf.c:maximum_alignment()).
	Align uint64
}

// Parse reads and validates the ELF header and program headers of the
// executable r of the given size. It accepts x86-64 ELF64 little-endian
// ET_EXEC and ET_DYN files and is stricter than Linux where Linux would
// accept a file that cannot load correctly (segments outside the file,
// overlapping segments, an entry point outside every segment).
//
// Errors wrap ErrNotELF, ErrWrongArch or ErrBadELF, or are I/O errors from
// r.
func Parse(r io.ReaderAt, size int64) (*Image, error) {
	if size < 0 {
		return nil, fmt.Errorf("loader: negative file size %d", size)
	}
	head := make([]byte, min(size, headLen))
	if err := readFull(r, head, 0); err != nil {
		return nil, fmt.Errorf("loader: reading ELF header: %w", err)
	}
	if !bytes.HasPrefix(head, []byte(elf.ELFMAG)) {
		return nil, notELF(head)
	}
	if err := checkIdent(head); err != nil {
		return nil, err
	}
	if size < int64(binary.Size(elf.Header64{})) {
		return nil, badELF("truncated ELF header: file is %d bytes", size)
	}
	var eh elf.Header64
	if _, err := binary.Decode(head, binary.LittleEndian, &eh); err != nil {
		return nil, fmt.Errorf("loader: decoding ELF header: %w", err)
	}
	if m := elf.Machine(eh.Machine); m != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: ELF64 %s (want ELF64 x86-64)", ErrWrongArch, machineName(m))
	}
	if v := elf.Version(eh.Version); v != elf.EV_CURRENT {
		return nil, badELF("e_version %d, want %d", v, elf.EV_CURRENT)
	}
	img := &Image{
		Type:      elf.Type(eh.Type),
		Entry:     eh.Entry,
		Phentsize: uint64(eh.Phentsize),
		Phnum:     uint64(eh.Phnum),
		Align:     arch.PageSize,
	}
	if img.Type != elf.ET_EXEC && img.Type != elf.ET_DYN {
		return nil, badELF("e_type %v is not an executable (want ET_EXEC or ET_DYN)", img.Type)
	}
	progs, err := readPhdrs(r, size, &eh)
	if err != nil {
		return nil, err
	}
	if err := img.scan(r, size, &eh, progs); err != nil {
		return nil, err
	}
	return img, nil
}

// checkIdent checks e_ident past the magic: the class, byte order and
// version. Linux's binfmt_elf checks only the machine, which implies the
// class; a wrong class or byte order is a wrong architecture here.
func checkIdent(head []byte) error {
	if len(head) < elf.EI_NIDENT {
		return badELF("truncated ELF identification: file is %d bytes", len(head))
	}
	class := elf.Class(head[elf.EI_CLASS])
	data := elf.Data(head[elf.EI_DATA])
	var order binary.ByteOrder
	switch data {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return badELF("invalid byte order %d in e_ident[EI_DATA]", data)
	}
	// e_machine is at offset 18 in both classes.
	var machine string
	if len(head) >= 20 {
		machine = " " + machineName(elf.Machine(order.Uint16(head[18:])))
	}
	switch class {
	case elf.ELFCLASS64:
	case elf.ELFCLASS32:
		return fmt.Errorf("%w: ELF32%s (want ELF64 x86-64)", ErrWrongArch, machine)
	default:
		return badELF("invalid class %d in e_ident[EI_CLASS]", class)
	}
	if data != elf.ELFDATA2LSB {
		return fmt.Errorf("%w: big-endian ELF64%s (want little-endian ELF64 x86-64)", ErrWrongArch, machine)
	}
	if v := elf.Version(head[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return badELF("e_ident[EI_VERSION] %d, want %d", v, elf.EV_CURRENT)
	}
	return nil
}

// readPhdrs reads the program header table after checking its size and
// position as Linux's load_elf_phdrs() does, and that it lies in the file.
func readPhdrs(r io.ReaderAt, size int64, eh *elf.Header64) ([]elf.Prog64, error) {
	entSize := uint64(binary.Size(elf.Prog64{}))
	if uint64(eh.Phentsize) != entSize {
		return nil, badELF("e_phentsize %d, want %d", eh.Phentsize, entSize)
	}
	tableSize := entSize * uint64(eh.Phnum)
	if eh.Phnum == 0 {
		return nil, badELF("no program headers (e_phnum 0)")
	}
	if tableSize > maxPhdrBytes {
		return nil, badELF("e_phnum %d: program header table of %d bytes exceeds %d", eh.Phnum, tableSize, maxPhdrBytes)
	}
	if end, carry := bits.Add64(eh.Phoff, tableSize, 0); carry != 0 || end > uint64(size) {
		return nil, badELF("program header table [%#x, %#x) outside the file of %d bytes", eh.Phoff, eh.Phoff+tableSize, size)
	}
	buf := make([]byte, tableSize)
	if err := readFull(r, buf, int64(eh.Phoff)); err != nil {
		return nil, fmt.Errorf("loader: reading program headers: %w", err)
	}
	progs := make([]elf.Prog64, eh.Phnum)
	if _, err := binary.Decode(buf, binary.LittleEndian, progs); err != nil {
		return nil, fmt.Errorf("loader: decoding program headers: %w", err)
	}
	return progs, nil
}

// scan fills img from the program headers, validating each segment.
// Linux: fs/binfmt_elf.c:load_elf_binary().
func (img *Image) scan(r io.ReaderAt, size int64, eh *elf.Header64, progs []elf.Prog64) error {
	havePhdr := false
	var ptPhdr *elf.Prog64
	for i := range progs {
		p := &progs[i]
		switch elf.ProgType(p.Type) {
		case elf.PT_LOAD:
			seg, err := checkLoad(i, p, size)
			if err != nil {
				return err
			}
			if seg.Memsz == 0 {
				// Nothing to map; Linux maps nothing either.
				continue
			}
			if n := len(img.Segments); n > 0 {
				prev := img.Segments[n-1]
				// "Loadable segment entries in the program header table
				// appear in ascending order, sorted on the p_vaddr
				// member." - ELF gABI, Program Header.
				if seg.Vaddr < prev.End() {
					return badELF("PT_LOAD %d [%#x, %#x) overlaps or precedes the previous one [%#x, %#x)", i, seg.Vaddr, seg.End(), prev.Vaddr, prev.End())
				}
			}
			img.Segments = append(img.Segments, seg)
			if p.Align > img.Align && p.Align&(p.Align-1) == 0 {
				img.Align = p.Align
			}
			// The segment whose file bytes hold the program headers gives
			// AT_PHDR; Linux's loop lets the last such segment win.
			if p.Off <= eh.Phoff && eh.Phoff-p.Off < p.Filesz {
				img.PhdrVaddr = eh.Phoff - p.Off + p.Vaddr
				havePhdr = true
			}
		case elf.PT_INTERP:
			if img.Interp != "" {
				// Linux reads the first PT_INTERP and ignores the rest.
				continue
			}
			interp, err := readInterp(r, size, i, p)
			if err != nil {
				return err
			}
			img.Interp = interp
		case elf.PT_GNU_STACK:
			// Linux: the last PT_GNU_STACK wins.
			img.ExecStack = elf.ProgFlag(p.Flags)&elf.PF_X != 0
		case elf.PT_PHDR:
			ptPhdr = p
		}
	}
	if len(img.Segments) == 0 {
		return badELF("no non-empty PT_LOAD segment")
	}
	if !havePhdr && ptPhdr != nil {
		// TODO: Linux (since 5.18) reports AT_PHDR = load bias when no
		// PT_LOAD holds e_phoff; PT_PHDR's address is what a program's
		// own startup code would compute, so ringbox prefers it.
		img.PhdrVaddr = ptPhdr.Vaddr
	}
	for _, s := range img.Segments {
		if img.Entry >= s.Vaddr && img.Entry < s.End() {
			return nil
		}
	}
	return badELF("entry point %#x is outside every PT_LOAD segment", img.Entry)
}

// checkLoad validates PT_LOAD number i and converts it.
func checkLoad(i int, p *elf.Prog64, size int64) (Segment, error) {
	flags := elf.ProgFlag(p.Flags)
	seg := Segment{
		Vaddr:  p.Vaddr,
		Offset: p.Off,
		Filesz: p.Filesz,
		Memsz:  p.Memsz,
		Read:   flags&elf.PF_R != 0,
		Write:  flags&elf.PF_W != 0,
		Exec:   flags&elf.PF_X != 0,
	}
	if p.Filesz > p.Memsz {
		return seg, badELF("PT_LOAD %d: p_filesz %#x > p_memsz %#x", i, p.Filesz, p.Memsz)
	}
	if end, carry := bits.Add64(p.Off, p.Filesz, 0); carry != 0 || end > uint64(size) {
		return seg, badELF("PT_LOAD %d: file range [%#x, +%#x) outside the file of %d bytes", i, p.Off, p.Filesz, size)
	}
	// Linux: load_elf_binary() rejects p_memsz > TASK_SIZE or
	// p_vaddr+p_memsz beyond TASK_SIZE (for ET_DYN before the bias).
	if end, carry := bits.Add64(p.Vaddr, p.Memsz, 0); carry != 0 || end > arch.MaxUserAddress {
		return seg, badELF("PT_LOAD %d: memory range [%#x, +%#x) beyond the user address space end %#x", i, p.Vaddr, p.Memsz, uint64(arch.MaxUserAddress))
	}
	// elf_map() mmaps from p_offset - ELF_PAGEOFFSET(p_vaddr), which must be
	// page aligned.
	if p.Vaddr%arch.PageSize != p.Off%arch.PageSize {
		return seg, badELF("PT_LOAD %d: p_vaddr %#x and p_offset %#x differ modulo the page size", i, p.Vaddr, p.Off)
	}
	return seg, nil
}

// readInterp reads the PT_INTERP path.
// Linux: fs/binfmt_elf.c:load_elf_binary() checks the size and the final
// NUL.
func readInterp(r io.ReaderAt, size int64, i int, p *elf.Prog64) (string, error) {
	if p.Filesz < 2 || p.Filesz > maxInterpLen {
		return "", badELF("PT_INTERP %d: p_filesz %d outside [2, %d]", i, p.Filesz, maxInterpLen)
	}
	if end, carry := bits.Add64(p.Off, p.Filesz, 0); carry != 0 || end > uint64(size) {
		return "", badELF("PT_INTERP %d: [%#x, +%#x) outside the file of %d bytes", i, p.Off, p.Filesz, size)
	}
	buf := make([]byte, p.Filesz)
	if err := readFull(r, buf, int64(p.Off)); err != nil {
		return "", fmt.Errorf("loader: reading PT_INTERP: %w", err)
	}
	if buf[len(buf)-1] != 0 {
		return "", badELF("PT_INTERP %d: path is not NUL-terminated", i)
	}
	// Like Linux, use the C string: everything up to the first NUL.
	path, _, _ := bytes.Cut(buf, []byte{0})
	if len(path) == 0 {
		return "", badELF("PT_INTERP %d: empty path", i)
	}
	return string(path), nil
}

// readFull reads len(buf) bytes at off, accepting io.EOF with a full read
// as io.ReaderAt allows.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("short read at %#x: got %d of %d bytes: %w", off, n, len(buf), io.ErrUnexpectedEOF)
	}
	return err
}

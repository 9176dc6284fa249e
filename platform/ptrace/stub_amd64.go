package ptrace

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// The stub's place in every address space it serves. Everything here is
// reserved (Platform.ReservedRanges); the kernel's memory manager never hands
// it to the program and MapFile refuses it.
//
//	0x7ffffffff000 +---------------------------+ arch.MaxUserAddress
//	               | free for the program      | (the host put the stub's
//	               |                           |  own stack, vdso and vvar
//	               |                           |  up here; all unmapped
//	               |                           |  after exec)
//	stubEnd        +---------------------------+ 0x7ffb00000000
//	               | data page (r--):          | seccomp filter, sock_fprog,
//	               |                           | top = clone children's rsp
//	stubData       +---------------------------+
//	               | code page (r-x):          | ELF and program headers,
//	               |                           | then the stub code below
//	stubStart      +---------------------------+ 0x7ffaffffe000
//	               | free for the program      |
//	0              +---------------------------+
//
// Why not right below arch.MaxUserAddress: the host kernel randomizes the
// initial stack of every exec within the top 16 GiB of the address space
// (Linux: arch/x86/include/asm/elf.h STACK_RND_MASK, 22 bits of pages) and
// refuses to exec an ELF whose segments overlap it (MAP_FIXED_NOREPLACE in
// fs/binfmt_elf.c:elf_map()). The stub therefore ends 20 GiB below the top,
// clear of any stack placement.
const (
	stubEnd   = 0x7ffb00000000
	stubSize  = 2 * arch.PageSize
	stubStart = stubEnd - stubSize
	stubCode  = stubStart
	stubData  = stubStart + arch.PageSize
)

// Offsets of the stub's code inside the code page (after the ELF header
// and program headers, which take the first 232 bytes).
//
//	0x100 inject:  syscall              ; one injected system call
//	0x102          int3                 ; ... reports back with SIGTRAP
//	0x110 clone:   syscall              ; injected clone(CLONE_THREAD...)
//	0x112          test rax, rax
//	0x115          jz   wait            ; the child skips the int3
//	0x117          int3                 ; the parent reports back
//	0x118 wait:    mov  eax, SYS_pause  ; entry point; new threads idle
//	0x11d          syscall              ; here, untraced, until seized
//	0x11f          jmp  wait
const (
	codeOffInject = 0x100
	codeOffClone  = 0x110
	codeOffWait   = 0x118

	// stubInjectSyscall etc. are the addresses of the syscall
	// instructions; seccomp sees the address after each (the CPU's RIP
	// at entry, seccomp_data.instruction_pointer).
	stubInjectSyscall = stubCode + codeOffInject
	stubCloneSyscall  = stubCode + codeOffClone
	stubWaitLoop      = stubCode + codeOffWait
	stubWaitSyscall   = stubWaitLoop + 5
	syscallInsnLen    = 2
	// stubCloneTrap is the parent's rip after the clone site's int3.
	stubCloneTrap = stubCloneSyscall + 8
)

// stubCodeBytes are the instructions laid out above, keyed by offset.
var stubCodeBytes = []struct {
	off  int
	code []byte
}{
	{codeOffInject, []byte{0x0f, 0x05, 0xcc}},
	{codeOffClone, []byte{
		0x0f, 0x05, // syscall
		0x48, 0x85, 0xc0, // test rax, rax
		0x74, 0x01, // jz +1
		0xcc, // int3
	}},
	{codeOffWait, []byte{
		0xb8, unix.SYS_PAUSE, 0, 0, 0, // mov eax, SYS_pause
		0x0f, 0x05, // syscall
		0xeb, 0xf7, // jmp -9 (to wait)
	}},
}

// Layout of the data page.
const (
	dataOffFprog = 0 // struct sock_fprog
	// dataOffNoCore is a struct rlimit of zeros: RLIMIT_CORE 0, so a
	// stub the filter kills leaves no core file.
	dataOffNoCore = 0x20
	dataOffFilter = 0x40 // struct sock_filter[]
	// stubThreadStack is the rsp of clone children. They never touch the
	// stack (the wait loop only makes system calls and no signal handler
	// is ever installed), so all of them share the read-only top of the
	// data page; a stray push would fault and end the stub, not corrupt it.
	stubThreadStack = stubData + arch.PageSize
)

// stubFD is where the stub process finds the memory file: the only file
// descriptor it has.
const stubFD = 0

// buildStubELF returns the stub executable: a static ELF of two loadable
// pages at stubStart. Its code is stubCodeBytes; its data page holds the
// seccomp filter the control thread installs.
func buildStubELF() ([]byte, error) {
	img := make([]byte, stubSize)
	// int3 everywhere a stray jump could land.
	for i := range img[:arch.PageSize] {
		img[i] = 0xcc
	}
	var hdr bytes.Buffer
	phdrs := []elf.Prog64{
		{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 0, Vaddr: stubCode, Paddr: stubCode, Filesz: arch.PageSize, Memsz: arch.PageSize, Align: arch.PageSize},
		{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R), Off: arch.PageSize, Vaddr: stubData, Paddr: stubData, Filesz: arch.PageSize, Memsz: arch.PageSize, Align: arch.PageSize},
		// A non-executable stack, like every modern toolchain asks for.
		{Type: uint32(elf.PT_GNU_STACK), Flags: uint32(elf.PF_R | elf.PF_W), Align: 16},
	}
	eh := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     stubWaitLoop,
		Phoff:     uint64(binary.Size(elf.Header64{})),
		Ehsize:    uint16(binary.Size(elf.Header64{})),
		Phentsize: uint16(binary.Size(elf.Prog64{})),
		Phnum:     uint16(len(phdrs)),
		Shentsize: uint16(binary.Size(elf.Section64{})),
	}
	copy(eh.Ident[:], elf.ELFMAG)
	eh.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	eh.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	eh.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	eh.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	if err := binary.Write(&hdr, binary.LittleEndian, &eh); err != nil {
		return nil, fmt.Errorf("encode ELF header: %w", err)
	}
	if err := binary.Write(&hdr, binary.LittleEndian, phdrs); err != nil {
		return nil, fmt.Errorf("encode program headers: %w", err)
	}
	if hdr.Len() > codeOffInject {
		return nil, fmt.Errorf("stub headers are %d bytes, overlapping the code at %#x", hdr.Len(), codeOffInject)
	}
	copy(img, hdr.Bytes())
	for _, c := range stubCodeBytes {
		copy(img[c.off:], c.code)
	}

	filter := stubSeccompFilter()
	data := img[arch.PageSize:]
	if dataOffFilter+len(filter)*unix.SizeofSockFilter > len(data) {
		return nil, fmt.Errorf("seccomp filter of %d instructions does not fit the data page", len(filter))
	}
	// struct sock_fprog { unsigned short len; struct sock_filter *filter; }
	binary.LittleEndian.PutUint16(data[dataOffFprog:], uint16(len(filter)))
	binary.LittleEndian.PutUint64(data[dataOffFprog+8:], stubData+dataOffFilter)
	for i, ins := range filter {
		b := data[dataOffFilter+i*unix.SizeofSockFilter:]
		binary.LittleEndian.PutUint16(b[0:], ins.Code)
		b[2] = ins.Jt
		b[3] = ins.Jf
		binary.LittleEndian.PutUint32(b[4:], ins.K)
	}
	return img, nil
}

package kernel

import (
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/boot/loader"
	"github.com/ringbox/ringbox/platform"
)

// executable is a program file checked and parsed for loading.
type executable struct {
	// path is what /proc/self/exe shows: the absolute host path, or
	// "/memfd:NAME (deleted)" for a memfd (exec_fd.go).
	path string
	// name is the path as the caller gave it (AT_EXECFN).
	name string
	// comm is the task name the program gets; empty for the basename
	// of path.
	comm string
	// r reads the file; release lets it go.
	r       io.ReaderAt
	release func()
	img     *loader.Image
}

// ErrNotExecutable wraps the reasons a file cannot be executed: not a
// regular file, no execute permission, not ELF, wrong architecture,
// malformed, dynamic. A shell reports these with status 126.
var ErrNotExecutable = fmt.Errorf("cannot execute")

// loadExecutable opens and parses the program at path. A missing file
// wraps fs.ErrNotExist (status 127); other reasons wrap ErrNotExecutable
// and the loader's sentinel errors (status 126).
//
// TODO(ringbox): programs come from the host filesystem until the
// sandbox's own root filesystem exists.
func (k *Kernel) loadExecutable(path string) (*executable, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: %w: %w", path, ErrNotExecutable, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %w", path, ErrNotExecutable, err)
	}
	img, err := loadImage(path, f, fi.Size(), fi.Mode())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &executable{path: abs, name: path, r: f, release: func() { f.Close() }, img: img}, nil
}

// loadImage checks that a file of the given mode may be executed and
// parses the program that r reads, size bytes long: it must be a regular
// file with an execute bit (Linux: fs/exec.c:do_open_execat(), else
// EACCES) holding a static ELF executable (else ENOEXEC). Errors wrap
// ErrNotExecutable and name the file as name.
func loadImage(name string, r io.ReaderAt, size int64, mode fs.FileMode) (*loader.Image, error) {
	if !mode.IsRegular() {
		what := "not a regular file"
		if mode.IsDir() {
			what = "is a directory"
		}
		return nil, fmt.Errorf("%s: %w: %s", name, ErrNotExecutable, what)
	}
	if mode.Perm()&0o111 == 0 {
		return nil, fmt.Errorf("%s: %w: permission denied (no execute bit; chmod +x it)", name, ErrNotExecutable)
	}
	img, err := loader.Parse(r, size)
	if err == nil {
		err = img.RequireStatic()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrNotExecutable, err)
	}
	return img, nil
}

// Address-space layout of a new program, as Linux lays it out with
// randomization off (ADDR_NO_RANDOMIZE).
const (
	// mmapGapMin is the smallest gap between the stack top and the mmap
	// base (Linux: arch/x86/mm/mmap.c:mmap_base(), 128 MiB).
	mmapGapMin = 128 << 20
	// minStackSize is the least stack mapped at exec.
	minStackSize = 128 << 10
	// maxStackVMA bounds the stack vma when RLIMIT_STACK is unlimited.
	maxStackVMA = 1 << 30
)

// layoutTops returns the stack top and the mmap base of a new address
// space: the stack just below the top of the user half, or below a range
// the platform reserves there.
func (k *Kernel) layoutTops(stackLimit uint64) (stackTop, mmapBase uint64) {
	stackTop = arch.MaxUserAddress
	for _, r := range k.platform.ReservedRanges() {
		if r.End > stackTop-mmapGapMin && r.Start < stackTop {
			stackTop = arch.PageRoundDown(r.Start) - pageSize // guard page
		}
	}
	gap := min(max(stackLimit, mmapGapMin), arch.MaxUserAddress/6*5)
	return stackTop, arch.PageRoundDown(stackTop - gap)
}

// execImage replaces the task's address space with a new one running exe
// (Linux: fs/exec.c:begin_new_exec() and binfmt_elf.c:load_elf_binary()).
func (t *Task) execImage(exe *executable, argv, envv []string) error {
	defer exe.release()
	k := t.k
	img := exe.img
	mm, err := k.newMM()
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			mm.decUsers()
		}
	}()

	stackLimit := t.tg.limits.Get(unix.RLIMIT_STACK).Cur
	stackTop, mmapBase := k.layoutTops(stackLimit)
	mm.stackTop, mm.mmapBase = stackTop, mmapBase
	bias := img.Bias(mmapBase)

	mm.mu.Lock()
	for _, s := range img.Segments {
		if err := mm.loadSegmentLocked(exe, s, bias); err != nil {
			mm.mu.Unlock()
			return fmt.Errorf("%s: loading segment at %#x: %w", exe.name, s.Vaddr, err)
		}
	}
	mm.brkStart = img.Brk(bias)
	mm.brk = mm.brkStart

	stackSize := min(stackLimit, maxStackVMA)
	stackSize = max(arch.PageRoundDown(stackSize), minStackSize)
	stackPerms := platform.ReadWrite
	if img.ExecStack {
		stackPerms = platform.AnyAccess
	}
	mm.insertLocked(&vma{start: stackTop - stackSize, end: stackTop, perms: stackPerms, maxPerms: platform.AnyAccess, name: "[stack]"})
	mm.mu.Unlock()

	var random [16]byte
	rand.Read(random[:])
	phdr := img.PhdrVaddr
	if phdr != 0 {
		phdr += bias
	}
	c := t.creds
	stack, err := loader.BuildStack(stackTop, loader.StackArgs{
		Argv:     argv,
		Envv:     envv,
		Execfn:   exe.name,
		Platform: "x86_64",
		Random:   random,
		Auxv: []loader.AuxEntry{
			{Key: arch.AT_HWCAP, Val: arch.HWCap()},
			{Key: arch.AT_PAGESZ, Val: pageSize},
			{Key: arch.AT_CLKTCK, Val: 100},
			{Key: arch.AT_PHDR, Val: phdr},
			{Key: arch.AT_PHENT, Val: img.Phentsize},
			{Key: arch.AT_PHNUM, Val: img.Phnum},
			{Key: arch.AT_BASE, Val: 0},
			{Key: arch.AT_FLAGS, Val: 0},
			{Key: arch.AT_ENTRY, Val: img.Entry + bias},
			{Key: arch.AT_UID, Val: uint64(c.RealUID)},
			{Key: arch.AT_EUID, Val: uint64(c.EffectiveUID)},
			{Key: arch.AT_GID, Val: uint64(c.RealGID)},
			{Key: arch.AT_EGID, Val: uint64(c.EffectiveGID)},
			{Key: arch.AT_SECURE, Val: 0},
		},
		StackLimit: stackLimit,
	})
	if err != nil {
		if errorsIsArgsTooLong(err) {
			return unix.E2BIG
		}
		return err
	}
	if stack.Bottom < stackTop-stackSize {
		return unix.E2BIG
	}
	if _, err := mm.CopyOut(stack.Bottom, stack.Data); err != nil {
		return fmt.Errorf("writing the initial stack: %w", err)
	}

	if t.mm != nil {
		t.mm.decUsers()
	}
	t.mm = mm
	t.tg.exe = exe.path
	t.name = exe.comm
	if t.name == "" {
		t.name = commName(exe.path)
	}
	t.st.Regs = arch.Registers{
		// orig_rax keeps the system call number (a tracer at the exec
		// stop sees execve's).
		OrigRax: t.st.Regs.OrigRax,
		Rip:     img.Entry + bias,
		Rsp:     stack.SP,
		Cs:      arch.UserCS,
		Ss:      arch.UserDS,
		Eflags:  arch.FlagReserved | arch.FlagIF,
	}
	t.st.SetFP(arch.NewFPState(k.platform.FPStateSize()))
	// execve drops hardware breakpoints (Linux: flush_thread()).
	arch.FlushDebugRegs(&t.st)
	ok = true
	return nil
}

// loadSegmentLocked maps one PT_LOAD segment and copies its file bytes.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) loadSegmentLocked(exe *executable, s loader.Segment, bias uint64) error {
	start := arch.PageRoundDown(s.Vaddr + bias)
	end, _ := arch.PageRoundUp(s.Vaddr + bias + s.Memsz)
	var at platform.AccessType
	if s.Read {
		at |= platform.Read
	}
	if s.Write {
		at |= platform.Read | platform.Write
	}
	if s.Exec {
		at |= platform.Read | platform.Execute
	}
	// The first page may be the last page of the previous segment; the
	// later segment's protections win on it, as Linux's later mmap does.
	if i := mm.findLocked(start); i >= 0 {
		prev := mm.vmas[i]
		if prev.end > start+pageSize {
			return fmt.Errorf("segment overlaps another at %#x", start)
		}
		mm.mapped -= pageSize
		if prev.start == start {
			mm.vmas = append(mm.vmas[:i], mm.vmas[i+1:]...)
		} else {
			prev.end = start
		}
	}
	v := &vma{start: start, end: end, perms: at, maxPerms: platform.AnyAccess}
	mm.insertLocked(v)
	if s.Filesz == 0 {
		return nil
	}
	fileEnd, _ := arch.PageRoundUp(s.Vaddr + bias + s.Filesz)
	if err := mm.populateLocked(v, start, fileEnd); err != nil {
		return err
	}
	// Read the file bytes straight into the pages.
	va := s.Vaddr + bias
	off := int64(s.Offset)
	left := s.Filesz
	for left > 0 {
		pg := arch.PageRoundDown(va)
		inPage := va - pg
		n := min(left, pageSize-inPage)
		p := mm.pages[pg]
		buf := mm.mf.Bytes(memfileRange(p.off))[inPage : inPage+n]
		if _, err := exe.r.ReadAt(buf, off); err != nil {
			return err
		}
		va += n
		off += int64(n)
		left -= n
	}
	return nil
}

// commName is the task name a new program gets (the basename, at most 15
// bytes; Linux: fs/exec.c:__set_task_comm()).
func commName(path string) string {
	b := filepath.Base(path)
	if len(b) > 15 {
		b = b[:15]
	}
	return b
}

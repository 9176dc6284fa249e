package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// tinyELF returns a static x86-64 executable of one read-execute
// segment, the headers included, whose entry point is entry.
func tinyELF(t *testing.T) (image []byte, entry uint64) {
	t.Helper()
	const vaddr, size = 0x400000, 0x100
	entry = vaddr + 0x80
	hdr := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     entry,
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	prog := elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: vaddr, Filesz: size, Memsz: size, Align: pageSize}
	var b bytes.Buffer
	for _, v := range []any{hdr, prog} {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	image = make([]byte, size)
	copy(image, b.Bytes())
	return image, entry
}

// TestExecveatMemfd runs the program in a memfd and checks the new image:
// entry point, /proc/self/exe's name, the task name, and that the memfd
// descriptor, close-on-exec, is gone.
func TestExecveatMemfd(t *testing.T) {
	image, entry := tinyELF(t)
	const m = 7 // the first free descriptor after setupFiles
	var (
		task    *Task
		results []int64
		rip     uint64
	)
	calls := [][]uint64{
		{unix.SYS_MEMFD_CREATE, pathAddr(0), unix.MFD_CLOEXEC},
		{unix.SYS_WRITE, m, bufAddr, uint64(len(image))},
		{unix.SYS_EXECVEAT, m, pathAddr(1), 0, 0, unix.AT_EMPTY_PATH},
		{unix.SYS_FCNTL, m, unix.F_GETFD},
	}
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		if c.step > 0 {
			results = append(results, int64(st.Regs.Rax))
		}
		if c.step == 3 {
			rip = st.Regs.Rip
		}
		if c.step < len(calls) {
			return syscallEvent(st, calls[c.step][0], calls[c.step][1:]...)
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	setupFiles(t, task)
	if err := task.CopyOut(bufAddr, image); err != nil {
		t.Fatal(err)
	}
	task.start()
	k.Wait()
	want := []int64{m, int64(len(image)), 0, errno(unix.EBADF)}
	if len(results) != len(want) {
		t.Fatalf("got results %v, want %v", results, want)
	}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("call %d: got %d, want %d", i, results[i], want[i])
		}
	}
	if rip != entry {
		t.Errorf("rip after execveat = %#x, want the entry point %#x", rip, entry)
	}
	if got, want := task.tg.exe, "/memfd:/dev/null (deleted)"; got != want {
		t.Errorf("/proc/self/exe = %q, want %q", got, want)
	}
	if got, want := task.name, "memfd:/dev/null"; got != want {
		t.Errorf("task name = %q, want %q", got, want)
	}
}

// TestExecveatErrnos checks execveat of descriptors that cannot be run,
// and fchmod, which decides a memfd's execute bits.
func TestExecveatErrnos(t *testing.T) {
	const m, noexec = 7, 8
	empty := pathAddr(1)
	cases := []syscallCase{
		{"memfd", []uint64{unix.SYS_MEMFD_CREATE, pathAddr(0), 0}, m},
		{"garbage in it", []uint64{unix.SYS_WRITE, m, bufAddr, 19}, 19},
		{"not ELF", []uint64{unix.SYS_EXECVEAT, m, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.ENOEXEC)},
		{"empty path without AT_EMPTY_PATH", []uint64{unix.SYS_EXECVEAT, m, empty, 0, 0, 0}, errno(unix.ENOENT)},
		{"unknown flag", []uint64{unix.SYS_EXECVEAT, m, empty, 0, 0, unix.AT_EMPTY_PATH | 0x40000}, errno(unix.EINVAL)},
		{"fchmod 0644", []uint64{unix.SYS_FCHMOD, m, 0o644}, 0},
		{"no execute bit", []uint64{unix.SYS_EXECVEAT, m, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.EACCES)},
		{"a pipe", []uint64{unix.SYS_EXECVEAT, 3, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.EACCES)},
		{"/dev/null", []uint64{unix.SYS_EXECVEAT, 0, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.EACCES)},
		{"O_PATH /dev/null", []uint64{unix.SYS_EXECVEAT, 6, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.EACCES)},
		{"closed", []uint64{unix.SYS_EXECVEAT, 99, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.EBADF)},
		{"the working directory", []uint64{unix.SYS_EXECVEAT, atFDCWD, empty, 0, 0, unix.AT_EMPTY_PATH}, errno(unix.EACCES)},
		{"fchmod closed", []uint64{unix.SYS_FCHMOD, 99, 0o755}, errno(unix.EBADF)},
		{"fchmod O_PATH", []uint64{unix.SYS_FCHMOD, 6, 0o755}, errno(unix.EBADF)},
		{"MFD_NOEXEC_SEAL", []uint64{unix.SYS_MEMFD_CREATE, pathAddr(0), unix.MFD_NOEXEC_SEAL}, noexec},
		{"fchmod keeping the execute bits", []uint64{unix.SYS_FCHMOD, noexec, 0o600}, 0},
		{"fchmod adding execute bits under F_SEAL_EXEC", []uint64{unix.SYS_FCHMOD, noexec, 0o755}, errno(unix.EPERM)},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

// TestMemInodeReader checks the loader's view of a memfd: short reads at
// the end say io.EOF.
func TestMemInodeReader(t *testing.T) {
	_, task, _ := newTestKernel(t, nil)
	i := &memInode{mf: task.k.mf, pages: make(map[uint64]uint64)}
	i.refs.Store(1)
	defer i.decRef()
	if _, _, err := i.writeAt(task, []byte("0123456789"), pageSize-4, false); err != nil {
		t.Fatal(err)
	}
	r := memInodeReader{i}
	tests := []struct {
		off     int64
		n       int
		want    string
		wantEOF bool
	}{
		{pageSize - 4, 10, "0123456789", false},
		{pageSize - 2, 4, "2345", false},
		{pageSize + 4, 10, "89", true},
		{pageSize + 100, 1, "", true},
	}
	for _, tc := range tests {
		buf := make([]byte, tc.n)
		n, err := r.ReadAt(buf, tc.off)
		if got := string(buf[:n]); got != tc.want || (err != nil) != tc.wantEOF {
			t.Errorf("ReadAt(%d bytes at %d) = %q, %v; want %q, EOF %v", tc.n, tc.off, got, err, tc.want, tc.wantEOF)
		}
	}
}

package kernel

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// mmapBaseTest is the mmap base of newTestKernel's address space: the
// first mapping placed by the kernel ends there.
const mmapBaseTest = 0x7f0000000000

// TestMmapFileErrnos checks mmap of descriptors against Linux 6.18
// (checked on the host): memfds map, with seals and open modes bounding
// the mapping; files without an mmap method are ENODEV.
func TestMmapFileErrnos(t *testing.T) {
	const m = 7 // the first free descriptor after setupFiles
	rw := uint64(unix.PROT_READ | unix.PROT_WRITE)
	shared, private := uint64(unix.MAP_SHARED), uint64(unix.MAP_PRIVATE)
	first := uint64(mmapBaseTest - pageSize)
	cases := []syscallCase{
		{"memfd", []uint64{unix.SYS_MEMFD_CREATE, pathAddr(0), unix.MFD_ALLOW_SEALING}, m},
		{"ftruncate", []uint64{unix.SYS_FTRUNCATE, m, pageSize}, 0},
		{"a pipe", []uint64{unix.SYS_MMAP, 0, pageSize, unix.PROT_READ, private, 3, 0}, errno(unix.ENODEV)},
		{"/dev/null", []uint64{unix.SYS_MMAP, 0, pageSize, unix.PROT_READ, private, 0, 0}, errno(unix.ENODEV)},
		{"O_PATH", []uint64{unix.SYS_MMAP, 0, pageSize, unix.PROT_READ, private, 6, 0}, errno(unix.EBADF)},
		{"closed", []uint64{unix.SYS_MMAP, 0, pageSize, unix.PROT_READ, private, 99, 0}, errno(unix.EBADF)},
		{"offset overflow", []uint64{unix.SYS_MMAP, 0, 2 * pageSize, unix.PROT_READ, private, m, ^uint64(pageSize - 1)}, errno(unix.EOVERFLOW)},
		{"shared read-only", []uint64{unix.SYS_MMAP, 0, pageSize, unix.PROT_READ, shared, m, 0}, int64(first)},
		{"F_SEAL_WRITE with a shared map", []uint64{unix.SYS_FCNTL, m, unix.F_ADD_SEALS, unix.F_SEAL_WRITE}, errno(unix.EBUSY)},
		{"munmap it", []uint64{unix.SYS_MUNMAP, first, pageSize}, 0},
		{"private writable", []uint64{unix.SYS_MMAP, 0, pageSize, rw, private, m, 0}, int64(first)},
		{"F_SEAL_WRITE with a private map", []uint64{unix.SYS_FCNTL, m, unix.F_ADD_SEALS, unix.F_SEAL_WRITE}, 0},
		{"shared writable of a sealed memfd", []uint64{unix.SYS_MMAP, 0, pageSize, rw, shared, m, 0}, errno(unix.EPERM)},
		{"shared read-only of it", []uint64{unix.SYS_MMAP, 0, pageSize, unix.PROT_READ, shared, m, 0}, int64(first - pageSize)},
		{"mprotect it writable", []uint64{unix.SYS_MPROTECT, first - pageSize, pageSize, rw}, errno(unix.EACCES)},
		{"mprotect it executable", []uint64{unix.SYS_MPROTECT, first - pageSize, pageSize, unix.PROT_READ | unix.PROT_EXEC}, 0},
		{"/dev/zero shared", []uint64{unix.SYS_MMAP, 0, pageSize, rw, shared, 5, 0}, errno(unix.ENODEV)},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

// TestMmapDevZero maps /dev/zero, which is anonymous memory.
func TestMmapDevZero(t *testing.T) {
	const z = 7
	rw := uint64(unix.PROT_READ | unix.PROT_WRITE)
	cases := []syscallCase{
		{"open /dev/zero", []uint64{unix.SYS_OPENAT, atFDCWD, pathAddr(5), unix.O_RDWR}, z},
		{"shared", []uint64{unix.SYS_MMAP, 0, pageSize, rw, unix.MAP_SHARED, z, 0}, mmapBaseTest - pageSize},
		{"private", []uint64{unix.SYS_MMAP, 0, pageSize, rw, unix.MAP_PRIVATE, z, 0}, mmapBaseTest - 2*pageSize},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

// TestMmapMemfdCoherence maps a memfd shared and private and checks what
// each side sees of the other's stores, the file's reference counts, and
// that a shrinking ftruncate takes the pages past the end away from the
// mappings.
func TestMmapMemfdCoherence(t *testing.T) {
	_, task, _ := newTestKernel(t, nil)
	mf := task.k.mf
	i := &memInode{mf: mf, name: "memfd:t", pages: make(map[uint64]uint64), mode: 0o777}
	i.refs.Store(1)
	f := &memFD{inode: i}
	f.initRefs()
	f.flags.Store(unix.O_RDWR)
	if err := f.Truncate(task, 2*pageSize); err != nil {
		t.Fatal(err)
	}
	mm := task.mm
	mapIt := func(start uint64, shared bool) {
		t.Helper()
		m, maxPerms, err := mmapMemfd(f, unix.PROT_READ|unix.PROT_WRITE, shared)
		if err != nil {
			t.Fatal(err)
		}
		mm.mu.Lock()
		mm.insertLocked(&vma{start: start, end: start + 2*pageSize, perms: platform.ReadWrite, maxPerms: maxPerms, shared: shared, shm: m})
		mm.mu.Unlock()
	}
	const sh, pv = 0x10000000, 0x20000000
	mapIt(sh, true)
	mapIt(pv, false)
	if got, want := i.writeMaps.Load(), int64(1); got != want {
		t.Errorf("writeMaps = %d, want %d (the shared mapping)", got, want)
	}
	read := func(addr uint64, n int) string {
		t.Helper()
		b := make([]byte, n)
		if err := task.CopyIn(addr, b); err != nil {
			t.Fatalf("CopyIn(%#x): %v", addr, err)
		}
		return string(b)
	}
	fileAt := func(off int64, n int) string {
		b := make([]byte, n)
		i.readAt(b, off)
		return string(b)
	}
	steps := []struct {
		name string
		do   func() error
		addr uint64
		want string
	}{
		{"a store to the shared map reaches the file", func() error { return task.CopyOut(sh, []byte("shared")) }, sh, "shared"},
		{"the private map sees the file", nil, pv, "shared"},
		{"a pwrite shows in both maps", func() error { _, err := f.PWrite(task, []byte("PW"), 0); return err }, pv, "PWared"},
		{"a private store", func() error { return task.CopyOut(pv, []byte("mine")) }, pv, "mineed"},
		{"does not reach the shared map", nil, sh, "PWared"},
	}
	for _, s := range steps {
		if s.do != nil {
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		if got := read(s.addr, len(s.want)); got != s.want {
			t.Errorf("%s: read %q at %#x, want %q", s.name, got, s.addr, s.want)
		}
	}
	if got, want := fileAt(0, 6), "PWared"; got != want {
		t.Errorf("file after the private store = %q, want %q", got, want)
	}

	// Past the end of the file: no page; a truncation takes the page
	// away from both maps, and growing again gives zeros.
	if err := task.CopyOut(sh+pageSize, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := task.CopyOut(pv+pageSize, []byte("copy")); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(task, pageSize); err != nil {
		t.Fatal(err)
	}
	mm.mu.Lock()
	_, shPresent := mm.pages[sh+pageSize]
	_, pvPresent := mm.pages[pv+pageSize]
	mm.mu.Unlock()
	if shPresent || pvPresent {
		t.Errorf("pages past the end after truncation: shared %v, private copy %v; want none", shPresent, pvPresent)
	}
	if _, err := mm.HandleFault(sh+pageSize, platform.Read); err != errBeyondEOF {
		t.Errorf("fault past the end: %v, want errBeyondEOF", err)
	}
	if code, _ := mm.HandleFault(pv+pageSize+8, platform.Write); code != busAdrerr {
		t.Errorf("fault past the end of the private map: code %d, want BUS_ADRERR", code)
	}
	if err := task.CopyOut(sh+pageSize, []byte("x")); err != unix.EFAULT {
		t.Errorf("kernel store past the end: %v, want EFAULT", err)
	}
	if err := f.Truncate(task, 2*pageSize); err != nil {
		t.Fatal(err)
	}
	if got, want := read(sh+pageSize, 6), "\x00\x00\x00\x00\x00\x00"; got != want {
		t.Errorf("regrown file through the map = %q, want zeros", got)
	}
	if got, want := read(sh, 6), "PWared"; got != want {
		t.Errorf("first page after the truncations = %q, want %q", got, want)
	}

	// References: the file and two mappings; unmapping and closing
	// drop them all.
	if got, want := i.refs.Load(), int64(3); got != want {
		t.Errorf("inode references = %d, want %d", got, want)
	}
	mm.mu.Lock()
	mm.removeLocked(sh, sh+2*pageSize)
	mm.removeLocked(pv, pv+2*pageSize)
	mm.mu.Unlock()
	if got, want := i.writeMaps.Load(), int64(0); got != want {
		t.Errorf("writeMaps after munmap = %d, want %d", got, want)
	}
	f.DecRef()
	if got := i.refs.Load(); got != 0 {
		t.Errorf("inode references after close = %d, want 0", got)
	}
	if i.pages != nil {
		t.Errorf("the last reference kept the pages")
	}
}

// TestMmapMemfdForkAndSplit checks that the vmas made of one mapping by
// fork and munmap keep their own references, so that F_SEAL_WRITE stays
// refused until the last writable piece is gone.
func TestMmapMemfdForkAndSplit(t *testing.T) {
	_, task, _ := newTestKernel(t, nil)
	i := &memInode{mf: task.k.mf, pages: make(map[uint64]uint64), mode: 0o777}
	i.refs.Store(1)
	f := &memFD{inode: i}
	f.initRefs()
	f.flags.Store(unix.O_RDWR)
	defer f.DecRef()
	if err := f.Truncate(task, 4*pageSize); err != nil {
		t.Fatal(err)
	}
	m, maxPerms, err := mmapMemfd(f, unix.PROT_READ|unix.PROT_WRITE, true)
	if err != nil {
		t.Fatal(err)
	}
	const at = 0x10000000
	mm := task.mm
	mm.mu.Lock()
	mm.insertLocked(&vma{start: at, end: at + 4*pageSize, perms: platform.ReadWrite, maxPerms: maxPerms, shared: true, shm: m})
	mm.removeLocked(at+pageSize, at+2*pageSize) // two pieces now
	mm.mu.Unlock()
	if got, want := i.writeMaps.Load(), int64(2); got != want {
		t.Errorf("writeMaps after a split = %d, want %d", got, want)
	}
	if err := task.CopyOut(at+3*pageSize, []byte("parent")); err != nil {
		t.Fatal(err)
	}
	child, err := mm.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := i.writeMaps.Load(), int64(4); got != want {
		t.Errorf("writeMaps after fork = %d, want %d", got, want)
	}
	if _, err := child.CopyOut(at+3*pageSize, []byte("child!")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	i.readAt(b, 3*pageSize)
	if got, want := string(b), "child!"; got != want {
		t.Errorf("file after the child's store = %q, want %q", got, want)
	}
	if err := i.addSeals(unix.F_SEAL_WRITE); err != unix.EBUSY {
		t.Errorf("F_SEAL_WRITE while mapped: %v, want EBUSY", err)
	}
	child.decUsers()
	mm.mu.Lock()
	mm.removeLocked(at, at+4*pageSize)
	mm.mu.Unlock()
	if got, want := i.writeMaps.Load(), int64(0); got != want {
		t.Errorf("writeMaps after unmapping everything = %d, want %d", got, want)
	}
	if err := i.addSeals(unix.F_SEAL_WRITE); err != nil {
		t.Errorf("F_SEAL_WRITE once unmapped: %v", err)
	}
}

// TestMmapMemfdSIGBUS runs a program that touches a page of its memfd
// mapping inside the file, then one past its end, and dies of SIGBUS.
func TestMmapMemfdSIGBUS(t *testing.T) {
	const m = 0 // only stdout is open
	addr := uint64(mmapBaseTest - 2*pageSize)
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		switch c.step {
		case 0:
			return syscallEvent(st, unix.SYS_MEMFD_CREATE, pathAddr(0), 0)
		case 1:
			return syscallEvent(st, unix.SYS_FTRUNCATE, m, pageSize)
		case 2:
			return syscallEvent(st, unix.SYS_MMAP, 0, 2*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED, m, 0)
		case 3:
			if st.Regs.Rax != addr {
				return syscallEvent(st, unix.SYS_EXIT_GROUP, 1)
			}
			return platform.Event{Kind: platform.EventFault, Addr: addr + 8, Access: platform.Write, NotPresent: true}
		case 4:
			return platform.Event{Kind: platform.EventFault, Addr: addr + pageSize + 8, Access: platform.Read, NotPresent: true}
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 2)
	})
	var paths []byte
	for _, p := range testPaths {
		paths = append(append(paths, p...), 0)
	}
	if err := task.CopyOut(pathsAddr, paths); err != nil {
		t.Fatal(err)
	}
	task.start()
	if got, want := k.Wait(), (ExitStatus{Signal: unix.SIGBUS}); got != want {
		t.Errorf("exit status = %v, want %v", got, want)
	}
}

// TestMmapHostFile maps a host file privately and shared read-only: the
// pages hold the file, a private store stays private, a shared mapping
// cannot be writable, and past the end is errBeyondEOF.
func TestMmapHostFile(t *testing.T) {
	_, task, _ := newTestKernel(t, nil)
	path := t.TempDir() + "/f"
	content := []byte("host file contents")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openHost(path, unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef()
	h := f.(*hostFile)
	if _, _, _, err := mmapHostFile(task.k.mf, h, unix.PROT_READ|unix.PROT_WRITE, true); err != unix.EACCES {
		t.Errorf("shared writable mapping: %v, want EACCES", err)
	}
	mm := task.mm
	const pv, sh = 0x10000000, 0x20000000
	for _, m := range []struct {
		at     uint64
		shared bool
	}{{pv, false}, {sh, true}} {
		obj, maxPerms, _, err := mmapHostFile(task.k.mf, h, unix.PROT_READ, m.shared)
		if err != nil {
			t.Fatal(err)
		}
		if got := maxPerms&platform.Write != 0; got == m.shared {
			t.Errorf("shared %v: may become writable %v", m.shared, got)
		}
		mm.mu.Lock()
		mm.insertLocked(&vma{start: m.at, end: m.at + 2*pageSize, perms: platform.ReadWrite, maxPerms: maxPerms, shared: m.shared, shm: obj})
		mm.mu.Unlock()
	}
	b := make([]byte, len(content)+2)
	if err := task.CopyIn(pv, b); err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), string(content)+"\x00\x00"; got != want {
		t.Errorf("private mapping reads %q, want %q", got, want)
	}
	if err := task.CopyOut(pv, []byte("HOST")); err != nil {
		t.Fatal(err)
	}
	if err := task.CopyIn(sh, b[:4]); err != nil {
		t.Fatal(err)
	}
	if got, want := string(b[:4]), "host"; got != want {
		t.Errorf("shared mapping after a private store reads %q, want %q", got, want)
	}
	if got, _ := os.ReadFile(path); string(got) != string(content) {
		t.Errorf("host file after a private store = %q, want %q", got, content)
	}
	if _, err := mm.HandleFault(pv+pageSize, platform.Read); err != errBeyondEOF {
		t.Errorf("fault past the end: %v, want errBeyondEOF", err)
	}
	mm.mu.Lock()
	mm.removeLocked(pv, pv+2*pageSize)
	mm.removeLocked(sh, sh+2*pageSize)
	mm.mu.Unlock()
	if got, want := h.refs.Load(), int64(1); got != want {
		t.Errorf("host file references after munmap = %d, want %d", got, want)
	}
}

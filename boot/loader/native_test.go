package loader

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// These tests compare the loader with Linux itself and with other readers
// of ELF: they build small programs with the host's C compilers and skip,
// saying why, where a compiler is missing.

// compile builds src (a file in testdata) with cc and flags into a
// temporary directory and returns the binary's path.
func compile(t *testing.T, cc string, flags []string, src string) string {
	t.Helper()
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("%s not installed: %v", cc, err)
	}
	out := filepath.Join(t.TempDir(), "prog")
	args := append(append([]string{}, flags...), "-o", out, filepath.Join("testdata", src))
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		if bytes.Contains(b, []byte("cannot find")) {
			t.Skipf("%s %s: toolchain lacks a library: %s", cc, strings.Join(flags, " "), b)
		}
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	return out
}

// parseFile parses the binary at path.
func parseFile(t *testing.T, path string) *Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	img, err := Parse(f, fi.Size())
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return img
}

var realBinaries = []struct {
	name       string
	cc         string
	flags      []string
	wantType   elf.Type
	wantInterp bool
}{
	{"gcc -static", "gcc", []string{"-static", "-O2"}, elf.ET_EXEC, false},
	{"gcc -static-pie", "gcc", []string{"-static-pie", "-O2"}, elf.ET_DYN, false},
	{"musl-gcc -static", "musl-gcc", []string{"-static", "-O2"}, elf.ET_EXEC, false},
	{"gcc -pie (dynamic)", "gcc", []string{"-pie", "-O2"}, elf.ET_DYN, true},
	{"gcc -no-pie (dynamic)", "gcc", []string{"-no-pie", "-O2"}, elf.ET_EXEC, true},
}

// TestParseRealBinaries checks Parse on compiler output against debug/elf
// and readelf.
func TestParseRealBinaries(t *testing.T) {
	for _, tt := range realBinaries {
		t.Run(tt.name, func(t *testing.T) {
			path := compile(t, tt.cc, tt.flags, "layoutprobe.c")
			img := parseFile(t, path)
			if img.Type != tt.wantType {
				t.Errorf("Type: got %v, want %v", img.Type, tt.wantType)
			}
			if got := img.Interp != ""; got != tt.wantInterp {
				t.Errorf("Interp: got %q, want an interpreter: %v", img.Interp, tt.wantInterp)
			}
			if err := img.RequireStatic(); errors.Is(err, ErrDynamic) != tt.wantInterp {
				t.Errorf("RequireStatic: got %v, want ErrDynamic: %v", err, tt.wantInterp)
			}
			compareDebugELF(t, path, img)
			compareReadelf(t, path, img)
		})
	}
}

// TestParseSelf parses the running test binary, which the Go toolchain
// built.
func TestParseSelf(t *testing.T) {
	path, err := os.Executable()
	if err != nil {
		t.Skipf("no path to the test binary: %v", err)
	}
	compareDebugELF(t, path, parseFile(t, path))
}

// compareDebugELF checks img against debug/elf's reading of the file and
// checks that PhdrVaddr holds the program header table.
func compareDebugELF(t *testing.T, path string, img *Image) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	defer f.Close()
	if img.Type != f.Type || img.Entry != f.Entry {
		t.Errorf("type, entry: got %v %#x, debug/elf says %v %#x", img.Type, img.Entry, f.Type, f.Entry)
	}
	var want []Segment
	wantInterp, wantExecStack := "", false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			if p.Memsz > 0 {
				want = append(want, Segment{Vaddr: p.Vaddr, Offset: p.Off, Filesz: p.Filesz, Memsz: p.Memsz,
					Read: p.Flags&elf.PF_R != 0, Write: p.Flags&elf.PF_W != 0, Exec: p.Flags&elf.PF_X != 0})
			}
		case elf.PT_INTERP:
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			wantInterp = strings.TrimRight(string(b), "\x00")
		case elf.PT_GNU_STACK:
			wantExecStack = p.Flags&elf.PF_X != 0
		}
	}
	if !reflect.DeepEqual(img.Segments, want) {
		t.Errorf("Segments:\ngot  %+v\nwant %+v", img.Segments, want)
	}
	if img.Interp != wantInterp || img.ExecStack != wantExecStack {
		t.Errorf("Interp, ExecStack: got %q %v, debug/elf says %q %v", img.Interp, img.ExecStack, wantInterp, wantExecStack)
	}
	if img.Phnum != uint64(len(f.Progs)) {
		t.Errorf("Phnum: got %d, want %d", img.Phnum, len(f.Progs))
	}

	// The bytes at PhdrVaddr in the loaded image are the program headers.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	phoff := binary.LittleEndian.Uint64(raw[32:])
	table := raw[phoff : phoff+img.Phnum*img.Phentsize]
	found := false
	for _, s := range img.Segments {
		if img.PhdrVaddr >= s.Vaddr && img.PhdrVaddr+uint64(len(table)) <= s.Vaddr+s.Filesz {
			off := s.Offset + img.PhdrVaddr - s.Vaddr
			found = bytes.Equal(raw[off:off+uint64(len(table))], table)
		}
	}
	if !found {
		t.Errorf("PhdrVaddr %#x does not hold the program header table", img.PhdrVaddr)
	}
}

// compareReadelf checks the entry point, the PT_LOAD segments and the
// interpreter against binutils' readelf -lW.
func compareReadelf(t *testing.T, path string, img *Image) {
	t.Helper()
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Logf("readelf not installed, skipping that comparison: %v", err)
		return
	}
	out, err := exec.Command("readelf", "-lW", path).Output()
	if err != nil {
		t.Fatalf("readelf: %v", err)
	}
	var entry uint64
	var loads []Segment
	interp := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Entry point "):
			entry = mustHex(t, strings.TrimPrefix(line, "Entry point "))
		case strings.HasPrefix(line, "[Requesting program interpreter: "):
			interp = strings.TrimSuffix(strings.TrimPrefix(line, "[Requesting program interpreter: "), "]")
		case len(fields) >= 8 && fields[0] == "LOAD":
			// Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg... Align
			flags := strings.Join(fields[6:len(fields)-1], "")
			s := Segment{Offset: mustHex(t, fields[1]), Vaddr: mustHex(t, fields[2]),
				Filesz: mustHex(t, fields[4]), Memsz: mustHex(t, fields[5]),
				Read: strings.Contains(flags, "R"), Write: strings.Contains(flags, "W"), Exec: strings.Contains(flags, "E")}
			if s.Memsz > 0 {
				loads = append(loads, s)
			}
		}
	}
	if entry != img.Entry {
		t.Errorf("Entry: got %#x, readelf says %#x", img.Entry, entry)
	}
	if !reflect.DeepEqual(loads, img.Segments) {
		t.Errorf("Segments:\ngot          %+v\nreadelf says %+v", img.Segments, loads)
	}
	if interp != img.Interp {
		t.Errorf("Interp: got %q, readelf says %q", img.Interp, interp)
	}
}

func mustHex(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("readelf output %q: %v", s, err)
	}
	return v
}

// nativeMmapBase is mm->mmap_base of a process without randomization when
// RLIMIT_STACK is small: TASK_SIZE less the 128 MiB minimum gap (Linux:
// arch/x86/mm/mmap.c:mmap_base()). ok is false where the gap would be
// larger (or the layout legacy), which the test does not model.
func nativeMmapBase(t *testing.T) (base uint64, ok bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	// The gap is the rlimit plus stack_guard_gap (1 MiB by default),
	// at least 128 MiB.
	if rl.Cur > 64<<20 {
		return 0, false
	}
	return arch.MaxUserAddress - 128<<20, true
}

// TestBiasNative runs the real binaries under Linux with ADDR_NO_RANDOMIZE
// and checks that Bias and Brk predict where Linux put the image and its
// brk area.
func TestBiasNative(t *testing.T) {
	mmapBase, ok := nativeMmapBase(t)
	if !ok {
		t.Skip("RLIMIT_STACK above 64 MiB: mmap_base is not the 128 MiB default gap")
	}
	for _, tt := range realBinaries {
		t.Run(tt.name, func(t *testing.T) {
			path := compile(t, tt.cc, tt.flags, "layoutprobe.c")
			img := parseFile(t, path)
			out, err := exec.Command(path).Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 4 {
					t.Skip("personality(ADDR_NO_RANDOMIZE) not allowed here")
				}
				t.Fatalf("%s: %v", path, err)
			}
			var ehdr, startBrk uint64
			if _, err := fmt.Sscanf(string(out), "%v %v", &ehdr, &startBrk); err != nil {
				t.Fatalf("probe output %q: %v", out, err)
			}
			// The ELF header is the start of the segment at file offset 0.
			bias := img.Bias(mmapBase)
			if got := bias + img.Segments[0].Vaddr - img.Segments[0].Offset; got != ehdr {
				t.Errorf("ELF header: Bias(%#x) puts it at %#x, Linux at %#x", mmapBase, got, ehdr)
			}
			if got := img.Brk(bias); got != startBrk {
				t.Errorf("Brk(%#x): got %#x, Linux's start_brk is %#x", bias, got, startBrk)
			}
		})
	}
}

// TestBuildStackNative compares BuildStack byte by byte with the stack Linux
// builds for the same arguments, environment and auxiliary vector, as seen
// by testdata/stackprobe.c, and the string areas with the ones Linux reports
// in /proc/self/stat.
func TestBuildStackNative(t *testing.T) {
	path := compile(t, "gcc", []string{"-static", "-no-pie", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-O2"}, "stackprobe.c")
	tests := []struct {
		name string
		argv []string
		envv []string
	}{
		{"argv0 only", []string{"probe"}, []string{}},
		{"small", []string{"probe", "x", "yy", "zzz"}, []string{"A=1", "B=hello"}},
		{"argv0 is the path", []string{path, "-v"}, []string{"PATH=/bin:/usr/bin", "HOME=/"}},
		{"1 arg", []string{"p"}, []string{"E="}},
		{"2 args", []string{"p", "a"}, []string{"E="}},
		{"3 args", []string{"p", "a", "b"}, []string{"E="}},
		{"4 args", []string{"p", "a", "b", "c"}, []string{"E="}},
		{"5 args", []string{"p", "a", "b", "c", "d"}, []string{"E="}},
		{"long strings", []string{"p", strings.Repeat("a", 5000)}, []string{"X=" + strings.Repeat("b", 3001), "Y=" + strings.Repeat("c", 17)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(path)
			cmd.Args, cmd.Env = tt.argv, tt.envv
			var stat bytes.Buffer
			cmd.Stderr = &stat
			data, err := cmd.Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 4 {
					t.Skip("personality(ADDR_NO_RANDOMIZE) not allowed here")
				}
				t.Fatalf("stackprobe: %v", err)
			}
			compareNativeStack(t, path, tt.argv, tt.envv, data, stat.String())
		})
	}
}

// compareNativeStack compares the stack Linux built for execve(path, argv,
// envv), as dumped by the probe in data, with BuildStack's.
func compareNativeStack(t *testing.T, path string, argv, envv []string, data []byte, stat string) {
	t.Helper()
	wantArgv := argv
	if len(argv) == 0 {
		wantArgv = []string{""}
	}
	// Find AT_EXECFN without dereferencing anything: skip argc, the argv
	// pointers and the envp pointers.
	word := func(off int) uint64 { return binary.LittleEndian.Uint64(data[off:]) }
	off := 8 * (1 + int(word(0)) + 1)
	for word(off) != 0 {
		off += 8
	}
	var execfn uint64
	for off += 8; word(off) != arch.AT_NULL; off += 16 {
		if word(off) == arch.AT_EXECFN {
			execfn = word(off + 8)
		}
	}
	top := execfn + uint64(len(path)) + 1 + 8
	bottom := top - uint64(len(data))
	if top%arch.PageSize != 0 {
		t.Errorf("native stack top %#x is not page aligned; the probe is wrong", top)
	}
	native := decodeStack(t, data, bottom)
	if !reflect.DeepEqual(native.argv, wantArgv) || len(native.envv) != len(envv) {
		t.Fatalf("probe read argv %q envp %q, want %q %q", native.argv, native.envv, wantArgv, envv)
	}

	// Give BuildStack what Linux had.
	a := StackArgs{Argv: argv, Envv: envv, Execfn: path}
	for _, e := range native.auxv {
		switch e.Key {
		case arch.AT_RANDOM:
			copy(a.Random[:], data[e.Val-bottom:])
		case arch.AT_PLATFORM:
			p, _, _ := bytes.Cut(data[e.Val-bottom:], []byte{0})
			a.Platform = string(p)
		case arch.AT_EXECFN, arch.AT_NULL:
		default:
			a.Auxv = append(a.Auxv, e)
		}
	}
	checkExecAuxv(t, native.auxv, a.Auxv)
	s, err := BuildStack(top, a)
	if err != nil {
		t.Fatalf("BuildStack: %v", err)
	}
	if s.SP != bottom {
		t.Errorf("SP: got top-%d, Linux top-%d", top-s.SP, top-bottom)
	}
	if !reflect.DeepEqual(s.AuxvEntries, native.auxv) {
		t.Errorf("auxv:\ngot   %v\nLinux %v", s.AuxvEntries, native.auxv)
	}
	if !bytes.Equal(s.Data, data) {
		t.Errorf("stack bytes differ from Linux's:\ngot\n%s\nLinux\n%s", dumpTop(s.Data, top), dumpTop(data, top))
	}

	// proc(5): fields 48 to 51 of /proc/PID/stat are arg_start, arg_end,
	// env_start and env_end.
	i := strings.LastIndexByte(stat, ')')
	fields := strings.Fields(stat[i+1:]) // field 3 onwards
	if len(fields) < 51-2 {
		t.Fatalf("/proc/self/stat too short: %q", stat)
	}
	var got, want []uint64
	for f := 48; f <= 51; f++ {
		v, err := strconv.ParseUint(fields[f-3], 10, 64)
		if err != nil {
			t.Fatalf("/proc/self/stat field %d: %v", f, err)
		}
		want = append(want, v)
	}
	got = []uint64{s.ArgStart, s.ArgEnd, s.EnvStart, s.EnvEnd}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("arg_start, arg_end, env_start, env_end: got %#x, Linux %#x", got, want)
	}
}

// checkExecAuxv checks that ExecAuxv.Entries, given the values of Linux's
// auxiliary vector, puts them in Linux's order: that of callerPart, the
// vector without the entries BuildStack adds.
func checkExecAuxv(t *testing.T, linux, callerPart []AuxEntry) {
	t.Helper()
	v := map[uint64]uint64{}
	var x ExecAuxv
	afterPlatform := false
	for _, e := range linux {
		v[e.Key] = e.Val
		switch {
		case e.Key == arch.AT_PLATFORM:
			afterPlatform = true
		case afterPlatform && e.Key != arch.AT_NULL:
			x.Extra = append(x.Extra, e)
		}
	}
	x.SysinfoEhdr, x.MinSigStkSz = v[arch.AT_SYSINFO_EHDR], v[arch.AT_MINSIGSTKSZ]
	x.HWCap, x.HWCap2, x.ClkTck = v[arch.AT_HWCAP], v[arch.AT_HWCAP2], v[arch.AT_CLKTCK]
	x.Phdr, x.Phent, x.Phnum = v[arch.AT_PHDR], v[arch.AT_PHENT], v[arch.AT_PHNUM]
	x.Base, x.Flags, x.Entry = v[arch.AT_BASE], v[arch.AT_FLAGS], v[arch.AT_ENTRY]
	x.UID, x.EUID, x.GID, x.EGID = v[arch.AT_UID], v[arch.AT_EUID], v[arch.AT_GID], v[arch.AT_EGID]
	x.Secure = v[arch.AT_SECURE] != 0
	if got := x.Entries(); !reflect.DeepEqual(got, callerPart) {
		t.Errorf("ExecAuxv.Entries:\ngot   %v\nLinux %v", got, callerPart)
	}
}

// dumpTop formats the last 512 bytes of a stack ending at top.
func dumpTop(data []byte, top uint64) string {
	start := max(0, len(data)-512) &^ 15
	return dump(data[start:], top-uint64(len(data)-start))
}

// TestArgLimitsNative checks that BuildStack refuses exactly the argument
// lists that Linux's execve refuses with E2BIG.
func TestArgLimitsNative(t *testing.T) {
	path := compile(t, "gcc", []string{"-static", "-no-pie", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-O2"}, "stackprobe.c")
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	long := strings.Repeat("x", MaxArgStrlen-1)
	// fill returns argument strings whose total, with execfn, is the
	// limit plus extra bytes, in as few strings as MAX_ARG_STRLEN allows.
	fill := func(extra int) []string {
		for k := 1; ; k++ {
			limit, _ := StringLimit(rl.Cur, k, 0)
			rest := int(limit) - len(path) - 1 + extra
			if rest > k*MaxArgStrlen {
				continue
			}
			argv := make([]string, k)
			for i := range argv {
				n := rest / (k - i)
				argv[i] = strings.Repeat("y", n-1)
				rest -= n
			}
			return argv
		}
	}
	tests := []struct {
		name      string
		argv      []string
		wantE2BIG bool
	}{
		{"longest string", []string{"p", long}, false},
		{"string one byte too long", []string{"p", long + "x"}, true},
		{"total at the limit", fill(0), false},
		{"total one byte over", fill(1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(path)
			cmd.Args, cmd.Env = tt.argv, []string{}
			err := cmd.Run()
			linuxE2BIG := errors.Is(err, syscall.E2BIG)
			if err != nil && !linuxE2BIG {
				t.Fatalf("execve: %v", err)
			}
			if linuxE2BIG != tt.wantE2BIG {
				t.Errorf("Linux execve: got E2BIG %v, want %v; the test's model of the limit is wrong", linuxE2BIG, tt.wantE2BIG)
			}
			_, err = BuildStack(testTop, StackArgs{Argv: tt.argv, Execfn: path, StackLimit: rl.Cur})
			if got := errors.Is(err, ErrArgsTooLong); got != linuxE2BIG {
				t.Errorf("BuildStack: got %v, Linux E2BIG: %v", err, linuxE2BIG)
			}
		})
	}
}

// addrNoRandomize is ADDR_NO_RANDOMIZE (include/uapi/linux/personality.h),
// which x/sys/unix does not define.
const addrNoRandomize = 0x0040000

// errNoPersonality reports that ADDR_NO_RANDOMIZE cannot be set here.
var errNoPersonality = errors.New("personality(ADDR_NO_RANDOMIZE) refused")

// runArgv runs path with exactly argv, which may be empty (os/exec would
// substitute the path), and envv, with ADDR_NO_RANDOMIZE set so that the
// probe does not need to re-execute itself. It returns the standard output
// and error.
func runArgv(t *testing.T, path string, argv, envv []string) (stdout, stderr []byte) {
	t.Helper()
	rOut, wOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rOut.Close()
	rErr, wErr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rErr.Close()
	outc, errc := make(chan []byte), make(chan []byte)
	go func() { b, _ := io.ReadAll(rOut); outc <- b }()
	go func() { b, _ := io.ReadAll(rErr); errc <- b }()

	// The personality is a per-thread attribute that fork copies: set it
	// on this thread around the fork only.
	pid, err := func() (int, error) {
		runtime.LockOSThread()
		old, _, errno := syscall.RawSyscall(syscall.SYS_PERSONALITY, 0xffffffff, 0, 0)
		if errno != 0 {
			runtime.UnlockOSThread()
			return 0, fmt.Errorf("personality: %w", errno)
		}
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PERSONALITY, old|addrNoRandomize, 0, 0); errno != 0 {
			runtime.UnlockOSThread()
			return 0, fmt.Errorf("%w: %w", errNoPersonality, errno)
		}
		pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
			Env:   envv,
			Files: []uintptr{^uintptr(0), wOut.Fd(), wErr.Fd()},
		})
		// Should the restore fail, the thread stays locked and the runtime
		// ends it with this goroutine, taking the personality with it.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PERSONALITY, old, 0, 0); errno == 0 {
			runtime.UnlockOSThread()
		}
		return pid, err
	}()
	wOut.Close()
	wErr.Close()
	if errors.Is(err, errNoPersonality) {
		t.Skipf("%v (a seccomp filter may forbid it)", err)
	}
	if err != nil {
		t.Fatalf("running %s: %v", path, err)
	}
	stdout, stderr = <-outc, <-errc
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait4: %v", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("%s: wait status %#x", path, ws)
	}
	return stdout, stderr
}

// TestBuildStackNativeArgc0 checks the argc 0 case against Linux (5.18 and
// later), which puts an empty argv[0] on the stack.
func TestBuildStackNativeArgc0(t *testing.T) {
	path := compile(t, "gcc", []string{"-static", "-no-pie", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-O2"}, "stackprobe.c")
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor); err != nil || major < 5 || major == 5 && minor < 18 {
		t.Skipf("Linux %s does not add argv[0] for argc 0 (5.18 does)", uts.Release[:])
	}
	stdout, stderr := runArgv(t, path, []string{}, []string{"A=b"})
	compareNativeStack(t, path, []string{}, []string{"A=b"}, stdout, string(stderr))
}

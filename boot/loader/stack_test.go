package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ringbox/ringbox/arch"
)

const testTop = 0x7ffffffff000

// TestBuildStackLayout checks a small stack byte by byte against a layout
// computed by hand from fs/exec.c and create_elf_tables().
func TestBuildStackLayout(t *testing.T) {
	var random [16]byte
	for i := range random {
		random[i] = byte(0xa0 + i)
	}
	s, err := BuildStack(testTop, StackArgs{
		Argv:     []string{"a", "bc"},
		Envv:     []string{"X=1"},
		Execfn:   "/p",
		Platform: "x86_64",
		Random:   random,
		Auxv:     []AuxEntry{{arch.AT_PAGESZ, 4096}, {arch.AT_SECURE, 0}},
	})
	if err != nil {
		t.Fatalf("BuildStack: %v", err)
	}

	// By hand, T = top:
	//   T-8   NULL word
	//   T-11  "/p"      (execfn, 3 bytes)
	//   T-15  "X=1"     (envp[0], 4 bytes)
	//   T-18  "bc"      (argv[1], 3 bytes)
	//   T-20  "a"       (argv[0], 2 bytes)
	//   T-32  16-byte alignment of T-20
	//   T-39  "x86_64"  (7 bytes)
	//   T-55  random    (16 bytes)
	//   T-151 auxv: 6 pairs (PAGESZ, SECURE, RANDOM, EXECFN, PLATFORM, NULL)
	//   T-199 less 6 words (argc, 2+1 argv, 1+1 envp)
	//   T-208 rounded down to 16: rsp
	const T = testTop
	want := map[string]uint64{
		"SP": T - 208, "Bottom": T - 208,
		"Argv": T - 200, "Envp": T - 176, "Auxv": T - 160,
		"ArgStart": T - 20, "ArgEnd": T - 15, "EnvStart": T - 15, "EnvEnd": T - 11,
		"Execfn": T - 11, "Platform": T - 39, "Random": T - 55,
	}
	got := map[string]uint64{
		"SP": s.SP, "Bottom": s.Bottom,
		"Argv": s.Argv, "Envp": s.Envp, "Auxv": s.Auxv,
		"ArgStart": s.ArgStart, "ArgEnd": s.ArgEnd, "EnvStart": s.EnvStart, "EnvEnd": s.EnvEnd,
		"Execfn": s.Execfn, "Platform": s.Platform, "Random": s.Random,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got T-%d, want T-%d", k, T-got[k], T-w)
		}
	}

	wantData := make([]byte, 208)
	at := func(addr uint64) []byte { return wantData[addr-(T-208):] }
	words := []uint64{
		2, T - 20, T - 18, 0, // argc, argv
		T - 15, 0, // envp
		arch.AT_PAGESZ, 4096, arch.AT_SECURE, 0, arch.AT_RANDOM, T - 55,
		arch.AT_EXECFN, T - 11, arch.AT_PLATFORM, T - 39, arch.AT_NULL, 0,
	}
	for i, w := range words {
		binary.LittleEndian.PutUint64(at(T-208+uint64(i)*8), w)
	}
	copy(at(T-55), random[:])
	copy(at(T-39), "x86_64\x00")
	copy(at(T-20), "a\x00bc\x00X=1\x00/p\x00")
	if !bytes.Equal(s.Data, wantData) {
		t.Errorf("Data:\ngot\n%s\nwant\n%s", dump(s.Data, T-208), dump(wantData, T-208))
	}

	wantAux := []AuxEntry{
		{arch.AT_PAGESZ, 4096}, {arch.AT_SECURE, 0}, {arch.AT_RANDOM, T - 55},
		{arch.AT_EXECFN, T - 11}, {arch.AT_PLATFORM, T - 39}, {arch.AT_NULL, 0},
	}
	if !reflect.DeepEqual(s.AuxvEntries, wantAux) {
		t.Errorf("AuxvEntries: got %v, want %v", s.AuxvEntries, wantAux)
	}
}

// dump formats data at addr as 16-byte lines for failure messages.
func dump(data []byte, addr uint64) string {
	var b strings.Builder
	for i := 0; i < len(data); i += 16 {
		fmt.Fprintf(&b, "T-%-4d % x\n", testTop-addr-uint64(i), data[i:min(i+16, len(data))])
	}
	return b.String()
}

// decoded is a stack read back from its bytes, as a program would.
type decoded struct {
	argv, envv []string
	auxv       []AuxEntry
}

// decodeStack reads argc, argv, envp and auxv starting at rsp == bottom.
func decodeStack(t *testing.T, data []byte, bottom uint64) decoded {
	t.Helper()
	word := func(addr uint64) uint64 {
		if addr < bottom || addr-bottom+8 > uint64(len(data)) {
			t.Fatalf("word at %#x outside the stack [%#x, %#x)", addr, bottom, bottom+uint64(len(data)))
		}
		return binary.LittleEndian.Uint64(data[addr-bottom:])
	}
	str := func(addr uint64) string {
		if addr < bottom || addr >= bottom+uint64(len(data)) {
			t.Fatalf("string at %#x outside the stack", addr)
		}
		s, _, ok := bytes.Cut(data[addr-bottom:], []byte{0})
		if !ok {
			t.Fatalf("string at %#x not terminated", addr)
		}
		return string(s)
	}
	var d decoded
	argc := word(bottom)
	p := bottom + 8
	for i := uint64(0); i < argc; i++ {
		d.argv = append(d.argv, str(word(p)))
		p += 8
	}
	if word(p) != 0 {
		t.Fatalf("argv not NULL-terminated")
	}
	for p += 8; word(p) != 0; p += 8 {
		d.envv = append(d.envv, str(word(p)))
	}
	for p += 8; ; p += 16 {
		e := AuxEntry{word(p), word(p + 8)}
		d.auxv = append(d.auxv, e)
		if e.Key == arch.AT_NULL {
			break
		}
	}
	return d
}

// TestBuildStackShapes checks, over argument counts 0..5 and a range of
// string lengths, that rsp is 16-byte aligned and that what a program reads
// back is what was passed.
func TestBuildStackShapes(t *testing.T) {
	for argc := 0; argc <= 5; argc++ {
		for envc := 0; envc <= 2; envc++ {
			for strLen := 0; strLen < 17; strLen += 3 {
				for _, platform := range []string{"", "x86_64"} {
					var argv, envv []string
					for i := 0; i < argc; i++ {
						argv = append(argv, strings.Repeat("a", strLen+i))
					}
					for i := 0; i < envc; i++ {
						envv = append(envv, fmt.Sprintf("E%d=%s", i, strings.Repeat("v", strLen)))
					}
					name := fmt.Sprintf("argc=%d,envc=%d,len=%d,platform=%q", argc, envc, strLen, platform)
					checkShape(t, name, argv, envv, platform)
				}
			}
		}
	}
}

func checkShape(t *testing.T, name string, argv, envv []string, platform string) {
	t.Helper()
	a := StackArgs{Argv: argv, Envv: envv, Execfn: "/bin/x", Platform: platform,
		Auxv: []AuxEntry{{arch.AT_HWCAP, 1}, {arch.AT_SECURE, 0}, {arch.AT_HWCAP2, 2}, {27, 28}}}
	s, err := BuildStack(testTop, a)
	if err != nil {
		t.Fatalf("%s: BuildStack: %v", name, err)
	}
	if s.SP%16 != 0 {
		t.Errorf("%s: SP %#x not 16-byte aligned", name, s.SP)
	}
	if got, want := uint64(len(s.Data)), testTop-s.SP; got != want {
		t.Errorf("%s: len(Data) got %d, want %d", name, got, want)
	}
	d := decodeStack(t, s.Data, s.SP)
	wantArgv := argv
	if len(wantArgv) == 0 {
		wantArgv = []string{""}
	}
	if !reflect.DeepEqual(d.argv, wantArgv) {
		t.Errorf("%s: argv got %q, want %q", name, d.argv, wantArgv)
	}
	if len(d.envv) != len(envv) || len(envv) > 0 && !reflect.DeepEqual(d.envv, envv) {
		t.Errorf("%s: envp got %q, want %q", name, d.envv, envv)
	}
	wantKeys := []uint64{arch.AT_HWCAP, arch.AT_SECURE, arch.AT_RANDOM, arch.AT_HWCAP2, arch.AT_EXECFN}
	if platform != "" {
		wantKeys = append(wantKeys, arch.AT_PLATFORM)
	}
	wantKeys = append(wantKeys, 27, arch.AT_NULL)
	var keys []uint64
	for _, e := range d.auxv {
		keys = append(keys, e.Key)
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("%s: auxv keys got %v, want %v", name, keys, wantKeys)
	}
	if !reflect.DeepEqual(d.auxv, s.AuxvEntries) {
		t.Errorf("%s: auxv on the stack %v differs from AuxvEntries %v", name, d.auxv, s.AuxvEntries)
	}
	// The strings sit right below the NULL word at the top.
	if got, want := s.Execfn+uint64(len("/bin/x"))+1, uint64(testTop-8); got != want {
		t.Errorf("%s: execfn ends at %#x, want %#x", name, got, want)
	}
	if got := binary.LittleEndian.Uint64(s.Data[len(s.Data)-8:]); got != 0 {
		t.Errorf("%s: top word got %#x, want 0", name, got)
	}
}

func TestStringLimit(t *testing.T) {
	tests := []struct {
		name       string
		stackLimit uint64
		argc, envc int
		want       uint64
		wantOK     bool
	}{
		{"default 8 MiB", 0, 1, 0, 2<<20 - 8, true},
		{"explicit 8 MiB", 8 << 20, 2, 3, 2<<20 - 40, true},
		{"argc 0 counts as 1", 8 << 20, 0, 0, 2<<20 - 8, true},
		{"small stack keeps ARG_MAX", 64 << 10, 1, 1, 131072 - 16, true},
		{"huge stack capped at 3/4 _STK_LIM", 1 << 40, 1, 0, 6<<20 - 8, true},
		{"pointers alone too many", 0, 1 << 18, 0, 0, false},
	}
	for _, tt := range tests {
		got, ok := StringLimit(tt.stackLimit, tt.argc, tt.envc)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: StringLimit(%d, %d, %d) got %d, %v, want %d, %v", tt.name, tt.stackLimit, tt.argc, tt.envc, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBuildStackLimits(t *testing.T) {
	long := strings.Repeat("x", MaxArgStrlen-1) // MAX_ARG_STRLEN with its NUL
	// 15 strings of MAX_ARG_STRLEN and one more, plus the empty execfn,
	// fill exactly the 2 MiB default limit less 16 pointers.
	limit, _ := StringLimit(0, 16, 0)
	fill := func(total uint64) []string {
		argv := make([]string, 16)
		for i := range 15 {
			argv[i] = long
		}
		argv[15] = strings.Repeat("y", int(total-1-15*MaxArgStrlen-1))
		return argv
	}
	tests := []struct {
		name    string
		a       StackArgs
		wantErr error
	}{
		{"longest string", StackArgs{Argv: []string{long}}, nil},
		{"string too long", StackArgs{Argv: []string{long + "x"}}, ErrArgsTooLong},
		{"env string too long", StackArgs{Envv: []string{long + "x"}}, ErrArgsTooLong},
		{"execfn too long", StackArgs{Execfn: long + "x"}, ErrArgsTooLong},
		{"total at the limit", StackArgs{Execfn: "", Argv: fill(limit)}, nil},
		{"total over the limit", StackArgs{Execfn: "", Argv: fill(limit + 1)}, ErrArgsTooLong},
		{"many strings", StackArgs{Argv: make([]string, 20), Envv: []string{long, long, long, long, long, long, long, long, long, long, long, long, long, long, long, long}}, ErrArgsTooLong},
		{"bigger rlimit", StackArgs{StackLimit: 64 << 20, Argv: make([]string, 20), Envv: []string{long, long, long, long, long, long, long, long, long, long, long, long, long, long, long, long}}, nil},
	}
	for _, tt := range tests {
		_, err := BuildStack(testTop, tt.a)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: BuildStack got %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestBuildStackInvalid(t *testing.T) {
	tests := []struct {
		name string
		top  uint64
		a    StackArgs
	}{
		{"unaligned top", testTop - 8, StackArgs{}},
		{"top too low", 0x100, StackArgs{Argv: []string{strings.Repeat("a", 300)}}},
		{"NUL in argv", testTop, StackArgs{Argv: []string{"a\x00b"}}},
		{"NUL in platform", testTop, StackArgs{Platform: "x\x00"}},
		{"caller AT_RANDOM", testTop, StackArgs{Auxv: []AuxEntry{{arch.AT_RANDOM, 1}}}},
		{"caller AT_NULL", testTop, StackArgs{Auxv: []AuxEntry{{arch.AT_NULL, 0}}}},
	}
	for _, tt := range tests {
		if s, err := BuildStack(tt.top, tt.a); err == nil {
			t.Errorf("%s: BuildStack got SP %#x, want an error", tt.name, s.SP)
		}
	}
}

package ptrace

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConstantsMatchHeaders compiles a C program that prints the header
// values of the constants this package defines itself, and compares.
func TestConstantsMatchHeaders(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot read the C headers")
	}
	consts := []struct {
		c   string
		got uint64
	}{
		{"SI_KERNEL", siKernel},
		{"SEGV_MAPERR", segvMaperr},
		{"SEGV_ACCERR", segvAccerr},
		{"SEGV_PKUERR", segvPkuerr},
		{"BUS_ADRALN", busAdraln},
		{"BUS_ADRERR", busAdrerr},
		{"BUS_OBJERR", busObjerr},
		{"BUS_MCEERR_AR", busMceerAR},
		{"BUS_MCEERR_AO", busMceerAO},
		{"TRAP_BRKPT", trapBrkpt},
		{"TRAP_TRACE", trapTrace},
		{"TRAP_HWBKPT", trapHwbkpt},
		{"FPE_INTDIV", fpeIntdiv},
		{"FPE_INTOVF", fpeIntovf},
		{"SA_NOCLDSTOP", saNoCldStop},
		{"(unsigned long)SIG_IGN", sigIgn},
		{"offsetof(struct user, u_debugreg)", userDebugRegOff},
		{"sizeof(siginfo_t)", uint64(siginfoSize)},
		{"offsetof(siginfo_t, si_addr)", 16},
	}
	var src bytes.Buffer
	src.WriteString("#define _GNU_SOURCE\n#include <signal.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <sys/user.h>\nint main(void) {\n")
	for _, c := range consts {
		fmt.Fprintf(&src, "\tprintf(\"%%lu\\n\", (unsigned long)(%s));\n", c.c)
	}
	src.WriteString("\treturn 0;\n}\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "h.c"), src.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "h")
	if out, err := exec.Command(cc, "-o", bin, filepath.Join(dir, "h.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(consts) {
		t.Fatalf("got %d values, want %d", len(lines), len(consts))
	}
	for i, c := range consts {
		var want uint64
		fmt.Sscan(lines[i], &want)
		if c.got != want {
			t.Errorf("%s = %d here, %d in the headers", c.c, c.got, want)
		}
	}
}

// TestStubELF checks the generated executable with Go's ELF reader.
func TestStubELF(t *testing.T) {
	img, err := buildStubELF()
	if err != nil {
		t.Fatalf("buildStubELF: %v", err)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("parse stub ELF: %v", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("ELF class/machine/type = %v/%v/%v, want ELFCLASS64/EM_X86_64/ET_EXEC", f.Class, f.Machine, f.Type)
	}
	if f.Entry != stubWaitLoop {
		t.Errorf("entry = %#x, want the wait loop %#x", f.Entry, uint64(stubWaitLoop))
	}
	var loads []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
		}
	}
	wantLoads := []struct {
		vaddr uint64
		flags elf.ProgFlag
	}{{stubCode, elf.PF_R | elf.PF_X}, {stubData, elf.PF_R}}
	if len(loads) != len(wantLoads) {
		t.Fatalf("%d PT_LOAD segments, want %d", len(loads), len(wantLoads))
	}
	for i, w := range wantLoads {
		p := loads[i]
		if p.Vaddr != w.vaddr || p.Flags != w.flags || p.Memsz != p.Filesz || p.Vaddr+p.Memsz > stubEnd {
			t.Errorf("PT_LOAD %d: vaddr %#x flags %v filesz %#x memsz %#x, want vaddr %#x flags %v inside the stub",
				i, p.Vaddr, p.Flags, p.Filesz, p.Memsz, w.vaddr, w.flags)
		}
	}
	// The instructions the platform relies on are where it expects them.
	code := img[:len(img)/2]
	for _, c := range []struct {
		addr uint64
		want []byte
	}{
		{stubInjectSyscall, []byte{0x0f, 0x05, 0xcc}},
		{stubCloneSyscall, []byte{0x0f, 0x05}},
		{stubWaitSyscall, []byte{0x0f, 0x05}},
	} {
		off := c.addr - stubCode
		if got := code[off : off+uint64(len(c.want))]; !bytes.Equal(got, c.want) {
			t.Errorf("code at %#x = % x, want % x", c.addr, got, c.want)
		}
	}
}

// TestSeccompFilterShape checks the filter's ends: every path returns,
// the last two instructions are allow and kill, and every syscall site
// is tested.
func TestSeccompFilterShape(t *testing.T) {
	f := stubSeccompFilter()
	n := len(f)
	if n < 4 || n > 255 {
		t.Fatalf("filter has %d instructions", n)
	}
	ret := uint16(unix.BPF_RET | unix.BPF_K)
	if f[n-2].Code != ret || f[n-2].K != unix.SECCOMP_RET_ALLOW {
		t.Errorf("second to last instruction = %+v, want ret ALLOW", f[n-2])
	}
	if f[n-1].Code != ret || f[n-1].K != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("last instruction = %+v, want ret KILL_PROCESS", f[n-1])
	}
	for i, ins := range f {
		if ins.Code&0x07 == unix.BPF_JMP {
			if i+1+int(ins.Jt) >= n || i+1+int(ins.Jf) >= n || (ins.Code == unix.BPF_JMP|unix.BPF_JA && i+1+int(ins.K) >= n) {
				t.Errorf("instruction %d jumps past the end: %+v", i, ins)
			}
		}
	}
	sites := map[uint32]bool{}
	for _, ins := range f {
		if ins.Code == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K {
			sites[ins.K] = true
		}
	}
	for _, s := range stubSyscalls {
		if !sites[uint32(s.ip)] {
			t.Errorf("syscall site %#x not in the filter", s.ip)
		}
	}
}

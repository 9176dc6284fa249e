package ptrace

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// The stub's seccomp filter is the second wall around the program: the
// first is PTRACE_SYSEMU, under which no system call of the program ever
// runs on the host. Should that fail, the filter lets through only the
// calls the platform itself injects, and only from the stub's own syscall
// instructions; anything else kills the whole stub process.
//
// Linux: kernel/seccomp.c; the filter sees struct seccomp_data
// (include/uapi/linux/seccomp.h).

// Offsets in struct seccomp_data.
const (
	seccompDataNR     = 0
	seccompDataArch   = 4
	seccompDataIPLow  = 8
	seccompDataIPHigh = 12
)

// stubSyscalls lists, per syscall instruction of the stub, the system
// calls it may make once the filter is in place.
var stubSyscalls = []struct {
	ip  uint64 // address after the syscall instruction
	nrs []uint32
}{
	{stubInjectSyscall + syscallInsnLen, []uint32{unix.SYS_MMAP, unix.SYS_MUNMAP, unix.SYS_EXIT}},
	{stubCloneSyscall + syscallInsnLen, []uint32{unix.SYS_CLONE}},
	{stubWaitSyscall + syscallInsnLen, []uint32{unix.SYS_PAUSE}},
}

// bpfProgram assembles classic BPF with symbolic jump targets.
type bpfProgram struct {
	ins    []unix.SockFilter
	labels map[string]int
	// fixups are jumps waiting for their labels.
	fixups []bpfFixup
}

// bpfFixup is a jump at instruction at: conditional to jt/jf ("" is the
// next instruction), or unconditional (BPF_JA) to ja.
type bpfFixup struct {
	at         int
	jt, jf, ja string
}

func (p *bpfProgram) label(name string) { p.labels[name] = len(p.ins) }

func (p *bpfProgram) stmt(code uint16, k uint32) {
	p.ins = append(p.ins, unix.SockFilter{Code: code, K: k})
}

// jeq jumps to jt when A == k, else to jf.
func (p *bpfProgram) jeq(k uint32, jt, jf string) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.ins), jt: jt, jf: jf})
	p.stmt(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, k)
}

// ja jumps to target.
func (p *bpfProgram) ja(target string) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.ins), ja: target})
	p.stmt(unix.BPF_JMP|unix.BPF_JA, 0)
}

// resolve fills in the jump offsets. Classic BPF only jumps forward;
// conditional jumps reach at most 255 instructions, far more than the
// stub's filter has.
func (p *bpfProgram) resolve() []unix.SockFilter {
	off := func(from int, name string) int {
		if name == "" {
			return 0
		}
		to, ok := p.labels[name]
		if !ok || to <= from {
			panic("seccomp: no forward label " + name)
		}
		return to - from - 1
	}
	for _, f := range p.fixups {
		if f.ja != "" {
			p.ins[f.at].K = uint32(off(f.at, f.ja))
			continue
		}
		jt, jf := off(f.at, f.jt), off(f.at, f.jf)
		if jt > 255 || jf > 255 {
			panic("seccomp: conditional jump too far")
		}
		p.ins[f.at].Jt, p.ins[f.at].Jf = uint8(jt), uint8(jf)
	}
	return p.ins
}

// stubSeccompFilter returns the filter. In pseudo code:
//
//	if arch != AUDIT_ARCH_X86_64: kill
//	if ip>>32 == 0xffffffff: trap      (the vsyscall page, see below)
//	if ip>>32 != stub>>32: kill
//	X = nr
//	for each stub syscall instruction s:
//		if ip&0xffffffff == s.ip&0xffffffff:
//			if X in s.nrs: allow
//			kill
//	kill
func stubSeccompFilter() []unix.SockFilter {
	p := &bpfProgram{labels: map[string]int{}}
	const ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	p.stmt(ldAbs, seccompDataArch)
	p.jeq(unix.AUDIT_ARCH_X86_64, "", "kill")
	p.stmt(ldAbs, seccompDataIPHigh)
	p.jeq(vsyscallStart>>32, "trap", "")
	p.jeq(uint32(stubStart>>32), "", "kill")
	p.stmt(ldAbs, seccompDataNR)
	p.stmt(unix.BPF_MISC|unix.BPF_TAX, 0)
	p.stmt(ldAbs, seccompDataIPLow)
	site := func(i int) string { return "site" + strconv.Itoa(i) }
	for i, s := range stubSyscalls {
		p.jeq(uint32(s.ip), site(i), "")
	}
	p.ja("kill")
	for i, s := range stubSyscalls {
		p.label(site(i))
		p.stmt(unix.BPF_MISC|unix.BPF_TXA, 0)
		for _, nr := range s.nrs {
			p.jeq(nr, "allow", "")
		}
		p.ja("kill")
	}
	// A call into the legacy vsyscall page is emulated by the host, which
	// asks seccomp first (Linux: arch/x86/entry/vsyscall/vsyscall_64.c:
	// emulate_vsyscall()). SIGSYS instead of a kill lets the platform
	// report the fault that a machine without the page (KVM) raises.
	p.label("trap")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_TRAP)
	p.label("allow")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	p.label("kill")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS)
	return p.resolve()
}

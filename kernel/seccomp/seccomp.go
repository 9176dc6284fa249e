// Package seccomp is the classic-BPF half of seccomp(2): the structures of
// the ABI (struct sock_filter, struct seccomp_data, the SECCOMP_RET_*
// actions), the checks a filter must pass before it is installed, and the
// interpreter that runs an installed filter against a system call.
//
// The kernel package owns everything about tasks: which filters a task
// has, what an action does to it, ptrace's PTRACE_EVENT_SECCOMP.
//
// Why not golang.org/x/net/bpf: its VM has no BPF_NEG (which seccomp
// filters may use), loads packet words big-endian where seccomp_data is
// native-endian, and accepts instructions seccomp refuses; the checks
// below must be Linux's exactly, and once they are, the interpreter for
// the instructions that pass them is a short switch.
//
// Linux: kernel/seccomp.c (seccomp_check_filter(), seccomp_run_filters()),
// net/core/filter.c (bpf_check_classic(), check_load_and_stores()),
// seccomp(2), bpf(4) for the classic instruction set.
package seccomp

import (
	"encoding/binary"
	"errors"
)

// Instruction is struct sock_filter.
type Instruction struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// InstructionSize is sizeof(struct sock_filter).
const InstructionSize = 8

// DecodeInstructions decodes struct sock_filter entries from b.
func DecodeInstructions(b []byte) []Instruction {
	out := make([]Instruction, len(b)/InstructionSize)
	for i := range out {
		p := b[i*InstructionSize:]
		out[i] = Instruction{
			Code: binary.LittleEndian.Uint16(p),
			Jt:   p[2],
			Jf:   p[3],
			K:    binary.LittleEndian.Uint32(p[4:]),
		}
	}
	return out
}

// EncodeInstructions encodes prog as struct sock_filter entries.
func EncodeInstructions(prog []Instruction) []byte {
	b := make([]byte, len(prog)*InstructionSize)
	for i, in := range prog {
		p := b[i*InstructionSize:]
		binary.LittleEndian.PutUint16(p, in.Code)
		p[2], p[3] = in.Jt, in.Jf
		binary.LittleEndian.PutUint32(p[4:], in.K)
	}
	return b
}

// Limits (Linux: include/uapi/linux/bpf_common.h BPF_MAXINSNS,
// kernel/seccomp.c MAX_INSNS_PER_PATH).
const (
	// MaxInstructions is the longest filter one call may install.
	MaxInstructions = 4096
	// MaxPathInstructions bounds the instructions of all filters a
	// system call runs through, counting 4 more per filter already
	// installed; beyond it installing fails with ENOMEM. 16384, as
	// measured on Linux 6.18 (three filters of 4096 instructions leave
	// room for one of 4084), where MAX_INSNS_PER_PATH is
	// a quarter of a 256 KiB budget.
	MaxPathInstructions = 16384
	// PathPenalty is the per-filter addition to that count.
	PathPenalty = 4
	// memWords is BPF_MEMWORDS, the scratch memory.
	memWords = 16
)

// Data is struct seccomp_data, what a filter reads.
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// DataSize is sizeof(struct seccomp_data).
const DataSize = 64

// AuditArchX86_64 is AUDIT_ARCH_X86_64 (include/uapi/linux/audit.h).
const AuditArchX86_64 = 0xc000003e

// word returns the 32-bit word at byte offset off of the data's native
// (little-endian) layout; off is a multiple of 4 below DataSize.
func (d *Data) word(off uint32) uint32 {
	switch {
	case off == 0:
		return uint32(d.Nr)
	case off == 4:
		return d.Arch
	case off == 8:
		return uint32(d.InstructionPointer)
	case off == 12:
		return uint32(d.InstructionPointer >> 32)
	}
	a := d.Args[(off-16)/8]
	if off%8 != 0 {
		return uint32(a >> 32)
	}
	return uint32(a)
}

// Actions, the high 16 bits of a filter's return value (include/uapi/
// linux/seccomp.h). The low 16 bits are the action's data.
const (
	RetKillProcess = 0x80000000
	RetKillThread  = 0x00000000
	RetTrap        = 0x00030000
	RetErrno       = 0x00050000
	RetUserNotif   = 0x7fc00000
	RetTrace       = 0x7ff00000
	RetLog         = 0x7ffc0000
	RetAllow       = 0x7fff0000

	RetActionFull = 0xffff0000
	RetAction     = 0x7fff0000
	RetData       = 0x0000ffff
)

// KnownAction reports whether a is one of the actions above, as
// SECCOMP_GET_ACTION_AVAIL answers.
func KnownAction(a uint32) bool {
	switch a {
	case RetKillProcess, RetKillThread, RetTrap, RetErrno, RetUserNotif, RetTrace, RetLog, RetAllow:
		return true
	}
	return false
}

// Precedes reports whether return value a takes precedence over b when
// several filters answer one system call: the lower action wins, compared
// as signed so that KILL_PROCESS (0x8000...) is the strongest
// (kernel/seccomp.c:seccomp_run_filters(): ACTION_ONLY is a signed int).
func Precedes(a, b uint32) bool {
	return int32(a&RetActionFull) < int32(b&RetActionFull)
}

// Classic BPF opcode fields (include/uapi/linux/bpf_common.h, filter.h).
const (
	classLD   = 0x00
	classLDX  = 0x01
	classST   = 0x02
	classSTX  = 0x03
	classALU  = 0x04
	classJMP  = 0x05
	classRET  = 0x06
	classMISC = 0x07

	sizeW = 0x00

	modeIMM = 0x00
	modeABS = 0x20
	modeMEM = 0x60
	modeLEN = 0x80

	opAdd = 0x00
	opSub = 0x10
	opMul = 0x20
	opDiv = 0x30
	opOr  = 0x40
	opAnd = 0x50
	opLsh = 0x60
	opRsh = 0x70
	opNeg = 0x80
	opMod = 0x90
	opXor = 0xa0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJGE  = 0x30
	jmpJSET = 0x40

	srcK = 0x00
	srcX = 0x08

	retK = 0x00
	retA = 0x10

	miscTAX = 0x00
	miscTXA = 0x80
)

// Opcodes as seccomp runs them after its rewrite: the load of a data word
// and the two lengths become these.
const (
	codeLoadData = classLD | sizeW | modeABS
	codeLoadLenA = classLD | sizeW | modeLEN
	codeLoadLenX = classLDX | sizeW | modeLEN
)

// ErrInvalid is the error of a filter Check refuses (EINVAL).
var ErrInvalid = errors.New("invalid seccomp filter")

// allowed is the instruction set a seccomp filter may use, after the loads
// of seccomp_data words and of its length (kernel/seccomp.c:
// seccomp_check_filter(); BPF_MOD is not among them).
var allowed = map[uint16]bool{
	codeLoadData: true, codeLoadLenA: true, codeLoadLenX: true,
	classRET | retK: true, classRET | retA: true,
	classALU | opAdd | srcK: true, classALU | opAdd | srcX: true,
	classALU | opSub | srcK: true, classALU | opSub | srcX: true,
	classALU | opMul | srcK: true, classALU | opMul | srcX: true,
	classALU | opDiv | srcK: true, classALU | opDiv | srcX: true,
	classALU | opAnd | srcK: true, classALU | opAnd | srcX: true,
	classALU | opOr | srcK: true, classALU | opOr | srcX: true,
	classALU | opXor | srcK: true, classALU | opXor | srcX: true,
	classALU | opLsh | srcK: true, classALU | opLsh | srcX: true,
	classALU | opRsh | srcK: true, classALU | opRsh | srcX: true,
	classALU | opNeg:  true,
	classLD | modeIMM: true, classLDX | modeIMM: true,
	classMISC | miscTAX: true, classMISC | miscTXA: true,
	classLD | modeMEM: true, classLDX | modeMEM: true,
	classST: true, classSTX: true,
	classJMP | jmpJA:         true,
	classJMP | jmpJEQ | srcK: true, classJMP | jmpJEQ | srcX: true,
	classJMP | jmpJGE | srcK: true, classJMP | jmpJGE | srcX: true,
	classJMP | jmpJGT | srcK: true, classJMP | jmpJGT | srcX: true,
	classJMP | jmpJSET | srcK: true, classJMP | jmpJSET | srcX: true,
}

// Check validates prog as Linux does before installing it: the length,
// the generic classic-BPF rules (bpf_check_classic(): no division by a
// zero constant, no constant shift of 32 or more, scratch words in range,
// jumps inside the program, a return last, no scratch word read before a
// store on every path to it) and seccomp's own instruction set and
// aligned, in-bounds loads of seccomp_data. It returns ErrInvalid or nil.
func Check(prog []Instruction) error {
	n := len(prog)
	if n == 0 || n > MaxInstructions {
		return ErrInvalid
	}
	for pc, in := range prog {
		if !allowed[in.Code] {
			return ErrInvalid
		}
		switch in.Code {
		case classALU | opDiv | srcK:
			if in.K == 0 {
				return ErrInvalid
			}
		case classALU | opLsh | srcK, classALU | opRsh | srcK:
			if in.K >= 32 {
				return ErrInvalid
			}
		case classLD | modeMEM, classLDX | modeMEM, classST, classSTX:
			if in.K >= memWords {
				return ErrInvalid
			}
		case classJMP | jmpJA:
			if uint64(in.K) >= uint64(n-pc-1) {
				return ErrInvalid
			}
		case codeLoadData:
			if in.K >= DataSize || in.K&3 != 0 {
				return ErrInvalid
			}
		}
		if in.Code&0x07 == classJMP && in.Code != classJMP|jmpJA {
			if pc+int(in.Jt)+1 >= n || pc+int(in.Jf)+1 >= n {
				return ErrInvalid
			}
		}
	}
	if prog[n-1].Code&0x07 != classRET {
		return ErrInvalid
	}
	return checkScratch(prog)
}

// checkScratch refuses a program that may read a scratch word no path
// has stored to (net/core/filter.c:check_load_and_stores()): a forward
// pass keeps, per instruction, the set of words stored on every path that
// reaches it.
func checkScratch(prog []Instruction) error {
	const all = uint16(1<<memWords - 1)
	valid := make([]uint16, len(prog))
	for i := range valid {
		valid[i] = all
	}
	mem := uint16(0)
	for pc, in := range prog {
		mem &= valid[pc]
		switch in.Code {
		case classST, classSTX:
			mem |= 1 << in.K
		case classLD | modeMEM, classLDX | modeMEM:
			if mem&(1<<in.K) == 0 {
				return ErrInvalid
			}
		case classJMP | jmpJA:
			valid[pc+1+int(in.K)] &= mem
			mem = all
		default:
			if in.Code&0x07 == classJMP {
				valid[pc+1+int(in.Jt)] &= mem
				valid[pc+1+int(in.Jf)] &= mem
				mem = all
			}
		}
	}
	return nil
}

// Filter is a checked program, ready to run.
type Filter struct {
	prog []Instruction
}

// NewFilter checks prog (Check) and returns it as a Filter. prog is
// copied.
func NewFilter(prog []Instruction) (*Filter, error) {
	if err := Check(prog); err != nil {
		return nil, err
	}
	return &Filter{prog: append([]Instruction(nil), prog...)}, nil
}

// Len returns the number of instructions.
func (f *Filter) Len() int { return len(f.prog) }

// Program returns a copy of the instructions as installed (for
// PTRACE_SECCOMP_GET_FILTER).
func (f *Filter) Program() []Instruction { return append([]Instruction(nil), f.prog...) }

// Run runs the filter against d and returns its 32-bit verdict. Check has
// ruled out every way to fail but a division by a zero X, which ends the
// program with 0 (SECCOMP_RET_KILL_THREAD), as Linux's conversion of
// classic BPF does (net/core/filter.c:convert_bpf_extensions() ->
// "if (X == 0) return 0").
func (f *Filter) Run(d *Data) uint32 {
	var a, x uint32
	var mem [memWords]uint32
	prog := f.prog
	for pc := 0; pc < len(prog); pc++ {
		in := &prog[pc]
		switch in.Code {
		case codeLoadData:
			a = d.word(in.K)
		case codeLoadLenA:
			a = DataSize
		case codeLoadLenX:
			x = DataSize
		case classLD | modeIMM:
			a = in.K
		case classLDX | modeIMM:
			x = in.K
		case classLD | modeMEM:
			a = mem[in.K]
		case classLDX | modeMEM:
			x = mem[in.K]
		case classST:
			mem[in.K] = a
		case classSTX:
			mem[in.K] = x
		case classMISC | miscTAX:
			x = a
		case classMISC | miscTXA:
			a = x
		case classRET | retK:
			return in.K
		case classRET | retA:
			return a
		case classJMP | jmpJA:
			pc += int(in.K)
		case classALU | opNeg:
			a = -a
		default:
			v := in.K
			if in.Code&srcX != 0 {
				v = x
			}
			switch in.Code & 0x07 {
			case classALU:
				switch in.Code & 0xf0 {
				case opAdd:
					a += v
				case opSub:
					a -= v
				case opMul:
					a *= v
				case opDiv:
					if v == 0 {
						return 0
					}
					a /= v
				case opAnd:
					a &= v
				case opOr:
					a |= v
				case opXor:
					a ^= v
				case opLsh:
					// x86's 32-bit shifts use the count mod 32,
					// as the JIT-compiled filter does.
					a <<= v & 31
				case opRsh:
					a >>= v & 31
				}
			case classJMP:
				var taken bool
				switch in.Code & 0xf0 {
				case jmpJEQ:
					taken = a == v
				case jmpJGT:
					taken = a > v
				case jmpJGE:
					taken = a >= v
				case jmpJSET:
					taken = a&v != 0
				}
				if taken {
					pc += int(in.Jt)
				} else {
					pc += int(in.Jf)
				}
			}
		}
	}
	// Unreachable for a checked program: the last instruction returns.
	return RetKillThread
}

package seccomp

import (
	"errors"
	"testing"
)

func stmt(code uint16, k uint32) Instruction { return Instruction{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) Instruction {
	return Instruction{Code: code, Jt: jt, Jf: jf, K: k}
}

const (
	ldW   = classLD | sizeW | modeABS
	retKc = classRET | retK
	retAc = classRET | retA
	jeqK  = classJMP | jmpJEQ | srcK
)

func TestCheck(t *testing.T) {
	ret := stmt(retKc, RetAllow)
	long := make([]Instruction, MaxInstructions+1)
	for i := range long {
		long[i] = ret
	}
	for _, c := range []struct {
		name string
		prog []Instruction
		ok   bool
	}{
		{"allow", []Instruction{ret}, true},
		{"empty", nil, false},
		{"too long", long, false},
		{"longest", long[:MaxInstructions], true},
		{"load nr", []Instruction{stmt(ldW, 0), ret}, true},
		{"load last arg word", []Instruction{stmt(ldW, 60), ret}, true},
		{"load past the data", []Instruction{stmt(ldW, 64), ret}, false},
		{"unaligned load", []Instruction{stmt(ldW, 2), ret}, false},
		{"half-word load", []Instruction{stmt(classLD|0x08|modeABS, 0), ret}, false},
		{"indirect load", []Instruction{stmt(classLD|sizeW|0x40, 0), ret}, false},
		{"len", []Instruction{stmt(codeLoadLenA, 0), stmt(codeLoadLenX, 0), ret}, true},
		{"no return last", []Instruction{stmt(ldW, 0)}, false},
		{"return A last", []Instruction{stmt(ldW, 0), stmt(retAc, 0)}, true},
		{"div by constant zero", []Instruction{stmt(classALU|opDiv|srcK, 0), ret}, false},
		{"div by X", []Instruction{stmt(classALU|opDiv|srcX, 0), ret}, true},
		{"mod refused", []Instruction{stmt(classALU|opMod|srcK, 3), ret}, false},
		{"neg", []Instruction{stmt(classALU|opNeg, 0), ret}, true},
		{"shift 31", []Instruction{stmt(classALU|opLsh|srcK, 31), ret}, true},
		{"shift 32", []Instruction{stmt(classALU|opRsh|srcK, 32), ret}, false},
		{"jump in range", []Instruction{jump(jeqK, 1, 0, 1), ret, ret}, true},
		{"jump past end", []Instruction{jump(jeqK, 1, 0, 2), ret, ret}, false},
		{"ja in range", []Instruction{stmt(classJMP|jmpJA, 1), ret, ret}, true},
		{"ja past end", []Instruction{stmt(classJMP|jmpJA, 2), ret, ret}, false},
		{"ja huge", []Instruction{stmt(classJMP|jmpJA, 0xffffffff), ret, ret}, false},
		{"scratch stored", []Instruction{stmt(classST, 3), stmt(classLD|modeMEM, 3), ret}, true},
		{"scratch not stored", []Instruction{stmt(classLD|modeMEM, 3), ret}, false},
		{"scratch word 16", []Instruction{stmt(classST, 16), ret}, false},
		{"scratch stored on one path only", []Instruction{
			jump(jeqK, 0, 0, 1),
			stmt(classST, 1),
			stmt(classLDX|modeMEM, 1),
			ret,
		}, false},
		{"scratch stored on both paths", []Instruction{
			stmt(classST, 1),
			jump(jeqK, 0, 0, 1),
			stmt(classST, 2),
			stmt(classLDX|modeMEM, 1),
			ret,
		}, true},
		{"unknown opcode", []Instruction{stmt(0xffff, 0), ret}, false},
		{"ancillary load", []Instruction{stmt(ldW, 0xfffff000), ret}, false},
	} {
		err := Check(c.prog)
		if (err == nil) != c.ok {
			t.Errorf("%s: Check = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v is not ErrInvalid", c.name, err)
		}
	}
}

func TestRun(t *testing.T) {
	d := &Data{Nr: 39, Arch: AuditArchX86_64, InstructionPointer: 0x1122334455667788,
		Args: [6]uint64{0xaaaabbbbccccdddd, 2, 3, 4, 5, 0xffffffff00000001}}
	for _, c := range []struct {
		name string
		prog []Instruction
		want uint32
	}{
		{"constant", []Instruction{stmt(retKc, RetErrno|5)}, RetErrno | 5},
		{"nr", []Instruction{stmt(ldW, 0), stmt(retAc, 0)}, 39},
		{"arch", []Instruction{stmt(ldW, 4), stmt(retAc, 0)}, AuditArchX86_64},
		{"ip low", []Instruction{stmt(ldW, 8), stmt(retAc, 0)}, 0x55667788},
		{"ip high", []Instruction{stmt(ldW, 12), stmt(retAc, 0)}, 0x11223344},
		{"arg0 low", []Instruction{stmt(ldW, 16), stmt(retAc, 0)}, 0xccccdddd},
		{"arg0 high", []Instruction{stmt(ldW, 20), stmt(retAc, 0)}, 0xaaaabbbb},
		{"arg5 high", []Instruction{stmt(ldW, 60), stmt(retAc, 0)}, 0xffffffff},
		{"len", []Instruction{stmt(codeLoadLenA, 0), stmt(retAc, 0)}, DataSize},
		{"jeq taken", []Instruction{stmt(ldW, 0), jump(jeqK, 39, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}, 1},
		{"jeq not taken", []Instruction{stmt(ldW, 0), jump(jeqK, 40, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}, 2},
		{"jgt", []Instruction{stmt(ldW, 0), jump(classJMP|jmpJGT|srcK, 38, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}, 1},
		{"jge equal", []Instruction{stmt(ldW, 0), jump(classJMP|jmpJGE|srcK, 39, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}, 1},
		{"jset", []Instruction{stmt(ldW, 0), jump(classJMP|jmpJSET|srcK, 0x40, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}, 2},
		{"jeq X", []Instruction{stmt(classLDX|modeIMM, 39), stmt(ldW, 0), jump(classJMP|jmpJEQ|srcX, 0, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}, 1},
		{"ja", []Instruction{stmt(classJMP|jmpJA, 1), stmt(retKc, 1), stmt(retKc, 2)}, 2},
		{"alu", []Instruction{
			stmt(classLD|modeIMM, 10),
			stmt(classALU|opAdd|srcK, 5),    // 15
			stmt(classALU|opMul|srcK, 4),    // 60
			stmt(classALU|opSub|srcK, 10),   // 50
			stmt(classALU|opDiv|srcK, 7),    // 7
			stmt(classALU|opLsh|srcK, 4),    // 112
			stmt(classALU|opRsh|srcK, 1),    // 56
			stmt(classALU|opOr|srcK, 1),     // 57
			stmt(classALU|opAnd|srcK, 0x3c), // 56
			stmt(classALU|opXor|srcK, 0xff), // 199
			stmt(retAc, 0),
		}, 199},
		{"neg", []Instruction{stmt(classLD|modeIMM, 1), stmt(classALU|opNeg, 0), stmt(retAc, 0)}, 0xffffffff},
		{"div by X zero", []Instruction{stmt(classLD|modeIMM, 1), stmt(classALU|opDiv|srcX, 0), stmt(retKc, RetAllow)}, 0},
		{"shift by X mod 32", []Instruction{stmt(classLD|modeIMM, 1), stmt(classLDX|modeIMM, 33), stmt(classALU|opLsh|srcX, 0), stmt(retAc, 0)}, 2},
		{"scratch", []Instruction{
			stmt(classLD|modeIMM, 7), stmt(classST, 15), stmt(classLDX|modeIMM, 9), stmt(classSTX, 0),
			stmt(classLD|modeMEM, 0), stmt(classLDX|modeMEM, 15), stmt(classALU|opAdd|srcX, 0), stmt(retAc, 0),
		}, 16},
		{"tax txa", []Instruction{stmt(classLD|modeIMM, 3), stmt(classMISC|miscTAX, 0), stmt(classLD|modeIMM, 0), stmt(classMISC|miscTXA, 0), stmt(retAc, 0)}, 3},
	} {
		f, err := NewFilter(c.prog)
		if err != nil {
			t.Errorf("%s: NewFilter: %v", c.name, err)
			continue
		}
		if got := f.Run(d); got != c.want {
			t.Errorf("%s: Run = %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestPrecedes(t *testing.T) {
	order := []uint32{RetKillProcess, RetKillThread, RetTrap, RetErrno, RetUserNotif, RetTrace, RetLog, RetAllow}
	for i := range order {
		for j := range order {
			if got := Precedes(order[i]|0x1234, order[j]); got != (i < j) {
				t.Errorf("Precedes(%#x, %#x) = %v", order[i], order[j], got)
			}
		}
	}
	if !KnownAction(RetLog) || KnownAction(0x7ffd0000) {
		t.Error("KnownAction wrong")
	}
}

func TestEncodeDecode(t *testing.T) {
	prog := []Instruction{{Code: 0x15, Jt: 1, Jf: 2, K: 0xdeadbeef}, {Code: 6, K: RetAllow}}
	b := EncodeInstructions(prog)
	if len(b) != 16 || b[0] != 0x15 || b[2] != 1 || b[3] != 2 || b[4] != 0xef {
		t.Fatalf("encoding %x", b)
	}
	got := DecodeInstructions(b)
	if len(got) != 2 || got[0] != prog[0] || got[1] != prog[1] {
		t.Fatalf("round trip %v", got)
	}
}

// FuzzFilter feeds arbitrary programs to Check and runs the ones it
// accepts: a checked filter must never panic and always end.
func FuzzFilter(f *testing.F) {
	f.Add(EncodeInstructions([]Instruction{stmt(ldW, 0), jump(jeqK, 39, 0, 1), stmt(retKc, 1), stmt(retKc, 2)}), int32(39), uint64(0))
	f.Add(EncodeInstructions([]Instruction{stmt(classST, 1), stmt(classLD|modeMEM, 1), stmt(classALU|opDiv|srcX, 0), stmt(retAc, 0)}), int32(1), uint64(5))
	f.Fuzz(func(t *testing.T, b []byte, nr int32, arg uint64) {
		prog := DecodeInstructions(b)
		flt, err := NewFilter(prog)
		if err != nil {
			return
		}
		flt.Run(&Data{Nr: nr, Arch: AuditArchX86_64, Args: [6]uint64{arg, ^arg}})
	})
}

// BenchmarkRunAllowlist runs a typical allowlist filter (an arch check,
// then a linear search of 32 system call numbers) for a call near the
// end of the list: the per-syscall cost a filtered program pays in
// ringbox's kernel.
func BenchmarkRunAllowlist(b *testing.B) {
	prog := []Instruction{
		stmt(ldW, 4),
		jump(jeqK, AuditArchX86_64, 1, 0),
		stmt(retKc, RetKillProcess),
		stmt(ldW, 0),
	}
	const n = 32
	for i := 0; i < n; i++ {
		prog = append(prog, jump(jeqK, uint32(i), uint8(n-i), 0))
	}
	prog = append(prog, stmt(retKc, RetErrno|1), stmt(retKc, RetAllow))
	f, err := NewFilter(prog)
	if err != nil {
		b.Fatal(err)
	}
	d := &Data{Nr: n - 1, Arch: AuditArchX86_64}
	b.ReportAllocs()
	for b.Loop() {
		if f.Run(d) != RetAllow {
			b.Fatal("wrong verdict")
		}
	}
}

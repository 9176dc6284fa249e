package ptrace

import "github.com/ringbox/ringbox/arch"

// cpuid executes CPUID with leaf in EAX and subleaf in ECX.
var cpuid = arch.CPUID

// CPUID leaves and bits used to size the XSAVE area (Intel SDM Vol. 1,
// 13.2).
const (
	cpuidFeatures   = 0x1
	cpuidXSAVEBit   = 1 << 26 // ECX of leaf 1
	cpuidXSAVE      = 0xd
	cpuidMaxLeafOff = 0x0
)

// hostXSAVESize returns the size of the XSAVE area of the features the
// host has enabled in XCR0 (CPUID.(EAX=0DH,ECX=0):EBX). That is the size
// of the NT_X86_XSTATE regset: Linux's xstateregs_set() accepts only a
// whole buffer of fpu_user_cfg.max_size bytes, which is this value for
// every feature a user thread may use. Without XSAVE the regset does not
// exist and only the legacy area is exchanged.
func hostXSAVESize() int {
	if max, _, _, _ := cpuid(cpuidMaxLeafOff, 0); max < cpuidXSAVE {
		return arch.MinFPStateSize
	}
	if _, _, ecx, _ := cpuid(cpuidFeatures, 0); ecx&cpuidXSAVEBit == 0 {
		return arch.MinFPStateSize
	}
	_, ebx, _, _ := cpuid(cpuidXSAVE, 0)
	if int(ebx) < arch.MinFPStateSize {
		return arch.MinFPStateSize
	}
	return int(ebx)
}

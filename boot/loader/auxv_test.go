package loader

import (
	"reflect"
	"testing"

	"github.com/ringbox/ringbox/arch"
)

// TestExecAuxvOrder checks that ExecAuxv and BuildStack together produce
// the auxiliary vector in the order Linux 6.18 does (as listed in the
// package documentation and measured by TestBuildStackNative).
func TestExecAuxvOrder(t *testing.T) {
	const rseqFeatureSize, rseqAlign = 27, 28 // AT_RSEQ_* (include/uapi/linux/auxvec.h)
	tests := []struct {
		name     string
		x        ExecAuxv
		platform string
		want     []uint64
	}{{
		name: "full",
		x: ExecAuxv{SysinfoEhdr: 0x7ffff7fc1000, MinSigStkSz: 3376, HWCap: 0x178bfbff, ClkTck: 100,
			Phdr: 0x400040, Phent: 56, Phnum: 10, Entry: 0x401000, UID: 1, EUID: 2, GID: 3, EGID: 4, HWCap2: 2,
			Extra: []AuxEntry{{rseqFeatureSize, 28}, {rseqAlign, 32}}},
		platform: "x86_64",
		want: []uint64{arch.AT_SYSINFO_EHDR, arch.AT_MINSIGSTKSZ, arch.AT_HWCAP, arch.AT_PAGESZ, arch.AT_CLKTCK,
			arch.AT_PHDR, arch.AT_PHENT, arch.AT_PHNUM, arch.AT_BASE, arch.AT_FLAGS, arch.AT_ENTRY,
			arch.AT_UID, arch.AT_EUID, arch.AT_GID, arch.AT_EGID, arch.AT_SECURE, arch.AT_RANDOM,
			arch.AT_HWCAP2, arch.AT_EXECFN, arch.AT_PLATFORM, rseqFeatureSize, rseqAlign, arch.AT_NULL},
	}, {
		name: "no vDSO, no platform",
		x:    ExecAuxv{ClkTck: 100, Secure: true},
		want: []uint64{arch.AT_HWCAP, arch.AT_PAGESZ, arch.AT_CLKTCK,
			arch.AT_PHDR, arch.AT_PHENT, arch.AT_PHNUM, arch.AT_BASE, arch.AT_FLAGS, arch.AT_ENTRY,
			arch.AT_UID, arch.AT_EUID, arch.AT_GID, arch.AT_EGID, arch.AT_SECURE, arch.AT_RANDOM,
			arch.AT_HWCAP2, arch.AT_EXECFN, arch.AT_NULL},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := BuildStack(testTop, StackArgs{Argv: []string{"p"}, Execfn: "/p", Platform: tt.platform, Auxv: tt.x.Entries()})
			if err != nil {
				t.Fatalf("BuildStack: %v", err)
			}
			var keys []uint64
			vals := map[uint64]uint64{}
			for _, e := range s.AuxvEntries {
				keys = append(keys, e.Key)
				vals[e.Key] = e.Val
			}
			if !reflect.DeepEqual(keys, tt.want) {
				t.Errorf("keys:\ngot  %v\nwant %v", keys, tt.want)
			}
			// Spot-check that values travel with their keys.
			wantVals := map[uint64]uint64{arch.AT_PAGESZ: 4096, arch.AT_PHDR: tt.x.Phdr, arch.AT_EGID: tt.x.EGID,
				arch.AT_SECURE: map[bool]uint64{false: 0, true: 1}[tt.x.Secure], arch.AT_HWCAP2: tt.x.HWCap2,
				arch.AT_RANDOM: s.Random, arch.AT_EXECFN: s.Execfn}
			for k, w := range wantVals {
				if vals[k] != w {
					t.Errorf("auxv[%d]: got %#x, want %#x", k, vals[k], w)
				}
			}
		})
	}
}

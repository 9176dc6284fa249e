package arch

// Auxiliary vector keys (Linux: include/uapi/linux/auxvec.h and
// arch/x86/include/uapi/asm/auxvec.h).
const (
	AT_NULL          = 0
	AT_IGNORE        = 1
	AT_EXECFD        = 2
	AT_PHDR          = 3
	AT_PHENT         = 4
	AT_PHNUM         = 5
	AT_PAGESZ        = 6
	AT_BASE          = 7
	AT_FLAGS         = 8
	AT_ENTRY         = 9
	AT_NOTELF        = 10
	AT_UID           = 11
	AT_EUID          = 12
	AT_GID           = 13
	AT_EGID          = 14
	AT_PLATFORM      = 15
	AT_HWCAP         = 16
	AT_CLKTCK        = 17
	AT_SECURE        = 23
	AT_BASE_PLATFORM = 24
	AT_RANDOM        = 25
	AT_HWCAP2        = 26
	AT_EXECFN        = 31
	AT_SYSINFO_EHDR  = 33
	AT_MINSIGSTKSZ   = 51
)

// PageSize is the base page size.
const PageSize = 4096

// PageRoundDown and PageRoundUp align addresses to pages. PageRoundUp
// reports false when the result would overflow.
func PageRoundDown(a uint64) uint64 { return a &^ (PageSize - 1) }

// PageRoundUp rounds a up to a page boundary.
func PageRoundUp(a uint64) (uint64, bool) {
	r := (a + PageSize - 1) &^ (PageSize - 1)
	return r, r >= a
}

// MaxUserAddress is the end of the user half of a 48-bit address space
// (Linux: TASK_SIZE_MAX for 4-level paging, one page below the top of the
// lower canonical half).
const MaxUserAddress = 0x7ffffffff000

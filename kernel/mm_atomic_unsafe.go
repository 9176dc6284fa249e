package kernel

import "unsafe"

// u32At returns a pointer to the 32-bit word at off in page, for
// sync/atomic. The memory file's mapping is page aligned and off is a
// multiple of 4, so the word is naturally aligned as atomics require.
func u32At(page []byte, off uint64) *uint32 {
	return (*uint32)(unsafe.Pointer(&page[off:][:4][0]))
}

package kernel

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The structures below are copied to user memory in their x86-64 layout,
// which is the host's: the kernel only runs on x86-64.

// termiosSize is sizeof(struct termios) as TCGETS copies it on x86-64
// (Linux: include/uapi/asm-generic/termbits.h): x/sys's Termios is the
// larger struct termios2 with the two speed fields at the end.
const termiosSize = 36

func termiosBytes(t *unix.Termios) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(t)), termiosSize)
}

func winsizeBytes(w *unix.Winsize) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(w)), unsafe.Sizeof(*w))
}

func statBytes(s *unix.Stat_t) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(s)), unsafe.Sizeof(*s))
}

func utsnameBytes(u *unix.Utsname) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(u)), unsafe.Sizeof(*u))
}

func timespecBytes(ts *unix.Timespec) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(ts)), unsafe.Sizeof(*ts))
}

func rlimitBytes(r *unix.Rlimit) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r)), unsafe.Sizeof(*r))
}

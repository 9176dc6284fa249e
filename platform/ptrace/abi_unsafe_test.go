package ptrace

import "unsafe"

// siginfoSize is the size of the platform's siginfo_t mirror.
var siginfoSize = unsafe.Sizeof(siginfo{})

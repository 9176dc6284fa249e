// Package arch describes the x86-64 Linux ABI as data: the general register
// file in the layout of struct user_regs_struct, the FP/XSAVE state, the
// exception vectors, the auxiliary vector keys and the user segment
// selectors. It makes no host system calls, so the kernel, the platforms,
// the loader and the tests can all share it.
package arch

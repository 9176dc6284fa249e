// Package platformtest is the conformance suite of platform.Platform: one
// set of tests, run against every mechanism (KVM in package vmm, host
// ptrace in package platform/ptrace), that pins down what the kernel may
// rely on: system call events with the program's registers, return values
// seen by the program, page faults with address and access, each
// exception vector, Interrupt of a busy loop, mapping changes seen by user
// code, isolation between address spaces, and concurrency.
//
// The test programs are a few hand-assembled x86-64 instructions each,
// written into pages of the memory file and mapped at fixed addresses; the
// assembly is in a comment next to every byte sequence.
//
// RequireKVM is the one gate of KVM tests.
package platformtest

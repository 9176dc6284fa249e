// Command ringbox runs unmodified static Linux x86-64 programs in a
// sandbox whose kernel is ringbox's own application kernel, on KVM or, on
// hosts without /dev/kvm, on host ptrace.
//
//	ringbox run [flags] -- PROG [ARGS...]
//	ringbox platforms
//	ringbox bench [flags]
//	ringbox version
//
// Exit statuses of "ringbox run": the program's own status; 128+N when the
// program was killed by signal N; 2 for a bad command line; 125 when the
// sandbox cannot be set up (no usable platform, bad memory size); 126 when
// PROG cannot be executed (not ELF, wrong architecture, dynamic, no execute
// permission); 127 when PROG does not exist.
package main

import (
	"fmt"
	"os"
)

// Exit statuses of ringbox itself.
const (
	exitUsage       = 2
	exitSetup       = 125
	exitCannotExec  = 126
	exitNotFound    = 127
	exitSignalBase  = 128
	programNameHelp = "ringbox"
)

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func usage() {
	fmt.Fprint(os.Stderr, `ringbox: run Linux programs in a KVM (or ptrace) sandbox with its own kernel

Usage:
  ringbox run [flags] -- PROG [ARGS...]   run a static x86-64 program
  ringbox platforms                       tell which platforms this host supports
  ringbox bench [flags]                   compare native, ptrace and KVM execution
  ringbox version                         print the version

Run "ringbox run -h" for the flags of run.
`)
}

func realMain(args []string) int {
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:])
	case "platforms":
		return cmdPlatforms(args[1:])
	case "bench":
		return cmdBench(args[1:])
	case "version", "--version":
		fmt.Println("ringbox", version)
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "ringbox: unknown command %q\n", args[0])
	usage()
	return exitUsage
}

// version is set by the linker (-X main.version=...).
var version = "dev"

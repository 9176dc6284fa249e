package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors. Parse and BuildStack wrap them with the details of what
// was found (test with errors.Is), so a caller can both choose an exit
// status or errno and print a message that says what is wrong.
//
// Linux answers all of the Parse errors with ENOEXEC from execve(2) and a
// shell reports "cannot execute binary file" with exit status 126; ringbox's
// CLI uses the same status and the more precise message.
var (
	// ErrNotELF reports a file that does not start with the ELF magic. The
	// wrapping error says what the file looks like instead (a "#!" script,
	// text, an empty file, or its first bytes).
	ErrNotELF = errors.New("not an ELF executable")

	// ErrWrongArch reports an ELF file for another machine or class than
	// x86-64 ELF64 little-endian; the wrapping error names what was found
	// (for example "ELF32 i386" or "ELF64 aarch64").
	ErrWrongArch = errors.New("wrong architecture")

	// ErrBadELF reports a malformed or non-executable ELF file; the wrapping
	// error says which header or segment is wrong and how.
	ErrBadELF = errors.New("malformed ELF executable")

	// ErrDynamic reports a dynamically linked program (one with PT_INTERP).
	// Parse accepts such files and reports Image.Interp; callers that cannot
	// run an interpreter yet refuse them with Image.RequireStatic.
	ErrDynamic = errors.New("dynamic binaries are not supported yet")

	// ErrArgsTooLong reports argument and environment strings beyond the
	// limits Linux applies at execve(2); the caller returns E2BIG.
	ErrArgsTooLong = errors.New("argument list too long")
)

// badELF wraps ErrBadELF with a formatted reason.
func badELF(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadELF, fmt.Sprintf(format, args...))
}

// RequireStatic returns nil for a statically linked image (ET_EXEC or a
// static-PIE ET_DYN without PT_INTERP) and an error wrapping ErrDynamic that
// names the interpreter otherwise.
//
// TODO: Linux loads the PT_INTERP interpreter (fs/binfmt_elf.c:
// load_elf_interp()) and passes its base in AT_BASE; ringbox does not yet.
func (img *Image) RequireStatic() error {
	if img.Interp == "" {
		return nil
	}
	return fmt.Errorf("%w (dynamically linked, interpreter %q; build it with -static or -static-pie)", ErrDynamic, img.Interp)
}

// notELF wraps ErrNotELF with a short description of what the file's first
// bytes look like, so that the user learns why it cannot be executed.
func notELF(head []byte) error {
	return fmt.Errorf("%w: %s", ErrNotELF, describe(head))
}

// describe guesses what kind of file starts with head.
func describe(head []byte) string {
	switch {
	case len(head) == 0:
		return "empty file"
	case bytes.HasPrefix(head, []byte("#!")):
		line, _, _ := bytes.Cut(head, []byte("\n"))
		// Linux runs these through fs/binfmt_script.c; ringbox has no
		// binfmt_script yet.
		// TODO: support "#!" interpreters as Linux's binfmt_script does.
		return fmt.Sprintf("a script (%q); scripts are not supported, run its interpreter instead", truncate(string(line), 80))
	case isText(head):
		return "a text file"
	default:
		n := min(len(head), 8)
		return fmt.Sprintf("unknown format (first bytes % x)", head[:n])
	}
}

// isText reports whether head is printable UTF-8 text with ordinary
// whitespace.
func isText(head []byte) bool {
	if !utf8.Valid(head) {
		// The last rune may have been cut by the read; trim it and retry.
		for i := 1; i < utf8.UTFMax && i <= len(head); i++ {
			if utf8.Valid(head[:len(head)-i]) {
				head = head[:len(head)-i]
				break
			}
		}
		if !utf8.Valid(head) {
			return false
		}
	}
	for _, r := range string(head) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' && r != '\f' || r == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// machineName names an ELF machine the way uname -m and file(1) users know
// it, for ErrWrongArch messages.
func machineName(m elf.Machine) string {
	switch m {
	case elf.EM_386:
		return "i386"
	case elf.EM_X86_64:
		return "x86-64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_RISCV:
		return "riscv"
	case elf.EM_PPC64:
		return "ppc64"
	case elf.EM_PPC:
		return "ppc"
	case elf.EM_S390:
		return "s390"
	case elf.EM_MIPS:
		return "mips"
	case elf.EM_LOONGARCH:
		return "loongarch"
	case elf.EM_SPARCV9:
		return "sparc64"
	}
	return m.String()
}

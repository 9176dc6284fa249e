// Package e2e is ringbox's differential end-to-end test: every test program
// built by tests/Makefile runs natively first, which proves the program
// itself right on Linux, and then under `ringbox run` on each platform
// available (ptrace always, KVM when /dev/kvm works); stdout and the exit
// status must match byte for byte.
//
// The package has tests only. Its knobs are environment variables, so that
// the nested-KVM test VM can run the compiled test binary as is:
//
//	RINGBOX_TEST_BIN        test programs (default <repo>/tests/bin, built
//	                        first with "make -C tests")
//	RINGBOX_BIN             the ringbox binary (default: go build ./cmd/ringbox
//	                        once per run)
//	RINGBOX_TEST_PLATFORMS  comma-separated platforms to compare against
//	                        native (default "ptrace,kvm"; kvm skips itself
//	                        without a KVM that ringbox supports)
//	RINGBOX_TEST_TIMEOUT    per-run timeout, a Go duration or seconds
//	                        (default 30s; raise it in slow emulators)
//
// Test names are <Suite>/<program>/<platform>, e.g.
// TestBasic/hello-glibc/ptrace: `go test ./tests/e2e -run '//native'` runs
// every program natively only, `-run 'TestBasic/hello/'` one program on
// every platform. See tests/README.md.
package e2e

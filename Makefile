# ringbox — build, test and benchmark.
#
#   make              build bin/ringbox
#   make test         everything CI runs: vet, unit and platform tests, the
#                     end-to-end suites on ptrace, and the KVM suites in the
#                     nested-KVM test VM
#   make test-unit    the tests that need neither programs nor a VM
#   make test-kvm     the KVM suites in the test VM (QEMU TCG with nested SVM):
#                     vmm and platform tests, every e2e suite on kvm
#   make test-kvm-quick  the same VM run with only tests/basic of the e2e suites
#   make vm-run CMD='ringbox run --stats -- /tests/bin/basic/hello-glibc'
#                     one command inside the test VM, by hand
#   make bench        benchmarks: native vs ringbox on ptrace, and on KVM in
#                     the test VM
#   make programs     the C and Go test programs (tests/bin)

GO ?= go
GOFLAGS ?=
TESTVM := $(GO) run ./scripts/testvm
# Packages whose tests need /dev/kvm, run inside the test VM.
KVM_PKGS := ./vmm/...,./platform/...,./tests/e2e
KVM_SUITE := tests/kvm.suite

.PHONY: all build test test-unit test-e2e test-kvm test-kvm-quick vm-run bench bench-native bench-kvm programs clean

all: build

build:
	$(GO) build -o bin/ringbox ./cmd/ringbox

programs:
	$(MAKE) -C tests

test: build programs
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) test-kvm

test-unit:
	$(GO) test -count=1 -short ./arch/... ./boot/... ./kernel/... ./guest/... ./images/... ./scripts/...

test-e2e: build programs
	$(GO) test -count=1 -timeout 20m ./tests/e2e

# Every e2e suite on kvm in the test VM, then smp in a VM whose CPUs run
# at the same time (tests/kvm-mttcg.suite says why it needs its own).
test-kvm: programs
	$(TESTVM) -smp 2 -append ringbox.full=1 -gotest $(KVM_PKGS) -suite $(KVM_SUITE)
	$(TESTVM) -smp 2 -tcg-thread multi -suite tests/kvm-mttcg.suite

# The quick VM run: the vmm and platform tests and tests/basic on kvm.
test-kvm-quick: programs
	$(TESTVM) -smp 2 -gotest $(KVM_PKGS) -suite $(KVM_SUITE)

vm-run: build programs
	$(TESTVM) -smp 2 -- $(CMD)

bench: bench-native bench-kvm

bench-native: build programs
	./bin/ringbox bench --platform ptrace

bench-kvm: programs
	$(TESTVM) -smp 2 -- ringbox bench --platform kvm --programs /tests/bin

clean:
	rm -rf bin
	$(MAKE) -C tests clean

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.uber.org/zap"

	"github.com/ringbox/ringbox/boot"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
	"github.com/ringbox/ringbox/platform/ptrace"
	"github.com/ringbox/ringbox/vmm"
)

// platformNames are the values of --platform.
var platformNames = []string{"auto", "kvm", "ptrace"}

// platformFactory returns the constructor for --platform name.
func platformFactory(name string, cpus int, log *zap.Logger) (boot.PlatformFactory, error) {
	newKVM := func(mf *memfile.MemoryFile) (platform.Platform, error) {
		p, err := vmm.New(mf, vmm.Options{CPUs: cpus, Logger: log})
		if err != nil {
			return nil, kvmError(err)
		}
		return p, nil
	}
	newPtrace := func(mf *memfile.MemoryFile) (platform.Platform, error) {
		return ptrace.New(mf, ptrace.Options{CPUs: cpus, Logger: log})
	}
	switch name {
	case "kvm":
		return newKVM, nil
	case "ptrace":
		return newPtrace, nil
	case "auto":
		return func(mf *memfile.MemoryFile) (platform.Platform, error) {
			p, err := newKVM(mf)
			if err == nil {
				log.Info("platform: kvm")
				return p, nil
			}
			log.Info("platform: ptrace (KVM is not usable)", zap.String("reason", err.Error()))
			return newPtrace(mf)
		}, nil
	}
	return nil, fmt.Errorf("--platform %q: want one of auto, kvm, ptrace", name)
}

// kvmError adds the fix to KVM's failures.
func kvmError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w\n  /dev/kvm is missing: this host has no KVM. Enable hardware virtualization (or nested virtualization for a VM) and load kvm-intel or kvm-amd, or run with --platform ptrace", err)
	case errors.Is(err, vmm.ErrUnsupportedKVM):
		return fmt.Errorf("%w\n  this /dev/kvm cannot run ringbox's guest (a paravirtual KVM such as PVM); run with --platform ptrace", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w\n  no permission on /dev/kvm: add your user to the kvm group (usermod -aG kvm $USER, then log in again), run as root, or run with --platform ptrace", err)
	}
	return err
}

// cmdPlatforms tells what this host supports and why.
func cmdPlatforms(args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "ringbox platforms: takes no arguments")
		return exitUsage
	}
	log := zap.NewNop()
	auto := ""
	for _, name := range []string{"kvm", "ptrace"} {
		f, _ := platformFactory(name, 1, log)
		err := probe(f)
		if err == nil {
			fmt.Printf("%-7s available\n", name)
			if auto == "" {
				auto = name
			}
			continue
		}
		fmt.Printf("%-7s unavailable: %v\n", name, err)
	}
	if auto == "" {
		fmt.Println("auto    no platform works on this host")
		return exitSetup
	}
	fmt.Printf("auto    would choose %s\n", auto)
	return 0
}

// probe creates and closes a platform on a small memory file.
func probe(f boot.PlatformFactory) error {
	mf, err := memfile.New("ringbox-probe", 64<<20)
	if err != nil {
		return err
	}
	defer mf.Close()
	p, err := f(mf)
	if err != nil {
		return err
	}
	return p.Close()
}

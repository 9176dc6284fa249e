// Package boot assembles a sandbox: the memory file, the platform, the
// kernel and the first process, in that order, as small steps (like a VM
// builder). The command line chooses the platform and hands boot a
// constructor, so that boot and the kernel never import a mechanism.
package boot

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/ringbox/ringbox/kernel"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// PlatformFactory creates the platform over the sandbox's memory file.
type PlatformFactory func(mf *memfile.MemoryFile) (platform.Platform, error)

// Options configure a sandbox.
type Options struct {
	// NewPlatform creates the platform.
	NewPlatform PlatformFactory
	// Memory is the size of the memory file: the sandbox's memory limit,
	// page tables and platform structures included.
	Memory uint64
	// Strace logs every system call.
	Strace bool
	// StraceLogger receives the --strace lines (Logger when nil).
	StraceLogger *zap.Logger
	// Logger is ringbox's log.
	Logger *zap.Logger
	// UID and GID are the credentials of the first process.
	UID, GID uint32
	// Stdio are the host descriptors of the program's stdin, stdout and
	// stderr.
	Stdio [3]int
	// PtraceScope is the YAMA ptrace scope inside the sandbox (0 to 3).
	PtraceScope int
}

// DefaultMemory is the default memory limit.
const DefaultMemory = 2 << 30

// Sandbox is an assembled sandbox.
type Sandbox struct {
	opts     Options
	mf       *memfile.MemoryFile
	platform platform.Platform
	kernel   *kernel.Kernel
}

// New assembles a sandbox; nothing runs until Start.
func New(opts Options) (*Sandbox, error) {
	if opts.NewPlatform == nil {
		return nil, errors.New("boot: no platform")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Memory == 0 {
		opts.Memory = DefaultMemory
	}
	s := &Sandbox{opts: opts}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"memory file", s.attachMemoryFile},
		{"platform", s.attachPlatform},
		{"kernel", s.attachKernel},
	}
	for _, st := range steps {
		if err := st.fn(); err != nil {
			s.Close()
			return nil, fmt.Errorf("creating the sandbox's %s: %w", st.name, err)
		}
	}
	return s, nil
}

func (s *Sandbox) attachMemoryFile() error {
	mf, err := memfile.New("ringbox-memory", s.opts.Memory)
	if err != nil {
		return err
	}
	s.mf = mf
	return nil
}

func (s *Sandbox) attachPlatform() error {
	p, err := s.opts.NewPlatform(s.mf)
	if err != nil {
		return err
	}
	s.platform = p
	return nil
}

func (s *Sandbox) attachKernel() error {
	k, err := kernel.New(kernel.Config{
		Platform:     s.platform,
		MemoryFile:   s.mf,
		Logger:       s.opts.Logger,
		Strace:       s.opts.Strace,
		StraceLogger: s.opts.StraceLogger,
		Stdio:        s.opts.Stdio,
		UID:          s.opts.UID,
		GID:          s.opts.GID,
		PtraceScope:  s.opts.PtraceScope,
	})
	if err != nil {
		return err
	}
	s.kernel = k
	return nil
}

// Platform returns the sandbox's platform.
func (s *Sandbox) Platform() platform.Platform { return s.platform }

// Kernel returns the sandbox's kernel.
func (s *Sandbox) Kernel() *kernel.Kernel { return s.kernel }

// Run starts the program and waits for the first process to exit.
func (s *Sandbox) Run(path string, argv, envv []string) (kernel.ExitStatus, error) {
	if err := s.kernel.Start(path, argv, envv); err != nil {
		return kernel.ExitStatus{}, err
	}
	return s.kernel.Wait(), nil
}

// Close releases the platform and the memory file.
func (s *Sandbox) Close() {
	if s.platform != nil {
		if err := s.platform.Close(); err != nil {
			s.opts.Logger.Warn("closing the platform", zap.Error(err))
		}
		s.platform = nil
	}
	if s.mf != nil {
		s.mf.Close()
		s.mf = nil
	}
}

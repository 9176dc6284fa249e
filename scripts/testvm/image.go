package main

import (
	"os"
	"path"

	"github.com/ringbox/ringbox/images/initramfs"
	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

// imageSpec is the content of the VM's initramfs.
type imageSpec struct {
	// init is the vminit binary.
	init string
	// kernel provides the modules.
	kernel *kernel
	// ringbox is the ringbox binary, or "" if it did not build.
	ringbox string
	// files is the host directory packed at suite.BinDir, or "".
	files string
	// goTests are the Go test binaries.
	goTests []goTest
	// suite is the content of suite.ListFile.
	suite []suite.Command
}

// entries lists the initramfs entries of spec:
//
//	/init                       vminit
//	/dev/console                the kernel opens it for init's stdio
//	/proc /sys /tmp             mount points (init mounts them; /dev too)
//	/lib/modules/<name>.ko      suite.Modules
//	/tests/suite.list           the suite
//	/tests/bin/...              the -files tree
//	/tests/bin/ringbox          ringbox
//	/tests/gotest/<name>/       a Go test binary and its testdata
func (s imageSpec) entries() []initramfs.Entry {
	es := []initramfs.Entry{
		initramfs.File("/init", s.init, 0o755),
		initramfs.Dir("/dev", 0o755),
		// Linux: Documentation/admin-guide/devices.txt: 5,1 is
		// /dev/console.
		initramfs.CharDev("/dev/console", 0o600, 5, 1),
		initramfs.Dir("/proc", 0o555),
		initramfs.Dir("/sys", 0o555),
		initramfs.Dir("/tmp", 0o777|os.ModeSticky),
		initramfs.Dir("/root", 0o700),
	}
	for _, m := range suite.Modules {
		es = append(es, initramfs.File(path.Join(suite.ModuleDir, m+".ko"), s.kernel.modules[m], 0o644))
	}
	es = append(es,
		initramfs.Data(suite.ListFile, suite.Format(s.suite), 0o644),
		initramfs.Dir(suite.BinDir, 0o755),
	)
	if s.files != "" {
		es = append(es, initramfs.Tree(suite.BinDir, s.files))
	}
	if s.ringbox != "" {
		es = append(es, initramfs.File(suite.RingboxBin, s.ringbox, 0o755))
	}
	for _, t := range s.goTests {
		es = append(es, initramfs.File(t.vmBin(), t.bin, 0o755))
		if t.testdata != "" {
			es = append(es, initramfs.Tree(path.Join(t.vmDir(), "testdata"), t.testdata))
		}
	}
	return es
}

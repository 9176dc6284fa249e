package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringbox/ringbox/images/initramfs"
	"github.com/ringbox/ringbox/scripts/testvm/suite"
	"github.com/u-root/u-root/pkg/cpio"
)

func TestImageEntries(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k := &kernel{modules: map[string]string{}}
	for _, m := range suite.Modules {
		k.modules[m] = write("mods/"+m+".ko", m)
	}
	write("bin/basic/hello-glibc", "hello")
	write("vmm/testdata/guest.bin", "guest")
	spec := imageSpec{
		init:    write("init", "vminit"),
		kernel:  k,
		ringbox: write("ringbox", "ringbox"),
		files:   filepath.Join(dir, "bin"),
		goTests: []goTest{{name: "vmm", bin: write("vmm.test", "test"), testdata: filepath.Join(dir, "vmm", "testdata")}},
		suite:   []suite.Command{{Argv: []string{"/tests/gotest/vmm/vmm.test", "-test.v"}}},
	}
	var buf bytes.Buffer
	if err := initramfs.Write(&buf, spec.entries()); err != nil {
		t.Fatalf("initramfs.Write: %v", err)
	}
	records, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(buf.Bytes())))
	if err != nil {
		t.Fatalf("reading the image back: %v", err)
	}
	got := make(map[string]cpio.Record)
	for _, r := range records {
		got[r.Name] = r
	}
	wantFiles := map[string]string{
		"init":                                "vminit",
		"lib/modules/irqbypass.ko":            "irqbypass",
		"lib/modules/ccp.ko":                  "ccp",
		"lib/modules/kvm.ko":                  "kvm",
		"lib/modules/kvm-amd.ko":              "kvm-amd",
		"tests/suite.list":                    "/tests/gotest/vmm/vmm.test -test.v\n",
		"tests/bin/ringbox":                   "ringbox",
		"tests/bin/basic/hello-glibc":         "hello",
		"tests/gotest/vmm/vmm.test":           "test",
		"tests/gotest/vmm/testdata/guest.bin": "guest",
	}
	for name, want := range wantFiles {
		r, ok := got[name]
		if !ok {
			t.Errorf("%s missing from the image", name)
			continue
		}
		b := make([]byte, r.FileSize)
		if _, err := r.ReadAt(b, 0); err != nil && r.FileSize > 0 {
			t.Errorf("%s: %v", name, err)
		}
		if string(b) != want {
			t.Errorf("%s: got %q, want %q", name, b, want)
		}
	}
	if r, ok := got["dev/console"]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFCHR || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("dev/console: got %v (present %v), want a 5,1 character device", r.Info, ok)
	}
	if r := got["init"]; r.Mode&0o111 == 0 {
		t.Errorf("init mode %#o is not executable", r.Mode)
	}
	if r := got["tmp"]; r.Mode != cpio.S_IFDIR|cpio.S_ISVTX|0o777 {
		t.Errorf("tmp mode %#o, want %#o", r.Mode, cpio.S_IFDIR|cpio.S_ISVTX|0o777)
	}
}

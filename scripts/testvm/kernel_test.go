package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

func TestParseDepends(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    string
		wantErr bool
	}{
		{
			name: "bookworm",
			out:  "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n",
			want: "linux-image-6.1.0-56-amd64",
		},
		{
			name: "alternatives and virtual packages first",
			out: "linux-image-amd64\n |Depends: <linux-image-virtual>\n  Depends: <linux-image>\n" +
				"  Recommends: firmware-linux-free\n  Depends: linux-image-6.12.9-amd64\n  Depends: linux-image-6.12.8-amd64\n",
			want: "linux-image-6.12.9-amd64",
		},
		{name: "no depends", out: "linux-image-amd64\n", wantErr: true},
		{name: "empty", out: "", wantErr: true},
		{name: "self", out: "linux-image-amd64\n  Depends: linux-image-amd64\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDepends(tt.out)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDepends: got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// fakePackage lays out an unpacked kernel package under root.
func fakePackage(t *testing.T, root, release, libDir string, modules map[string]string) {
	t.Helper()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("boot/vmlinuz-"+release, "bzImage")
	write("boot/config-"+release, "CONFIG_KVM=m")
	for rel, content := range modules {
		write(filepath.Join(libDir, "modules", release, "kernel", rel), content)
	}
}

var debianModules = map[string]string{
	"virt/lib/irqbypass.ko":         "irqbypass",
	"drivers/crypto/ccp/ccp.ko":     "ccp",
	"arch/x86/kvm/kvm.ko":           "kvm",
	"arch/x86/kvm/kvm-amd.ko":       "kvm-amd",
	"arch/x86/kvm/kvm-intel.ko":     "kvm-intel",
	"drivers/gpu/drm/i915/kvmgt.ko": "kvmgt",
}

func TestKeepKernelFilesAndOpen(t *testing.T) {
	for _, libDir := range []string{"lib", "usr/lib"} {
		t.Run(libDir, func(t *testing.T) {
			root := t.TempDir()
			fakePackage(t, root, "6.1.0-56-amd64", libDir, debianModules)
			cache := t.TempDir()
			const pkg = "linux-image-6.1.0-56-amd64"
			if _, err := openKernel(cache, pkg); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("openKernel on an empty cache: got %v, want ErrNotExist", err)
			}
			if err := keepKernelFiles(root, filepath.Join(cache, pkg)); err != nil {
				t.Fatalf("keepKernelFiles: %v", err)
			}
			k, err := openKernel(cache, pkg)
			if err != nil {
				t.Fatalf("openKernel: %v", err)
			}
			if k.release != "6.1.0-56-amd64" || k.pkg != pkg {
				t.Errorf("openKernel: got release %q pkg %q, want 6.1.0-56-amd64 %s", k.release, k.pkg, pkg)
			}
			checkContent := func(p, want string) {
				t.Helper()
				b, err := os.ReadFile(p)
				if err != nil || string(b) != want {
					t.Errorf("%s: got %q, %v; want %q", p, b, err, want)
				}
			}
			checkContent(k.vmlinuz, "bzImage")
			for _, m := range suite.Modules {
				checkContent(k.modules[m], m)
			}
			if got := cachedPackages(cache); !reflect.DeepEqual(got, []string{pkg}) {
				t.Errorf("cachedPackages = %q, want [%s]", got, pkg)
			}
		})
	}
}

func TestKeepKernelFilesErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, root string)
		wantErr string
	}{
		{
			name:    "no vmlinuz",
			setup:   func(t *testing.T, root string) {},
			wantErr: "boot/vmlinuz-*",
		},
		{
			name: "missing module",
			setup: func(t *testing.T, root string) {
				mods := map[string]string{}
				for k, v := range debianModules {
					if v != "ccp" {
						mods[k] = v
					}
				}
				fakePackage(t, root, "6.1.0-1-amd64", "lib", mods)
			},
			wantErr: "module ccp (ccp.ko) not found",
		},
		{
			name: "no module directory",
			setup: func(t *testing.T, root string) {
				fakePackage(t, root, "6.1.0-1-amd64", "lib", nil)
			},
			wantErr: "no lib/modules/6.1.0-1-amd64",
		},
		{
			name: "module twice",
			setup: func(t *testing.T, root string) {
				mods := map[string]string{"extra/kvm.ko": "kvm"}
				for k, v := range debianModules {
					mods[k] = v
				}
				fakePackage(t, root, "6.1.0-1-amd64", "lib", mods)
			},
			wantErr: "module kvm found twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tt.setup(t, root)
			err := keepKernelFiles(root, filepath.Join(t.TempDir(), "entry"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("keepKernelFiles: got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCachedPackagesNewestFirst(t *testing.T) {
	cache := t.TempDir()
	now := time.Now()
	for i, pkg := range []string{"linux-image-6.1.0-55-amd64", "linux-image-6.1.0-56-amd64", "linux-image-6.1.0-54-amd64"} {
		dir := filepath.Join(cache, pkg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(dir, cacheComplete)
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		mtime := now.Add(time.Duration(i) * time.Hour)
		if i == 2 {
			mtime = now.Add(-time.Hour)
		}
		if err := os.Chtimes(marker, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// An incomplete entry (no marker) is not offered.
	if err := os.MkdirAll(filepath.Join(cache, "linux-image-6.1.0-57-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := cachedPackages(cache)
	want := []string{"linux-image-6.1.0-56-amd64", "linux-image-6.1.0-55-amd64", "linux-image-6.1.0-54-amd64"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cachedPackages = %q, want %q", got, want)
	}
}

// fakeAptCache puts an apt-cache script printing out and exiting with rc
// first in PATH.
func fakeAptCache(t *testing.T, out string, rc int) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for a fake apt-cache")
	}
	dir := t.TempDir()
	script := "#!/bin/sh\ncat <<'EOF'\n" + out + "EOF\nexit " + strconv.Itoa(rc) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "apt-cache"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

func TestResolvePackage(t *testing.T) {
	fakeAptCache(t, "linux-image-amd64\n  Depends: linux-image-6.1.0-99-amd64\n", 0)
	if got, err := resolvePackage(); err != nil || got != "linux-image-6.1.0-99-amd64" {
		t.Errorf("resolvePackage() = %q, %v; want linux-image-6.1.0-99-amd64", got, err)
	}
}

func TestResolvePackageNoLists(t *testing.T) {
	// What apt-cache says on a machine that never ran apt-get update.
	fakeAptCache(t, "E: No packages found\n", 100)
	_, err := resolvePackage()
	if err == nil || !strings.Contains(err.Error(), "apt-get update") {
		t.Fatalf("resolvePackage: got %v, want an error naming apt-get update", err)
	}

	// With a cached kernel, getKernel carries on with it.
	cache := t.TempDir()
	root := t.TempDir()
	fakePackage(t, root, "6.1.0-56-amd64", "lib", debianModules)
	const pkg = "linux-image-6.1.0-56-amd64"
	if err := keepKernelFiles(root, filepath.Join(cache, pkg)); err != nil {
		t.Fatal(err)
	}
	var logged []string
	k, err := getKernel(cache, "", func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	if err != nil || k.pkg != pkg {
		t.Fatalf("getKernel without apt lists: got %+v, %v; want the cached %s", k, err, pkg)
	}
	if !strings.Contains(strings.Join(logged, "\n"), "using the cached "+pkg) {
		t.Errorf("getKernel logged %q, want a note that it uses the cached kernel", logged)
	}

	// Without one, the error stands.
	if _, err := getKernel(t.TempDir(), "", func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "apt-get update") {
		t.Errorf("getKernel with an empty cache: got %v, want the apt-get update hint", err)
	}
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

// metaPackage is Debian's package that always depends on the current kernel
// image package, whose name changes with each ABI bump.
const metaPackage = "linux-image-amd64"

// kernel is a cached kernel: what the VM boots and the modules init loads.
type kernel struct {
	// pkg is the Debian package it came from.
	pkg string
	// release is the kernel release (uname -r).
	release string
	// vmlinuz is the bzImage.
	vmlinuz string
	// vmlinux is the uncompressed ELF kernel with its PVH entry point,
	// quicker to boot under TCG; "" if it could not be extracted.
	vmlinux string
	// modules maps each of suite.Modules to its .ko file.
	modules map[string]string
}

// Cache layout: <cache>/<pkg>/ holds only what the VM needs, so that a CI
// cache of it stays small (about 75 MB instead of the package's 400 MB):
//
//	vmlinuz             the kernel (bzImage)
//	vmlinux             the same, uncompressed, for a PVH boot (about 65 MB;
//	                    absent if it could not be extracted)
//	release             its release string
//	modules/<name>.ko   the modules of suite.Modules
//	complete            written last: the entry is usable
const (
	cacheVmlinuz  = "vmlinuz"
	cacheVmlinux  = "vmlinux"
	cacheRelease  = "release"
	cacheModules  = "modules"
	cacheComplete = "complete"
)

// parseDepends returns the kernel image package that metaPackage depends on,
// from the output of `apt-cache depends linux-image-amd64`:
//
//	linux-image-amd64
//	  Depends: linux-image-6.1.0-56-amd64
//
// Alternatives ("|Depends:") and virtual packages ("<...>") are skipped.
func parseDepends(out string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "Depends:" {
			continue
		}
		if name := f[1]; strings.HasPrefix(name, "linux-image-") && name != metaPackage {
			return name, nil
		}
	}
	return "", fmt.Errorf("no linux-image-* dependency in apt-cache's answer:\n%s", out)
}

// resolvePackage asks apt-cache for the current kernel image package.
func resolvePackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", metaPackage).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Depends:") {
		return "", fmt.Errorf("apt-cache depends %s: %v: %s\n"+
			"the package lists are probably missing: run `apt-get update` (as root) and retry, "+
			"or name a package with -kernel-pkg", metaPackage, err, strings.TrimSpace(string(out)))
	}
	return parseDepends(string(out))
}

// openKernel returns the cached kernel of package pkg, or an error wrapping
// os.ErrNotExist if the cache has no complete entry for it.
func openKernel(cache, pkg string) (*kernel, error) {
	dir := filepath.Join(cache, pkg)
	if _, err := os.Stat(filepath.Join(dir, cacheComplete)); err != nil {
		return nil, err
	}
	rel, err := os.ReadFile(filepath.Join(dir, cacheRelease))
	if err != nil {
		return nil, err
	}
	k := &kernel{
		pkg:     pkg,
		release: strings.TrimSpace(string(rel)),
		vmlinuz: filepath.Join(dir, cacheVmlinuz),
		modules: make(map[string]string),
	}
	for _, m := range suite.Modules {
		k.modules[m] = filepath.Join(dir, cacheModules, m+".ko")
	}
	if _, err := os.Stat(filepath.Join(dir, cacheVmlinux)); err == nil {
		k.vmlinux = filepath.Join(dir, cacheVmlinux)
	}
	return k, nil
}

// addVmlinux extracts k's uncompressed kernel into its cache entry, if
// missing. A failure only costs boot time, so it is logged, not returned.
func addVmlinux(k *kernel, logf func(string, ...any)) {
	if k.vmlinux != "" {
		return
	}
	dst := filepath.Join(filepath.Dir(k.vmlinuz), cacheVmlinux)
	tmp := dst + ".tmp"
	if err := extractVmlinux(k.vmlinuz, tmp); err != nil {
		logf("booting the compressed kernel (slower): %v", err)
		os.Remove(tmp) // may not exist
		return
	}
	if err := os.Rename(tmp, dst); err != nil {
		logf("booting the compressed kernel (slower): %v", err)
		return
	}
	k.vmlinux = dst
}

// cachedPackages returns the packages with a complete cache entry, newest
// first.
func cachedPackages(cache string) []string {
	matches, _ := filepath.Glob(filepath.Join(cache, "linux-image-*", cacheComplete))
	type entry struct {
		pkg   string
		mtime int64
	}
	var es []entry
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			continue
		}
		es = append(es, entry{filepath.Base(filepath.Dir(m)), st.ModTime().UnixNano()})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].mtime > es[j].mtime })
	pkgs := make([]string, len(es))
	for i, e := range es {
		pkgs[i] = e.pkg
	}
	return pkgs
}

// getKernel returns the kernel to boot: package pkg, or if pkg is empty the
// one apt-cache names, from the cache or else downloaded into it. When
// apt-cache cannot answer (no package lists, no network) the newest cached
// kernel is used.
func getKernel(cache, pkg string, logf func(string, ...any)) (*kernel, error) {
	if pkg == "" {
		var err error
		pkg, err = resolvePackage()
		if err != nil {
			cached := cachedPackages(cache)
			if len(cached) == 0 {
				return nil, err
			}
			logf("%v", err)
			logf("using the cached %s instead", cached[0])
			pkg = cached[0]
		}
	}
	k, err := openKernel(cache, pkg)
	if errors.Is(err, os.ErrNotExist) {
		logf("fetching %s into %s", pkg, cache)
		if err := fetchKernel(cache, pkg); err != nil {
			return nil, err
		}
		k, err = openKernel(cache, pkg)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel cache %s: %w", filepath.Join(cache, pkg), err)
	}
	addVmlinux(k, logf)
	return k, nil
}

// fetchKernel downloads package pkg with apt-get, unpacks it with dpkg-deb
// and keeps what the VM needs in <cache>/<pkg>.
func fetchKernel(cache, pkg string) error {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cache, "fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	dl := exec.Command("apt-get", "download", pkg)
	dl.Dir = work
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w\n%s", pkg, err, out)
	}
	debs, err := filepath.Glob(filepath.Join(work, pkg+"_*.deb"))
	if err != nil || len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: want one %s_*.deb in %s, found %v (%v)", pkg, pkg, work, debs, err)
	}
	root := filepath.Join(work, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w\n%s", debs[0], err, out)
	}

	entry := filepath.Join(work, "entry")
	if err := keepKernelFiles(root, entry); err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	dst := filepath.Join(cache, pkg)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return os.Rename(entry, dst)
}

// keepKernelFiles copies the kernel and the modules of suite.Modules from an
// unpacked kernel package at root into a new cache entry at dst.
func keepKernelFiles(root, dst string) error {
	vmlinuz, release, err := findVmlinuz(root)
	if err != nil {
		return err
	}
	modDir, err := findModuleDir(root, release)
	if err != nil {
		return err
	}
	mods, err := findModules(modDir, suite.Modules)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dst, cacheModules), 0o755); err != nil {
		return err
	}
	if err := copyFile(vmlinuz, filepath.Join(dst, cacheVmlinuz)); err != nil {
		return err
	}
	for _, m := range suite.Modules {
		to := filepath.Join(dst, cacheModules, m+".ko")
		copyFn := copyFile
		if strings.HasSuffix(mods[m], ".xz") {
			copyFn = unxzFile
		}
		if err := copyFn(mods[m], to); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dst, cacheRelease), []byte(release+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, cacheComplete), nil, 0o644)
}

// findVmlinuz returns the single boot/vmlinuz-<release> of an unpacked
// kernel package and its release.
func findVmlinuz(root string) (string, string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil || len(matches) != 1 {
		return "", "", fmt.Errorf("want one boot/vmlinuz-* in the package, found %v (%v)", matches, err)
	}
	return matches[0], strings.TrimPrefix(filepath.Base(matches[0]), "vmlinuz-"), nil
}

// findModuleDir returns lib/modules/<release>, under usr/ in a merged-/usr
// package.
func findModuleDir(root, release string) (string, error) {
	for _, d := range []string{"lib", "usr/lib"} {
		p := filepath.Join(root, d, "modules", release)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no lib/modules/%s in the package", release)
}

// findModules finds each named module (file <name>.ko, or <name>.ko.xz as
// newer Debian kernels ship them; the kernel spells the module name with
// '_' where the file has '-', and either is accepted) under dir.
func findModules(dir string, names []string) (map[string]string, error) {
	want := make(map[string]string)
	for _, n := range names {
		for _, base := range []string{n, strings.ReplaceAll(n, "-", "_")} {
			want[base+".ko"] = n
			want[base+".ko.xz"] = n
		}
	}
	found := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n, ok := want[d.Name()]; ok && d.Type().IsRegular() {
			if prev, dup := found[n]; dup {
				return fmt.Errorf("module %s found twice: %s and %s", n, prev, p)
			}
			found[n] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if found[n] == "" {
			return nil, fmt.Errorf("module %s (%s.ko) not found under %s", n, n, dir)
		}
	}
	return found, nil
}

// unxzFile decompresses the xz file src into dst with xz(1), which testvm
// already needs for the kernel.
func unxzFile(src, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("xz", "-dc", src)
	cmd.Stdout = out
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("xz -dc %s: %v %s", src, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// copyFile copies src to dst, creating dst with mode 0644.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close() // read-only: a close error loses nothing
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mount is one file system init mounts.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// mounts are the file systems the tests expect. devtmpfs hides the
// initramfs's /dev/console, but the descriptors the kernel opened on it stay
// valid.
var mounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
}

// mountAll mounts every file system of mounts, creating the mount points,
// and returns one error per failure.
func mountAll() []error {
	var errs []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", m.fstype, m.target, err))
		}
	}
	return errs
}

// ensureConsole gives init standard streams on /dev/console when the kernel
// could not open it (an image without the device node: Linux:
// init/main.c:console_on_rootfs() then leaves descriptors 0-2 closed). It
// mounts devtmpfs early for that; mountAll mounting it again on /dev is
// harmless (it gets a second view of the same devtmpfs).
func ensureConsole() {
	var st unix.Stat_t
	if unix.Fstat(1, &st) == nil {
		return
	}
	if err := os.MkdirAll("/dev", 0o755); err != nil {
		return
	}
	// Errors are ignored: with no console there is nobody to tell.
	_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755")
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	for i := 0; i <= 2; i++ {
		_ = unix.Dup2(fd, i)
	}
	if fd > 2 {
		_ = unix.Close(fd)
	}
}

// moduleSuffixes are the file names tried for a module, with the
// finit_module(2) flags each needs. Debian 12 ships plain .ko files; newer
// kernels may ship compressed ones, which the kernel decompresses itself
// when built with CONFIG_MODULE_DECOMPRESS.
var moduleSuffixes = []struct {
	suffix string
	flags  int
}{
	{".ko", 0},
	{".ko.xz", unix.MODULE_INIT_COMPRESSED_FILE},
	{".ko.zst", unix.MODULE_INIT_COMPRESSED_FILE},
	{".ko.gz", unix.MODULE_INIT_COMPRESSED_FILE},
}

// findModule returns the path of module name in dir and the finit_module
// flags it needs.
func findModule(dir, name string) (string, int, error) {
	for _, s := range moduleSuffixes {
		p := filepath.Join(dir, name+s.suffix)
		if _, err := os.Stat(p); err == nil {
			return p, s.flags, nil
		}
	}
	return "", 0, fmt.Errorf("no %s.ko in %s: %w", name, dir, os.ErrNotExist)
}

// loadModule loads module name from dir. A module that is already loaded
// (or built in) is not an error: "EEXIST: A module with this name is already
// loaded." - init_module(2).
func loadModule(dir, name string) error {
	p, flags, err := findModule(dir, name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close() // read-only: a close error loses nothing
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finit_module(%s): %w", p, err)
	}
	return nil
}

// kmsgTail returns the text of the last n records of the kernel log, read
// without blocking from /dev/kmsg, whose every read(2) returns one record
// "prio,seq,usec,flags;text" (Linux:
// Documentation/ABI/testing/dev-kmsg).
func kmsgTail(n int) []string {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return []string{fmt.Sprintf("(no kernel log: %v)", err)}
	}
	defer unix.Close(fd) // read-only: a close error loses nothing
	var lines []string
	buf := make([]byte, 8192)
	for {
		m, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) {
			continue // records were overwritten while reading: skip ahead
		}
		if err != nil || m <= 0 {
			break // EAGAIN: the end of the log
		}
		lines = append(lines, kmsgText(string(buf[:m])))
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// kmsgText returns the message of one /dev/kmsg record, without its prefix
// and continuation lines.
func kmsgText(rec string) string {
	if _, text, ok := strings.Cut(rec, ";"); ok {
		rec = text
	}
	text, _, _ := strings.Cut(rec, "\n")
	return text
}

package kernel

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The memory character devices that need no filesystem behind them
// (Linux: drivers/char/mem.c and drivers/char/random.c; null(4), zero(4),
// full(4), random(4)). openat(2) finds them by path until the VFS exists.

// memDevKind says which device a memDevFile is.
type memDevKind uint8

const (
	devNull memDevKind = iota
	devZero
	devFull
	devRandom
	devURandom
)

// memDev describes one device: its path, minor number (major 1) and the
// inode number stat reports.
var memDevs = []struct {
	kind  memDevKind
	path  string
	minor uint32
}{
	{devNull, "/dev/null", 3},
	{devZero, "/dev/zero", 5},
	{devFull, "/dev/full", 7},
	{devRandom, "/dev/random", 8},
	{devURandom, "/dev/urandom", 9},
}

// memDevMajor is the major number of the memory devices.
const memDevMajor = 1

// devtmpfsDev is st_dev of the device nodes (the host's devtmpfs is 0:6;
// the number is not ABI).
const devtmpfsDev = 6

// bootTime stamps the device nodes' times.
var bootTime = unix.NsecToTimespec(time.Now().UnixNano())

// memDevFile is an open /dev/null, /dev/zero or /dev/full.
type memDevFile struct {
	fileRefs
	fileFlags
	kind  memDevKind
	minor uint32
}

// DecRef implements File.DecRef.
func (f *memDevFile) DecRef() { f.decRef() }

// Read implements File.Read: EOF from /dev/null, random bytes from the
// random devices, zeros from the others (Linux: read_null(),
// read_zero(); /dev/full reads as /dev/zero). The random devices never
// block: Linux's pool is initialized long before a sandbox runs.
func (f *memDevFile) Read(t *Task, dst []byte) (int, error) {
	switch f.kind {
	case devNull:
		return 0, nil
	case devRandom, devURandom:
		if _, err := rand.Read(dst); err != nil {
			return 0, fmt.Errorf("reading host randomness: %w", err)
		}
		return len(dst), nil
	}
	clear(dst)
	return len(dst), nil
}

// Write implements File.Write: everything is taken, except by /dev/full,
// which is always full, even for an empty write (Linux: write_full()).
// What the random devices are given is dropped.
//
// TODO(ringbox): Linux mixes data written to the random devices into its
// pool (without crediting entropy).
func (f *memDevFile) Write(t *Task, src []byte) (int, error) {
	if f.kind == devFull {
		return 0, unix.ENOSPC
	}
	return len(src), nil
}

// fillsReads tells read(2) that a large read fills its whole buffer.
func (f *memDevFile) fillsReads() bool { return true }

// PRead implements File.PRead; the offset makes no difference.
func (f *memDevFile) PRead(t *Task, dst []byte, off int64) (int, error) { return f.Read(t, dst) }

// PWrite implements File.PWrite.
func (f *memDevFile) PWrite(t *Task, src []byte, off int64) (int, error) { return f.Write(t, src) }

// Seek implements File.Seek: the position stays 0 whatever is asked
// (Linux: null_lseek()).
func (f *memDevFile) Seek(t *Task, off int64, whence int) (int64, error) { return 0, nil }

// Seekable implements File.Seekable.
func (f *memDevFile) Seekable() bool { return true }

// Ioctl implements File.Ioctl: the random devices report a full pool to
// RNDGETENTCNT and refuse other requests with EINVAL (Linux:
// random_ioctl()).
//
// TODO(ringbox): the privileged RND* requests (RNDADDENTROPY...) are
// EINVAL, not EPERM or implemented.
func (f *memDevFile) Ioctl(t *Task, req, arg uint64) (uint64, error) {
	if f.kind != devRandom && f.kind != devURandom {
		return 0, unix.ENOTTY
	}
	if req != unix.RNDGETENTCNT {
		return 0, unix.EINVAL
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], randomPoolBits)
	return 0, t.CopyOut(arg, b[:])
}

// randomPoolBits is the entropy count an initialized Linux reports.
const randomPoolBits = 256

// Stat implements File.Stat: a character device 1:minor, mode 0666,
// owned by root, as udev creates them.
func (f *memDevFile) Stat(t *Task) (unix.Stat_t, error) {
	return unix.Stat_t{
		Dev:     devtmpfsDev,
		Ino:     uint64(f.minor),
		Nlink:   1,
		Mode:    unix.S_IFCHR | 0o666,
		Rdev:    unix.Mkdev(memDevMajor, f.minor),
		Blksize: pageSize,
		Atim:    bootTime,
		Mtim:    bootTime,
		Ctim:    bootTime,
	}, nil
}

// Readiness implements File.Readiness: always ready (the devices have no
// poll method, so Linux reports DEFAULT_POLLMASK).
func (f *memDevFile) Readiness(mask uint32) uint32 { return defaultPollMask & mask }

// pollable makes epoll_ctl refuse the devices with EPERM: they have no
// poll method (Linux: file_can_poll()), except /dev/random.
func (f *memDevFile) pollable() bool { return f.kind == devRandom }

// EventRegister implements File.EventRegister; readiness never changes.
func (f *memDevFile) EventRegister(w *Waiter, mask uint32) {}

// EventUnregister implements File.EventUnregister.
func (f *memDevFile) EventUnregister(w *Waiter) {}

// validOpenFlags are the flags open(2) keeps; others are dropped
// silently (Linux: include/linux/fcntl.h:VALID_OPEN_FLAGS, applied by
// build_open_how()). O_LARGEFILE is the kernel's value, not x/sys's 0.
const validOpenFlags = unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY |
	unix.O_TRUNC | unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC | unix.O_DSYNC |
	unix.O_ASYNC | unix.O_DIRECT | oLargefile | unix.O_DIRECTORY | unix.O_NOFOLLOW |
	unix.O_NOATIME | unix.O_CLOEXEC | unix.O_PATH | unix.O_TMPFILE

// oTmpfileBit is __O_TMPFILE, the bit of O_TMPFILE besides O_DIRECTORY.
const oTmpfileBit = unix.O_TMPFILE &^ unix.O_DIRECTORY

// openFlagsDropped are the open flags that stay in F_GETFL (Linux:
// do_dentry_open() drops O_CREAT, O_EXCL, O_NOCTTY and O_TRUNC, and
// build_open_flags() O_CLOEXEC, which is a descriptor flag).
const openFlagsDropped = unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC | unix.O_CLOEXEC

// openFile opens path for openat(2) (Linux: fs/open.c:do_sys_openat2()
// and build_open_flags(), fs/namei.c:path_openat()). dirfd matters only
// for relative paths.
//
// TODO(ringbox): only the memory devices exist until the filesystem
// comes; every other path, directories included, is ENOENT, and relative
// paths are resolved from "/" whatever the working directory.
func openFile(t *Task, dirfd int, path string, flags int) (File, error) {
	flags &= validOpenFlags
	if flags&unix.O_PATH != 0 {
		// "O_PATH beats everything else" (build_open_how()).
		flags &= unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_PATH | unix.O_CLOEXEC
	}
	if flags&oTmpfileBit != 0 {
		// O_TMPFILE needs O_DIRECTORY, no O_CREAT, and write access.
		if flags&(unix.O_TMPFILE|unix.O_CREAT) != unix.O_TMPFILE {
			return nil, unix.EINVAL
		}
		if acc := flags & unix.O_ACCMODE; acc != unix.O_WRONLY && acc != unix.O_RDWR {
			return nil, unix.EINVAL
		}
	}
	if flags&unix.O_SYNC != 0 {
		flags |= unix.O_DSYNC
	}
	if path == "" {
		return nil, unix.ENOENT
	}
	if path[0] != '/' && dirfd != unix.AT_FDCWD {
		f := t.fdt.get(dirfd)
		if f == nil {
			return nil, unix.EBADF
		}
		st, err := f.Stat(t)
		f.DecRef()
		if err != nil {
			return nil, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil, unix.ENOTDIR
		}
	}
	name, trailingSlash := cleanPath(path)
	if name == "/dev/tty" {
		// TODO(ringbox): no process has a controlling terminal yet,
		// which is what ENXIO means here (Linux: tty_open_current_tty()).
		return nil, unix.ENXIO
	}
	if f, handled, err := openFDPath(t, name, trailingSlash, flags); handled {
		return f, err
	}
	if pf, handled, err := openProc(t, name, flags); handled {
		return pf, err
	}
	for _, d := range memDevs {
		if name != d.path {
			continue
		}
		if trailingSlash || flags&unix.O_DIRECTORY != 0 {
			return nil, unix.ENOTDIR
		}
		if flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
			return nil, unix.EEXIST
		}
		if flags&unix.O_DIRECT != 0 {
			// Linux: do_dentry_open() without FMODE_CAN_ODIRECT.
			return nil, unix.EINVAL
		}
		f := &memDevFile{kind: d.kind, minor: d.minor}
		f.initRefs()
		fl := flags &^ openFlagsDropped
		if fl&unix.O_PATH == 0 {
			fl |= oLargefile
		}
		f.flags.Store(int32(fl))
		return f, nil
	}
	// Relative names resolve against ringbox's working directory, the
	// sandbox's only one until tasks have their own.
	// TODO(ringbox): per-task cwd (chdir) and directory descriptors.
	if path[0] != '/' {
		if dirfd != unix.AT_FDCWD {
			return nil, unix.ENOENT
		}
		return openHost(path, flags)
	}
	if trailingSlash {
		name += "/"
	}
	return openHost(name, flags)
}

// cleanPath resolves "." and ".." and repeated slashes lexically (there
// are no symbolic links yet) and reports whether the path ended with a
// slash, which requires a directory.
func cleanPath(path string) (string, bool) {
	var parts []string
	for _, c := range strings.Split(path, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, c)
		}
	}
	return "/" + strings.Join(parts, "/"), strings.HasSuffix(path, "/")
}

// Package initramfs writes Linux initramfs images: newc ("070701") cpio
// archives that the kernel unpacks into its rootfs before running /init.
//
// An image is described as a list of [Entry] values (directories, host files,
// in-memory files, whole host trees, symlinks and character devices) and
// written with [Write] or [WriteFile]. Records are encoded by u-root's
// pkg/cpio; this package adds what the kernel's unpacker needs from a
// programmatically built archive:
//
//   - Parent directories come first. The kernel does not create missing
//     parent directories: the unpacker's open of a/b/c fails when a/b was
//     never created (Linux: init/initramfs.c:do_name()), and the file
//     silently vanishes.
//     Write emits every missing parent (mode 0755) before its child.
//   - Every record gets its own inode number and a link count of one, so the
//     unpacker never mistakes two files for hard links of each other
//     (Linux: init/initramfs.c:maybe_link() links records with nlink >= 2
//     and equal (major, minor, ino)).
//   - Owners are root and mtimes are zero, so that the same inputs give the
//     same bytes.
//
// Only the kernel's newc reader is targeted: no CRC ("070702") records, and
// file sizes must fit the format's 32-bit field.
package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// Kind says what an [Entry] puts into the archive.
type Kind uint8

// Entry kinds.
const (
	// KindDir is a directory at Path with permission bits Mode.
	KindDir Kind = iota + 1
	// KindFile is the host regular file Src copied to Path. A zero Mode
	// keeps the host file's permission bits.
	KindFile
	// KindData is a regular file at Path holding Data.
	KindData
	// KindTree is the host directory Src, recursively, placed at Path:
	// directories, regular files and symlinks keep their host permission
	// bits and link targets. Other file types are an error.
	KindTree
	// KindSymlink is a symbolic link at Path pointing to Target.
	KindSymlink
	// KindCharDev is a character device node at Path with number
	// (Major, Minor). The kernel opens /dev/console from the rootfs for
	// init's standard streams before init runs (Linux:
	// init/main.c:console_on_rootfs()), so an image whose init talks to the
	// console needs that node.
	KindCharDev
)

// String returns the kind's name for error messages.
func (k Kind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindData:
		return "data"
	case KindTree:
		return "tree"
	case KindSymlink:
		return "symlink"
	case KindCharDev:
		return "chardev"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Entry is one item of an image. Build entries with [Dir], [File], [Data],
// [Tree], [Symlink] and [CharDev] rather than by hand.
type Entry struct {
	// Kind selects which of the other fields are used.
	Kind Kind
	// Path is the location inside the image; a leading "/" is optional.
	Path string
	// Src is the host path of a KindFile or KindTree entry.
	Src string
	// Data is the content of a KindData entry.
	Data []byte
	// Target is the link target of a KindSymlink entry.
	Target string
	// Mode holds permission bits (including setuid, setgid and sticky);
	// file type bits are ignored.
	Mode os.FileMode
	// Major and Minor are the device number of a KindCharDev entry.
	Major, Minor uint32
}

// Dir returns an entry for a directory.
func Dir(p string, perm os.FileMode) Entry {
	return Entry{Kind: KindDir, Path: p, Mode: perm}
}

// File returns an entry copying the host file src to p. A zero perm keeps the
// host file's permission bits.
func File(p, src string, perm os.FileMode) Entry {
	return Entry{Kind: KindFile, Path: p, Src: src, Mode: perm}
}

// Data returns an entry for a regular file holding data.
func Data(p string, data []byte, perm os.FileMode) Entry {
	return Entry{Kind: KindData, Path: p, Data: data, Mode: perm}
}

// Tree returns an entry copying the host directory tree src to prefix.
func Tree(prefix, src string) Entry {
	return Entry{Kind: KindTree, Path: prefix, Src: src}
}

// Symlink returns an entry for a symbolic link at p pointing to target.
func Symlink(p, target string) Entry {
	return Entry{Kind: KindSymlink, Path: p, Target: target}
}

// CharDev returns an entry for a character device node.
func CharDev(p string, perm os.FileMode, major, minor uint32) Entry {
	return Entry{Kind: KindCharDev, Path: p, Mode: perm, Major: major, Minor: minor}
}

// ErrDuplicate is returned (wrapped) when two entries name the same path and
// are not both directories.
var ErrDuplicate = errors.New("path already in the archive")

// WriteFile writes the image described by entries to the file name, creating
// or truncating it.
func WriteFile(name string, entries []Entry) (err error) {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("initramfs: closing %s: %w", name, cerr)
		}
	}()
	return Write(f, entries)
}

// Write writes the image described by entries to w as a newc cpio archive,
// ending with the trailer record. Records appear in entry order, each
// preceded by its missing parent directories. A directory named more than
// once (explicitly, as a parent or inside a tree) is written once, where it
// first appears, with the mode of its last Dir entry or tree directory: u-root's
// newc writer drops repeated names, so the mode must be right the first
// time.
func Write(w io.Writer, entries []Entry) error {
	c := collector{dirModes: make(map[string]uint64), kinds: make(map[string]uint64)}
	for i, e := range entries {
		if err := c.entry(e); err != nil {
			return fmt.Errorf("initramfs: entry %d (%s %q): %w", i, e.Kind, e.Path, err)
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	aw := &archiveWriter{
		rw:       cpio.Newc.Writer(bw),
		dirModes: c.dirModes,
		written:  make(map[string]bool),
	}
	for _, it := range c.items {
		if err := aw.item(it); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
	}
	if err := cpio.WriteTrailer(aw.rw); err != nil {
		return fmt.Errorf("initramfs: writing trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

// item is one record to write. Host files are opened only when written, so
// an image of any size needs no memory for its contents.
type item struct {
	info cpio.Info
	// data is the content of an in-memory file or a symlink's target.
	data []byte
	// src is the host file to stream, if any.
	src string
}

// collector turns entries into items, expanding trees and checking names.
type collector struct {
	items []item
	// kinds maps every name to its file type bits, to find duplicates.
	kinds map[string]uint64
	// dirModes maps directories to the mode of their last explicit
	// declaration.
	dirModes map[string]uint64
}

// cleanPath turns an image path into the archive's relative form and rejects
// paths that would escape the root or name the root itself.
func cleanPath(p string) (string, error) {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("path %q contains \"..\"", p)
		}
	}
	c := strings.TrimLeft(path.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("path %q names the root", p)
	}
	return c, nil
}

func (c *collector) entry(e Entry) error {
	name, err := cleanPath(e.Path)
	if err != nil {
		return err
	}
	perm := uint64(permBits(e.Mode))
	switch e.Kind {
	case KindDir:
		return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFDIR | perm}})
	case KindData:
		return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}, data: e.Data})
	case KindSymlink:
		if e.Target == "" {
			return errors.New("empty symlink target")
		}
		return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFLNK | 0o777}, data: []byte(e.Target)})
	case KindCharDev:
		return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFCHR | perm, Rmajor: uint64(e.Major), Rminor: uint64(e.Minor)}})
	case KindFile:
		st, err := os.Stat(e.Src)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s)", e.Src, st.Mode().Type())
		}
		if e.Mode == 0 {
			perm = uint64(permBits(st.Mode()))
		}
		return c.hostFile(name, e.Src, perm, st.Size())
	case KindTree:
		return c.tree(name, e.Src)
	}
	return fmt.Errorf("unknown entry kind %d", e.Kind)
}

// permBits converts Go's permission and special bits to their mode_t values.
func permBits(m os.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		b |= cpio.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		b |= cpio.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		b |= cpio.S_ISVTX
	}
	return b
}

func (c *collector) hostFile(name, src string, perm uint64, size int64) error {
	if size > math.MaxUint32 {
		return fmt.Errorf("%s: %d bytes do not fit newc's 32-bit size field", src, size)
	}
	return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFREG | perm, FileSize: uint64(size)}, src: src})
}

// tree adds the host directory src at prefix, in lexical order so that the
// output does not depend on directory iteration order.
func (c *collector) tree(prefix, src string) error {
	return filepath.WalkDir(src, func(hostPath string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, hostPath)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := uint64(permBits(info.Mode()))
		switch t := info.Mode().Type(); t {
		case 0:
			return c.hostFile(name, hostPath, perm, info.Size())
		case fs.ModeDir:
			return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFDIR | perm}})
		case fs.ModeSymlink:
			target, err := os.Readlink(hostPath)
			if err != nil {
				return err
			}
			return c.add(item{info: cpio.Info{Name: name, Mode: cpio.S_IFLNK | 0o777}, data: []byte(target)})
		default:
			return fmt.Errorf("%s: unsupported file type %s", hostPath, t)
		}
	})
}

// add records it, refusing a second use of a name unless both uses are
// directories.
func (c *collector) add(it item) error {
	name, typ := it.info.Name, it.info.Mode&cpio.S_IFMT
	if prev, ok := c.kinds[name]; ok && (prev != cpio.S_IFDIR || typ != cpio.S_IFDIR) {
		return fmt.Errorf("%q: %w", name, ErrDuplicate)
	}
	c.kinds[name] = typ
	if typ == cpio.S_IFDIR {
		c.dirModes[name] = it.info.Mode
	}
	c.items = append(c.items, it)
	return nil
}

// archiveWriter writes items, creating parents and numbering inodes.
type archiveWriter struct {
	rw cpio.RecordWriter
	// dirModes is collector.dirModes.
	dirModes map[string]uint64
	// written holds the names already in the archive, mapped to whether
	// they are directories.
	written map[string]bool
	lastIno uint64
}

// item writes it after any missing parent directories.
func (aw *archiveWriter) item(it item) error {
	name := it.info.Name
	if isDir, ok := aw.written[name]; ok {
		if isDir {
			return nil // repeated directory: see Write
		}
		return fmt.Errorf("%q: %w", name, ErrDuplicate)
	}
	if dir := path.Dir(name); dir != "." {
		if isDir, ok := aw.written[dir]; !ok {
			if err := aw.item(item{info: cpio.Info{Name: dir, Mode: cpio.S_IFDIR | 0o755}}); err != nil {
				return err
			}
		} else if !isDir {
			return fmt.Errorf("parent %q of %q is not a directory", dir, name)
		}
	}
	info := it.info
	if m, ok := aw.dirModes[name]; ok {
		info.Mode = m
	}
	aw.lastIno++
	info.Ino = aw.lastIno
	info.NLink = 1
	aw.written[name] = info.Mode&cpio.S_IFMT == cpio.S_IFDIR
	switch {
	case it.src != "":
		return aw.hostFile(info, it.src)
	case info.Mode&cpio.S_IFMT == cpio.S_IFREG || info.Mode&cpio.S_IFMT == cpio.S_IFLNK:
		return aw.record(cpio.StaticRecord(it.data, info))
	default:
		return aw.record(cpio.Record{Info: info})
	}
}

// hostFile streams the host file src as the content of info's record.
func (aw *archiveWriter) hostFile(info cpio.Info, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && uint64(st.Size()) != info.FileSize {
		err = fmt.Errorf("%s changed size while the image was built", src)
	}
	if err == nil {
		// readerAtOnly hides Close from cpio's writer, which would
		// close the file only on success; it is closed on every path
		// here.
		err = aw.record(cpio.Record{ReaderAt: readerAtOnly{f}, Info: info})
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing %s: %w", src, cerr)
	}
	return err
}

// readerAtOnly exposes only ReadAt of the wrapped value.
type readerAtOnly struct{ r io.ReaderAt }

func (r readerAtOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

// record writes one record; owners, times and the device holding the inode
// stay zero so that the same inputs give the same bytes.
func (aw *archiveWriter) record(rec cpio.Record) error {
	if err := aw.rw.WriteRecord(rec); err != nil {
		return fmt.Errorf("writing %q: %w", rec.Name, err)
	}
	return nil
}

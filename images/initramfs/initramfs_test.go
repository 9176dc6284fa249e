package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"
)

// rec is the part of a record the tests compare.
type rec struct {
	name           string
	mode           uint64
	data           string
	rmajor, rminor uint64
}

func (r rec) String() string {
	return fmt.Sprintf("{%s %#o %q %d:%d}", r.name, r.mode, r.data, r.rmajor, r.rminor)
}

// readBack parses a newc archive with u-root's reader, checks the invariants
// Write promises (unique non-zero inodes, nlink 1, root owner, zero mtime)
// and returns the records.
func readBack(t *testing.T, archive []byte) []rec {
	t.Helper()
	rr := cpio.Newc.Reader(bytes.NewReader(archive))
	records, err := cpio.ReadAllRecords(rr)
	if err != nil {
		t.Fatalf("ReadAllRecords: %v", err)
	}
	inos := make(map[uint64]string)
	var out []rec
	for _, r := range records {
		if r.Ino == 0 {
			t.Errorf("%s: inode 0", r.Name)
		}
		if prev, dup := inos[r.Ino]; dup {
			t.Errorf("%s: inode %d already used by %s", r.Name, r.Ino, prev)
		}
		inos[r.Ino] = r.Name
		if r.NLink != 1 || r.UID != 0 || r.GID != 0 || r.MTime != 0 {
			t.Errorf("%s: got nlink %d uid %d gid %d mtime %d, want 1 0 0 0", r.Name, r.NLink, r.UID, r.GID, r.MTime)
		}
		var data []byte
		if r.ReaderAt != nil {
			data, err = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				t.Fatalf("%s: reading content: %v", r.Name, err)
			}
		}
		out = append(out, rec{name: r.Name, mode: r.Mode, data: string(data), rmajor: r.Rmajor, rminor: r.Rminor})
	}
	return out
}

func writeBytes(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	err := Write(&buf, entries)
	return buf.Bytes(), err
}

func TestWriteReadBack(t *testing.T) {
	host := t.TempDir()
	initBin := filepath.Join(host, "init")
	if err := os.WriteFile(initBin, []byte("#!init"), 0o750); err != nil {
		t.Fatal(err)
	}
	ko := filepath.Join(host, "kvm.ko")
	if err := os.WriteFile(ko, []byte("ELF module"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(host, "bin")
	for _, d := range []string{"basic", "proc/empty"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "basic", "hello"), []byte("hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "basic", "data.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("basic/hello", filepath.Join(tree, "hi")); err != nil {
		t.Fatal(err)
	}
	// MkdirAll obeys the umask; pin the modes the test expects.
	for _, d := range []string{"", "basic", "proc", "proc/empty"} {
		if err := os.Chmod(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	entries := []Entry{
		Dir("/proc", 0o555),
		CharDev("/dev/console", 0o600, 5, 1),
		File("/init", initBin, 0),
		File("lib/modules/kvm.ko", ko, 0o600),
		Data("/tests/suite.list", []byte("/bin/true\n"), 0o644),
		Tree("/tests/bin", tree),
		Symlink("/bin", "tests/bin"),
		Dir("/tmp", 0o777|os.ModeSticky),
		Data("/tmp/x", nil, 0o644),
		Dir("/tmp", 0o777|os.ModeSticky), // again: no new record
	}
	archive, err := writeBytes(entries)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := readBack(t, archive)
	want := []rec{
		{name: "proc", mode: cpio.S_IFDIR | 0o555},
		{name: "dev", mode: cpio.S_IFDIR | 0o755},
		{name: "dev/console", mode: cpio.S_IFCHR | 0o600, rmajor: 5, rminor: 1},
		{name: "init", mode: cpio.S_IFREG | 0o750, data: "#!init"},
		{name: "lib", mode: cpio.S_IFDIR | 0o755},
		{name: "lib/modules", mode: cpio.S_IFDIR | 0o755},
		{name: "lib/modules/kvm.ko", mode: cpio.S_IFREG | 0o600, data: "ELF module"},
		{name: "tests", mode: cpio.S_IFDIR | 0o755},
		{name: "tests/suite.list", mode: cpio.S_IFREG | 0o644, data: "/bin/true\n"},
		{name: "tests/bin", mode: cpio.S_IFDIR | 0o755},
		{name: "tests/bin/basic", mode: cpio.S_IFDIR | 0o755},
		{name: "tests/bin/basic/data.txt", mode: cpio.S_IFREG | 0o600},
		{name: "tests/bin/basic/hello", mode: cpio.S_IFREG | 0o755, data: "hello"},
		{name: "tests/bin/hi", mode: cpio.S_IFLNK | 0o777, data: "basic/hello"},
		{name: "tests/bin/proc", mode: cpio.S_IFDIR | 0o755},
		{name: "tests/bin/proc/empty", mode: cpio.S_IFDIR | 0o755},
		{name: "bin", mode: cpio.S_IFLNK | 0o777, data: "tests/bin"},
		{name: "tmp", mode: cpio.S_IFDIR | cpio.S_ISVTX | 0o777},
		{name: "tmp/x", mode: cpio.S_IFREG | 0o644},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records:\ngot  %v\nwant %v", got, want)
	}
	if !bytes.HasPrefix(archive, []byte("070701")) {
		t.Errorf("archive starts with %q, want newc magic 070701", archive[:6])
	}
	if len(archive)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(archive))
	}

	again, err := writeBytes(entries)
	if err != nil {
		t.Fatalf("second Write: %v", err)
	}
	if !bytes.Equal(archive, again) {
		t.Errorf("two writes of the same entries differ")
	}
}

func TestDirRedeclaredWithNewMode(t *testing.T) {
	archive, err := writeBytes([]Entry{
		Data("/tmp/x", nil, 0o644),
		Dir("/tmp", 0o777|os.ModeSticky),
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := readBack(t, archive)
	want := []rec{
		{name: "tmp", mode: cpio.S_IFDIR | cpio.S_ISVTX | 0o777},
		{name: "tmp/x", mode: cpio.S_IFREG | 0o644},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records:\ngot  %v\nwant %v", got, want)
	}
}

func TestWriteErrors(t *testing.T) {
	host := t.TempDir()
	file := filepath.Join(host, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		entries []Entry
		want    string
		is      error
	}{
		{name: "duplicate file", entries: []Entry{Data("/a", nil, 0o644), Data("a", nil, 0o644)}, want: "already in the archive", is: ErrDuplicate},
		{name: "dir over file", entries: []Entry{Data("/a", nil, 0o644), Dir("/a", 0o755)}, want: "already in the archive", is: ErrDuplicate},
		{name: "file under file", entries: []Entry{Data("/a", nil, 0o644), Data("/a/b", nil, 0o644)}, want: "is not a directory"},
		{name: "dotdot", entries: []Entry{Data("/a/../../etc", nil, 0o644)}, want: `contains ".."`},
		{name: "root", entries: []Entry{Dir("/", 0o755)}, want: "names the root"},
		{name: "missing host file", entries: []Entry{File("/x", filepath.Join(host, "nope"), 0)}, want: "no such file", is: os.ErrNotExist},
		{name: "host dir as file", entries: []Entry{File("/x", host, 0)}, want: "is not a regular file"},
		{name: "missing tree", entries: []Entry{Tree("/x", filepath.Join(host, "nope"))}, want: "no such file", is: os.ErrNotExist},
		{name: "empty symlink", entries: []Entry{Symlink("/x", "")}, want: "empty symlink target"},
		{name: "zero kind", entries: []Entry{{Path: "/x"}}, want: "unknown entry kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := writeBytes(tt.entries)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write: got error %v, want one containing %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Write: got error %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestTreeRejectsFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("cannot create a FIFO here: %v", err)
	}
	_, err := writeBytes([]Entry{Tree("/t", dir)})
	if err == nil || !strings.Contains(err.Error(), "unsupported file type") {
		t.Fatalf("Write: got error %v, want an unsupported file type error", err)
	}
}

func TestWriteFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := WriteFile(name, []Entry{Data("/init", []byte("x"), 0o755)}); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	got := readBack(t, b)
	want := []rec{{name: "init", mode: cpio.S_IFREG | 0o755, data: "x"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records: got %v, want %v", got, want)
	}
}

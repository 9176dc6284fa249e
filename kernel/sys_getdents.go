package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

func init() {
	register(unix.SYS_GETDENTS64, "getdents64", sysGetdents64, argFD, argHex, argInt)
}

// dirent is one directory entry.
type dirent struct {
	ino  uint64
	typ  uint8
	name string
}

// dirLister is a File that is a directory with entries.
type dirLister interface {
	// dirents returns the entries and the position to continue from.
	readDirents() (ents []dirent, pos *int64)
}

// sysGetdents64 implements getdents64(2) for the directories ringbox has
// (the /proc ones): struct linux_dirent64 records, 8-byte aligned; EINVAL
// when not even one entry fits (Linux: fs/readdir.c).
func sysGetdents64(t *Task, a *syscallArgs) (uint64, error) {
	f := t.fdt.get(a.int(0))
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	d, ok := f.(dirLister)
	if st, err := f.Stat(t); !ok || err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, unix.ENOTDIR
	}
	count := uint64(uint32(a.u(2)))
	ents, pos := d.readDirents()
	var buf []byte
	i := *pos
	for ; i < int64(len(ents)); i++ {
		e := ents[i]
		reclen := (19 + len(e.name) + 1 + 7) &^ 7
		if uint64(len(buf)+reclen) > count {
			break
		}
		rec := make([]byte, reclen)
		binary.LittleEndian.PutUint64(rec[0:], e.ino)
		binary.LittleEndian.PutUint64(rec[8:], uint64(i+1))
		binary.LittleEndian.PutUint16(rec[16:], uint16(reclen))
		rec[18] = e.typ
		copy(rec[19:], e.name)
		buf = append(buf, rec...)
	}
	if len(buf) == 0 && i < int64(len(ents)) {
		return 0, unix.EINVAL
	}
	if err := t.CopyOut(a.u(1), buf); err != nil {
		return 0, err
	}
	*pos = i
	return uint64(len(buf)), nil
}

package kernel

import (
	"golang.org/x/sys/unix"
)

func init() {
	register(unix.SYS_ACCESS, "access", sysAccess, argPath, argHex)
	register(unix.SYS_FACCESSAT, "faccessat", sysFaccessat, argFD, argPath, argHex)
	register(unix.SYS_FACCESSAT2, "faccessat2", sysFaccessat2, argFD, argPath, argHex, argHex)
}

func sysAccess(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.access(unix.AT_FDCWD, a.u(0), a.int(1), 0)
}

func sysFaccessat(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.access(a.int(0), a.u(1), a.int(2), 0)
}

func sysFaccessat2(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.access(a.int(0), a.u(1), a.int(2), a.int(3))
}

// access implements faccessat2(2) over the files ringbox has: it checks
// existence and the mode bits against the real (or, with AT_EACCESS,
// effective) IDs; root passes read and write checks, and execute checks
// when any execute bit is set (Linux: fs/open.c:do_faccessat(),
// generic_permission()).
func (t *Task) access(dirfd int, pathAddr uint64, mode, flags int) error {
	if mode&^(unix.R_OK|unix.W_OK|unix.X_OK) != 0 {
		return unix.EINVAL
	}
	if flags&^(unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	path, err := t.CopyInString(pathAddr, unix.PathMax-1)
	if err != nil {
		return err
	}
	f, err := openFile(t, dirfd, path, unix.O_PATH)
	if err != nil {
		return err
	}
	st, err := f.Stat(t)
	f.DecRef()
	if err != nil {
		return err
	}
	if mode == unix.F_OK {
		return nil
	}
	uid, gid := t.creds.RealUID, t.creds.RealGID
	if flags&unix.AT_EACCESS != 0 {
		uid, gid = t.creds.EffectiveUID, t.creds.EffectiveGID
	}
	perm := st.Mode & 0o7
	switch {
	case uid == st.Uid:
		perm = (st.Mode >> 6) & 0o7
	case gid == st.Gid:
		perm = (st.Mode >> 3) & 0o7
	}
	if uid == 0 {
		perm |= unix.R_OK | unix.W_OK
		if st.Mode&0o111 != 0 || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			perm |= unix.X_OK
		}
	}
	if uint32(mode)&^perm != 0 {
		return unix.EACCES
	}
	return nil
}

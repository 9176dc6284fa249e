package kernel

import (
	"golang.org/x/sys/unix"
)

// openHost opens a file of the host read-only.
//
// TODO(ringbox): the sandbox has no root filesystem of its own yet (the
// filesystem work brings rootfs images and a VFS); until then programs
// see the host's files read-only, as execve already does. Writes, creation
// and truncation are EROFS.
func openHost(name string, flags int) (File, error) {
	if flags&unix.O_ACCMODE != unix.O_RDONLY || flags&(unix.O_CREAT|unix.O_TRUNC|oTmpfileBit) != 0 {
		if flags&unix.O_PATH == 0 {
			return nil, unix.EROFS
		}
	}
	hflags := unix.O_CLOEXEC | unix.O_NOCTTY | flags&(unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_PATH)
	if flags&unix.O_PATH == 0 {
		hflags |= unix.O_RDONLY | unix.O_NONBLOCK
	}
	fd, err := unix.Open(name, hflags, 0)
	if err != nil {
		return nil, err
	}
	hf, err := wrapHostFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	hf.flags.Store(int32(flags&^(unix.O_CLOEXEC|unix.O_CREAT|unix.O_EXCL|unix.O_NOCTTY|unix.O_TRUNC)) | oLargefile)
	return hf, nil
}

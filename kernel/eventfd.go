package kernel

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// eventfd(2) (Linux: fs/eventfd.c): a 64-bit counter that write adds to
// and read takes (all of it, or 1 with EFD_SEMAPHORE). Go's runtime needs
// one for its network poller.

func init() {
	register(unix.SYS_EVENTFD, "eventfd", sysEventfd, argInt)
	register(unix.SYS_EVENTFD2, "eventfd2", sysEventfd2, argInt, argHex)
}

// eventfdMax is the counter's ceiling: a write that would reach it waits.
const eventfdMax = ^uint64(0) - 1

// eventFile is an eventfd.
type eventFile struct {
	fileRefs
	fileFlags
	semaphore bool

	// rq wakes readers (count > 0), wq writers (room).
	rq, wq WaitQueue

	mu sync.Mutex
	// count is the counter. Protected by mu.
	count uint64
}

// DecRef implements File.DecRef.
func (e *eventFile) DecRef() { e.decRef() }

// Read implements File.Read: 8 bytes of counter, waiting while it is 0.
func (e *eventFile) Read(t *Task, dst []byte) (int, error) {
	if len(dst) < 8 {
		return 0, unix.EINVAL
	}
	var w *Waiter
	defer func() {
		if w != nil {
			e.rq.Remove(w)
		}
	}()
	for {
		e.mu.Lock()
		if e.count > 0 {
			v := e.count
			if e.semaphore {
				v = 1
			}
			e.count -= v
			e.mu.Unlock()
			e.wq.Notify()
			binary.LittleEndian.PutUint64(dst, v)
			return 8, nil
		}
		e.mu.Unlock()
		if e.nonblocking() {
			return 0, unix.EAGAIN
		}
		if w == nil {
			w = NewWaiter()
			e.rq.Add(w)
			continue
		}
		if err := t.Block(w.C); err != nil {
			return 0, ERESTARTSYS
		}
	}
}

// Write implements File.Write: adds the 8-byte value, waiting while the
// counter has no room for it; the value ULLONG_MAX is EINVAL. A write of
// other than 8 bytes is EINVAL (Linux 6.x checks count != 8; reads take
// any buffer of at least 8 bytes).
func (e *eventFile) Write(t *Task, src []byte) (int, error) {
	if len(src) != 8 {
		return 0, unix.EINVAL
	}
	v := binary.LittleEndian.Uint64(src)
	if v == ^uint64(0) {
		return 0, unix.EINVAL
	}
	var w *Waiter
	defer func() {
		if w != nil {
			e.wq.Remove(w)
		}
	}()
	for {
		e.mu.Lock()
		if ^uint64(0)-e.count > v {
			e.count += v
			e.mu.Unlock()
			if v > 0 {
				e.rq.Notify()
			}
			return 8, nil
		}
		e.mu.Unlock()
		if e.nonblocking() {
			return 0, unix.EAGAIN
		}
		if w == nil {
			w = NewWaiter()
			e.wq.Add(w)
			continue
		}
		if err := t.Block(w.C); err != nil {
			return 0, ERESTARTSYS
		}
	}
}

// PRead implements File.PRead.
func (e *eventFile) PRead(t *Task, dst []byte, off int64) (int, error) { return 0, unix.ESPIPE }

// PWrite implements File.PWrite.
func (e *eventFile) PWrite(t *Task, src []byte, off int64) (int, error) { return 0, unix.ESPIPE }

// Seek implements File.Seek (Linux: noop_llseek).
func (e *eventFile) Seek(t *Task, off int64, whence int) (int64, error) { return 0, nil }

// Seekable implements File.Seekable.
func (e *eventFile) Seekable() bool { return false }

// Ioctl implements File.Ioctl.
func (e *eventFile) Ioctl(t *Task, req, arg uint64) (uint64, error) { return 0, unix.ENOTTY }

// Stat implements File.Stat: an anonymous inode.
func (e *eventFile) Stat(t *Task) (unix.Stat_t, error) {
	return unix.Stat_t{Dev: anonInodeDev, Nlink: 1, Mode: 0o600, Blksize: pageSize}, nil
}

// Readiness implements File.Readiness (Linux: eventfd_poll()).
func (e *eventFile) Readiness(mask uint32) uint32 {
	e.mu.Lock()
	c := e.count
	e.mu.Unlock()
	var ev uint32
	if c > 0 {
		ev |= unix.POLLIN | pollRdNorm
	}
	if c == ^uint64(0) {
		ev |= unix.POLLERR
	}
	if c < eventfdMax {
		ev |= unix.POLLOUT | pollWrNorm
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements File.EventRegister.
func (e *eventFile) EventRegister(w *Waiter, mask uint32) {
	e.rq.Add(w)
	e.wq.Add(w)
}

// EventUnregister implements File.EventUnregister.
func (e *eventFile) EventUnregister(w *Waiter) {
	e.rq.Remove(w)
	e.wq.Remove(w)
}

// sysEventfd implements eventfd(2).
func sysEventfd(t *Task, a *syscallArgs) (uint64, error) {
	return eventfdCreate(t, uint32(a.u(0)), 0)
}

// sysEventfd2 implements eventfd2(2).
func sysEventfd2(t *Task, a *syscallArgs) (uint64, error) {
	return eventfdCreate(t, uint32(a.u(0)), a.int(1))
}

func eventfdCreate(t *Task, initval uint32, flags int) (uint64, error) {
	if flags&^(unix.EFD_CLOEXEC|unix.EFD_NONBLOCK|unix.EFD_SEMAPHORE) != 0 {
		return 0, unix.EINVAL
	}
	e := &eventFile{semaphore: flags&unix.EFD_SEMAPHORE != 0, count: uint64(initval)}
	e.initRefs()
	e.flags.Store(int32(unix.O_RDWR | flags&unix.EFD_NONBLOCK))
	fd, err := t.fdt.newFD(e, 0, flags&unix.EFD_CLOEXEC != 0, t.fileLimit())
	if err != nil {
		e.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

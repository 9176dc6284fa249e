package kernel

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// hostFile is a file backed by a host descriptor: the sandbox's stdio,
// and the host files openHost shows read-only.
//
// Its status flags are the program's own: they start as the host's, but
// F_SETFL never reaches the host, whose open file description is shared
// with whoever started ringbox (a shell would find its terminal left
// nonblocking). O_NONBLOCK is emulated: the host descriptor stays as it
// was, and a read of a pipe, socket or terminal first asks host poll(2)
// whether it would block (a regular file never does).
//
// Blocking is interruptible by signals: a task that must wait registers a
// Waiter, which starts a goroutine blocked in host poll(2) on the
// descriptor together with an eventfd; EventUnregister writes the eventfd
// to end that poll. Only waits pay for a goroutine and an eventfd; a read
// of data already there costs one host poll with a zero timeout. (A host
// epoll shared by all host files would save the goroutines; the
// registrations are short-lived enough that it has not been needed.)
type hostFile struct {
	fileRefs
	fileFlags
	fd       int
	seekable bool
	// canPoll is false for a regular file or directory, which have no
	// poll method on Linux (epoll_ctl refuses them).
	canPoll bool
	// chunkedWrites: a pipe or socket, written in waits for room and
	// pieces that do not block (see Write).
	chunkedWrites bool
	// regular: a regular file, which never blocks and whose reads are
	// short only at its end.
	regular bool

	mu sync.Mutex
	// waits are the pending registrations. Protected by mu.
	waits map[*Waiter]*hostWait
}

// hostWait is one EventRegister: a goroutine polling the host descriptor.
type hostWait struct {
	// mask are the events polled for.
	mask uint32
	// efd is the eventfd that ends the poll.
	efd int
	// done is closed when the goroutine is gone.
	done chan struct{}
}

// newHostFile returns a file for a duplicate of host descriptor h.
func newHostFile(h int) (*hostFile, error) {
	fd, err := unix.FcntlInt(uintptr(h), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	hf, err := wrapHostFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return hf, nil
}

// wrapHostFD returns a file that owns host descriptor fd.
func wrapHostFD(fd int) (*hostFile, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, err
	}
	hf := &hostFile{fd: fd, waits: make(map[*Waiter]*hostWait)}
	hf.initRefs()
	hf.flags.Store(int32(fl &^ unix.O_CLOEXEC))
	// A pipe, socket or terminal has no position; the host says which
	// (Linux: no_llseek, nonseekable_open()).
	_, serr := unix.Seek(fd, 0, unix.SEEK_CUR)
	hf.seekable = serr == nil
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	typ := st.Mode & unix.S_IFMT
	hf.canPoll = typ != unix.S_IFREG && typ != unix.S_IFDIR
	hf.chunkedWrites = typ == unix.S_IFIFO || typ == unix.S_IFSOCK
	hf.regular = typ == unix.S_IFREG
	return hf, nil
}

// DecRef implements File.DecRef.
func (h *hostFile) DecRef() {
	if h.decRef() {
		unix.Close(h.fd)
	}
}

// Read implements File.Read. A host descriptor that is itself
// nonblocking (the host files ringbox opens are) may still say EAGAIN
// after poll reported data another reader took: a blocking read then
// waits again.
//
// TODO(ringbox): on a blocking host descriptor, data that another reader
// of it (outside the sandbox) takes between the poll and the read leaves
// the read blocked on the host, deaf to signals, until more data comes.
func (h *hostFile) Read(t *Task, dst []byte) (int, error) {
	if len(dst) == 0 || h.regular {
		return h.hostRead(dst)
	}
	for {
		if err := h.waitReady(t, unix.POLLIN); err != nil {
			return 0, err
		}
		n, err := h.hostRead(dst)
		if err == unix.EAGAIN && !h.nonblocking() {
			continue
		}
		return n, err
	}
}

func (h *hostFile) hostRead(dst []byte) (int, error) {
	for {
		n, err := unix.Read(h.fd, dst)
		if err == unix.EINTR {
			continue
		}
		return max(n, 0), err
	}
}

// waitReady waits until a host operation for events would not block: the
// host reports one of them, or an error or hang-up. With O_NONBLOCK it is
// EAGAIN instead of a wait; a signal makes it ERESTARTSYS (Linux's
// pipe_read, pipe_write and tty reads restart the same way).
func (h *hostFile) waitReady(t *Task, events uint32) error {
	ready := func() bool { return h.Readiness(events) != 0 }
	if ready() {
		return nil
	}
	if h.nonblocking() {
		return unix.EAGAIN
	}
	for {
		w := NewWaiter()
		h.EventRegister(w, events)
		if ready() {
			h.EventUnregister(w)
			return nil
		}
		err := t.Block(w.C)
		h.EventUnregister(w)
		if err != nil {
			return ERESTARTSYS
		}
		if ready() {
			return nil
		}
	}
}

// Write implements File.Write. A broken pipe on the host is EPIPE for the
// program, with the SIGPIPE Linux would send.
//
// A write to a host pipe or socket waits for room with host poll(2), so
// that a signal can interrupt it, and then writes at most PIPE_BUF
// bytes, which a pipe with room (POLLOUT: a free page) takes without
// blocking. Interrupted, the write returns what it wrote, or ERESTARTSYS.
//
// TODO(ringbox): a write to a host terminal or other file is one host
// write, which a signal cannot interrupt if the host blocks it (a
// terminal stopped with ^S, say).
func (h *hostFile) Write(t *Task, src []byte) (int, error) {
	chunked := h.chunkedWrites
	if !chunked && h.nonblocking() && len(src) > 0 && h.Readiness(unix.POLLOUT) == 0 {
		return 0, unix.EAGAIN
	}
	total := 0
	for total < len(src) {
		c := src[total:]
		if chunked {
			if err := h.waitReady(t, unix.POLLOUT); err != nil {
				if total > 0 {
					return total, nil
				}
				return 0, err
			}
			c = c[:min(len(c), pipeBuf)]
		}
		n, err := unix.Write(h.fd, c)
		if err == unix.EINTR || (err == unix.EAGAIN && chunked && !h.nonblocking()) {
			continue
		}
		if n > 0 {
			total += n
		}
		if err == unix.EPIPE {
			t.sendSelfSignal(unix.SIGPIPE)
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

// PRead implements File.PRead.
func (h *hostFile) PRead(t *Task, dst []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(h.fd, dst, off)
		if err == unix.EINTR {
			continue
		}
		return max(n, 0), err
	}
}

// PWrite implements File.PWrite.
func (h *hostFile) PWrite(t *Task, src []byte, off int64) (int, error) {
	for {
		n, err := unix.Pwrite(h.fd, src, off)
		if err == unix.EINTR {
			continue
		}
		return max(n, 0), err
	}
}

// Seek implements File.Seek on the host descriptor: the position is part
// of the host's open file description.
func (h *hostFile) Seek(t *Task, off int64, whence int) (int64, error) {
	return unix.Seek(h.fd, off, whence)
}

// Seekable implements File.Seekable.
func (h *hostFile) Seekable() bool { return h.seekable }

// Truncate implements ftruncate(2) on the host file (a regular file
// behind stdout, say); the host refuses the others with EINVAL.
func (h *hostFile) Truncate(t *Task, size int64) error { return unix.Ftruncate(h.fd, size) }

// Sync implements fsync(2) on the host file.
func (h *hostFile) Sync() error { return unix.Fsync(h.fd) }

// fillsReads tells read(2) that a regular file's reads are short only at
// its end.
func (h *hostFile) fillsReads() bool { return h.regular }

// pollable tells epoll_ctl whether the host file can be watched.
func (h *hostFile) pollable() bool { return h.canPoll }

// Ioctl implements File.Ioctl: the terminal requests a program makes on
// its stdio go to the host terminal (queries, raw mode, flushes), and
// FIONREAD to any host file that answers it.
//
// TODO(ringbox): job control (TIOCGPGRP, TIOCSPGRP, TIOCSCTTY) needs the
// sandbox's sessions tied to the terminal; those are ENOTTY.
func (h *hostFile) Ioctl(t *Task, req, arg uint64) (uint64, error) {
	switch req {
	case unix.TCGETS:
		tio, err := unix.IoctlGetTermios(h.fd, unix.TCGETS)
		if err != nil {
			return 0, err
		}
		return 0, t.CopyOut(arg, termiosBytes(tio))
	case unix.TCSETS, unix.TCSETSW, unix.TCSETSF:
		var tio unix.Termios
		if err := t.CopyIn(arg, termiosBytes(&tio)); err != nil {
			return 0, err
		}
		return 0, unix.IoctlSetTermios(h.fd, uint(req), &tio)
	case unix.TCFLSH, unix.TCXONC:
		return 0, unix.IoctlSetInt(h.fd, uint(req), int(int32(arg)))
	case unix.TIOCGWINSZ:
		ws, err := unix.IoctlGetWinsize(h.fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0, err
		}
		return 0, t.CopyOut(arg, winsizeBytes(ws))
	case unix.TIOCINQ: // FIONREAD
		n, err := unix.IoctlGetInt(h.fd, unix.TIOCINQ)
		if err != nil {
			return 0, err
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(n))
		return 0, t.CopyOut(arg, b[:])
	}
	return 0, unix.ENOTTY
}

// Stat implements File.Stat.
func (h *hostFile) Stat(t *Task) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(h.fd, &st)
	return st, err
}

// Readiness implements File.Readiness with a host poll(2) that does not
// wait.
func (h *hostFile) Readiness(mask uint32) uint32 {
	fds := []unix.PollFd{{Fd: int32(h.fd), Events: int16(mask)}}
	for {
		_, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return unix.POLLERR
		}
		return uint32(uint16(fds[0].Revents)) & (mask | unix.POLLERR | unix.POLLHUP | unix.POLLNVAL)
	}
}

// EventRegister implements File.EventRegister: a goroutine waits in host
// poll(2) and notifies w once.
func (h *hostFile) EventRegister(w *Waiter, mask uint32) {
	h.mu.Lock()
	old := h.waits[w]
	h.mu.Unlock()
	if old != nil {
		// The same waiter again (one descriptor twice in a poll set):
		// one poll for both sets of events.
		h.EventUnregister(w)
		mask |= old.mask
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		// Without an eventfd the poll could not be ended: wake the
		// waiter at once, which makes its wait a (slow) busy loop
		// rather than a hang.
		w.notify()
		return
	}
	hw := &hostWait{mask: mask, efd: efd, done: make(chan struct{})}
	h.mu.Lock()
	h.waits[w] = hw
	h.mu.Unlock()
	go func() {
		defer close(hw.done)
		fds := []unix.PollFd{
			{Fd: int32(h.fd), Events: int16(mask)},
			{Fd: int32(efd), Events: unix.POLLIN},
		}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || fds[0].Revents != 0 {
				w.notify()
			}
			return
		}
	}()
}

// EventUnregister implements File.EventUnregister. It returns once the
// polling goroutine is gone, so the eventfd can be closed.
func (h *hostFile) EventUnregister(w *Waiter) {
	h.mu.Lock()
	hw := h.waits[w]
	delete(h.waits, w)
	h.mu.Unlock()
	if hw == nil {
		return
	}
	var one [8]byte
	one[0] = 1
	if _, err := unix.Write(hw.efd, one[:]); err != nil {
		// The counter cannot overflow with one write per registration;
		// any failure would leave the goroutine blocked forever.
		panic("hostFile: cannot write eventfd: " + err.Error())
	}
	<-hw.done
	unix.Close(hw.efd)
}

package kernel

import (
	"encoding/binary"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/kernel/seccomp"
)

// seccomp user notification (seccomp_unotify(2); Linux: kernel/seccomp.c,
// the seccomp_notify_* functions): a filter installed with
// SECCOMP_FILTER_FLAG_NEW_LISTENER comes with a listener descriptor. A
// system call the filter answers with SECCOMP_RET_USER_NOTIF blocks its
// task and queues a notification; the supervisor reads it with
// SECCOMP_IOCTL_NOTIF_RECV, may inject descriptors with
// SECCOMP_IOCTL_NOTIF_ADDFD, and answers with SECCOMP_IOCTL_NOTIF_SEND: a
// result, an error, or "continue" (run the call).
//
//	task (filter says USER_NOTIF)         supervisor (listener fd)
//	  queue notification (INIT) ──POLLIN──> NOTIF_RECV: SENT
//	  block on ready                         NOTIF_ADDFD: the task installs
//	                           <── ready ──  NOTIF_SEND: REPLIED
//	  return val / error, or run the call
//
// A signal ends the wait with ERESTARTSYS (the call is made again and
// notifies again), but a killable wait (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
// ignores signals once the notification was received. Closing the
// listener answers every pending notification with ENOSYS, as later
// USER_NOTIF verdicts are.

// Notification states.
const (
	notifyInit = iota
	notifySent
	notifyReplied
)

// seccomp_unotify ABI (include/uapi/linux/seccomp.h).
const (
	seccompUserNotifFlagContinue = 1
	seccompAddfdFlagSetfd        = 1
	seccompAddfdFlagSend         = 2
	seccompNotifFdSyncWakeUp     = 1

	seccompNotifSize     = 80 // struct seccomp_notif
	seccompNotifRespSize = 24 // struct seccomp_notif_resp
	seccompAddfdSize     = 24 // struct seccomp_notif_addfd (VER0)

	// The ioctls: '!' with _IOWR/_IOW and the structure sizes.
	seccompIoctlNotifRecv        = 0xc0502100
	seccompIoctlNotifSend        = 0xc0182101
	seccompIoctlNotifIDValid     = 0x40082102
	seccompIoctlNotifIDValidOld  = 0x80082102 // the wrong direction Linux also accepts
	seccompIoctlNotifAddfd       = 0x40182103
	seccompIoctlNotifSetFlags    = 0x40082104
	ioctlSizeMask                = 0x3fff << 16
	ioctlDirMask                 = 3 << 30
	seccompIoctlNotifAddfdNoSize = seccompIoctlNotifAddfd &^ (ioctlSizeMask | ioctlDirMask)
)

// seccompNotify is the notification state of a filter with a listener.
type seccompNotify struct {
	// q wakes the listener's waiters: RECV and poll.
	q WaitQueue
	// killable: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV.
	killable bool

	mu sync.Mutex
	// The fields below are protected by mu.
	nextID  uint64
	pending []*seccompKnotif
	// detached: the listener was closed.
	detached bool
	// syncWakeUp: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (a scheduling
	// hint on Linux; recorded only).
	syncWakeUp bool
}

// seccompKnotif is one notification.
type seccompKnotif struct {
	id   uint64
	tid  int32
	data seccomp.Data
	// ready wakes the task: a reply or an addfd request.
	ready chan struct{}

	// Protected by seccompNotify.mu.
	state  int
	val    int64
	err    int32
	flags  uint32
	addfds []*seccompAddfd
}

// seccompAddfd is a SECCOMP_IOCTL_NOTIF_ADDFD request, carried out by the
// notifying task itself in its own descriptor table.
type seccompAddfd struct {
	file    File
	setfd   bool
	newfd   int
	cloexec bool
	send    bool
	// done is closed when the task has acted; ret and err hold the
	// outcome.
	done chan struct{}
	ret  int
	err  error
}

func (k *seccompKnotif) wake() {
	select {
	case k.ready <- struct{}{}:
	default:
	}
}

// seccompUserNotif carries out SECCOMP_RET_USER_NOTIF for the system call
// in the task's registers (kernel/seccomp.c:seccomp_do_user_notification()).
func (t *Task) seccompUserNotif(f *seccompFilter, d *seccomp.Data) seccompVerdict {
	r := &t.st.Regs
	n := f.notify
	if n == nil {
		r.Rax = negErrno(unix.ENOSYS)
		return seccompSkip
	}
	n.mu.Lock()
	if n.detached {
		n.mu.Unlock()
		r.Rax = negErrno(unix.ENOSYS)
		return seccompSkip
	}
	k := &seccompKnotif{id: n.nextID, tid: t.tid, data: *d, ready: make(chan struct{}, 1)}
	n.nextID++
	n.pending = append(n.pending, k)
	n.mu.Unlock()
	n.q.Notify()

	for {
		n.mu.Lock()
		killable := n.killable && k.state == notifySent
		n.mu.Unlock()
		var err error
		if killable {
			err = t.BlockKillable(k.ready)
		} else {
			err = t.Block(k.ready)
		}
		n.mu.Lock()
		for len(k.addfds) > 0 {
			a := k.addfds[0]
			k.addfds = k.addfds[1:]
			n.mu.Unlock()
			t.seccompHandleAddfd(n, k, a)
			n.mu.Lock()
		}
		if k.state == notifyReplied {
			break
		}
		if err != nil && !(n.killable && k.state == notifySent && !t.killed.Load()) {
			// Interrupted: withdraw, and let the restart notify
			// again.
			n.removeLocked(k)
			n.mu.Unlock()
			n.q.Notify()
			r.Rax = negErrno(ERESTARTSYS)
			t.syscallReturned = true
			return seccompSkip
		}
		n.mu.Unlock()
	}
	n.removeLocked(k)
	val, errno, flags := k.val, k.err, k.flags
	n.mu.Unlock()
	n.q.Notify()
	if flags&seccompUserNotifFlagContinue != 0 {
		return seccompRun
	}
	if errno != 0 {
		r.Rax = uint64(int64(errno))
	} else {
		r.Rax = uint64(val)
	}
	t.syscallReturned = true
	return seccompSkip
}

// removeLocked drops k from the pending list and fails its addfd requests.
//
// Preconditions: n.mu is held.
func (n *seccompNotify) removeLocked(k *seccompKnotif) {
	if i := slices.Index(n.pending, k); i >= 0 {
		n.pending = slices.Delete(n.pending, i, i+1)
	}
	for _, a := range k.addfds {
		a.err = unix.ESRCH
		close(a.done)
	}
	k.addfds = nil
}

// find returns the pending notification with id, or nil.
//
// Preconditions: n.mu is held.
func (n *seccompNotify) findLocked(id uint64) *seccompKnotif {
	for _, k := range n.pending {
		if k.id == id {
			return k
		}
	}
	return nil
}

// seccompHandleAddfd installs the descriptor of an addfd request in the
// task's table (kernel/seccomp.c:seccomp_handle_addfd()).
func (t *Task) seccompHandleAddfd(n *seccompNotify, k *seccompKnotif, a *seccompAddfd) {
	var fd int
	var err error
	if a.setfd {
		a.file.IncRef()
		var old File
		old, err = t.fdt.set(a.newfd, a.file, a.cloexec, t.fileLimit())
		if err != nil {
			a.file.DecRef()
		} else {
			fd = a.newfd
			if old != nil {
				old.DecRef()
			}
		}
	} else {
		a.file.IncRef()
		fd, err = t.fdt.newFD(a.file, 0, a.cloexec, t.fileLimit())
		if err != nil {
			a.file.DecRef()
		}
	}
	a.ret, a.err = fd, err
	if a.send {
		n.mu.Lock()
		if err != nil {
			// The notification waits for another reply.
			k.state = notifySent
		} else {
			k.val, k.err, k.flags = int64(fd), 0, 0
		}
		n.mu.Unlock()
	}
	close(a.done)
}

// seccompListener is the listener descriptor of a filter.
type seccompListener struct {
	fileRefs
	fileFlags
	f *seccompFilter
}

// DecRef implements File.DecRef: the last close detaches the listener and
// answers what is pending with ENOSYS (seccomp_notify_detach()).
func (l *seccompListener) DecRef() {
	if !l.decRef() {
		return
	}
	n := l.f.notify
	n.mu.Lock()
	n.detached = true
	for _, k := range n.pending {
		if k.state != notifyReplied {
			k.state, k.err, k.val, k.flags = notifyReplied, -int32(unix.ENOSYS), 0, 0
			k.wake()
		}
	}
	n.mu.Unlock()
	n.q.Notify()
}

// Read implements File.Read: the listener has no read (EINVAL).
func (l *seccompListener) Read(t *Task, dst []byte) (int, error) { return 0, unix.EINVAL }

// Write implements File.Write.
func (l *seccompListener) Write(t *Task, src []byte) (int, error) { return 0, unix.EINVAL }

// PRead implements File.PRead.
func (l *seccompListener) PRead(t *Task, dst []byte, off int64) (int, error) {
	return 0, unix.EINVAL
}

// PWrite implements File.PWrite.
func (l *seccompListener) PWrite(t *Task, src []byte, off int64) (int, error) {
	return 0, unix.EINVAL
}

// Seek implements File.Seek (noop_llseek).
func (l *seccompListener) Seek(t *Task, off int64, whence int) (int64, error) { return 0, nil }

// Seekable implements File.Seekable.
func (l *seccompListener) Seekable() bool { return false }

// Stat implements File.Stat: an anonymous inode.
func (l *seccompListener) Stat(t *Task) (unix.Stat_t, error) {
	return unix.Stat_t{Dev: anonInodeDev, Nlink: 1, Mode: 0o600, Blksize: pageSize}, nil
}

// Readiness implements File.Readiness (seccomp_notify_poll()): readable
// while a notification waits to be received, writable while one waits
// for its reply, hung up once no task uses the filter.
func (l *seccompListener) Readiness(mask uint32) uint32 {
	n := l.f.notify
	var ev uint32
	n.mu.Lock()
	for _, k := range n.pending {
		switch k.state {
		case notifyInit:
			ev |= unix.POLLIN | pollRdNorm
		case notifySent:
			ev |= unix.POLLOUT | pollWrNorm
		}
	}
	n.mu.Unlock()
	if l.f.users.Load() == 0 {
		ev |= unix.POLLHUP
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements File.EventRegister.
func (l *seccompListener) EventRegister(w *Waiter, mask uint32) { l.f.notify.q.Add(w) }

// EventUnregister implements File.EventUnregister.
func (l *seccompListener) EventUnregister(w *Waiter) { l.f.notify.q.Remove(w) }

// Ioctl implements File.Ioctl (seccomp_notify_ioctl()): unknown requests
// are EINVAL.
func (l *seccompListener) Ioctl(t *Task, req, arg uint64) (uint64, error) {
	switch req {
	case seccompIoctlNotifRecv:
		return 0, l.recv(t, arg)
	case seccompIoctlNotifSend:
		return 0, l.send(t, arg)
	case seccompIoctlNotifIDValid, seccompIoctlNotifIDValidOld:
		return 0, l.idValid(t, arg)
	case seccompIoctlNotifSetFlags:
		if arg&^seccompNotifFdSyncWakeUp != 0 {
			return 0, unix.EINVAL
		}
		n := l.f.notify
		n.mu.Lock()
		n.syncWakeUp = arg != 0
		n.mu.Unlock()
		return 0, nil
	}
	if req&^(ioctlSizeMask|ioctlDirMask) == seccompIoctlNotifAddfdNoSize {
		return l.addfd(t, arg, int(req&ioctlSizeMask>>16))
	}
	return 0, unix.EINVAL
}

// recv implements SECCOMP_IOCTL_NOTIF_RECV: the buffer must be zeroed; the
// call waits for a notification, marks it received and copies it out.
func (l *seccompListener) recv(t *Task, addr uint64) error {
	var buf [seccompNotifSize]byte
	if err := t.CopyIn(addr, buf[:]); err != nil {
		return unix.EFAULT
	}
	for _, b := range buf {
		if b != 0 {
			return unix.EINVAL
		}
	}
	n := l.f.notify
	w := NewWaiter()
	n.q.Add(w)
	defer n.q.Remove(w)
	var k *seccompKnotif
	for {
		n.mu.Lock()
		for _, c := range n.pending {
			if c.state == notifyInit {
				k = c
				break
			}
		}
		if k != nil {
			break
		}
		n.mu.Unlock()
		if err := t.Block(w.C); err != nil {
			// down_interruptible(): not restarted.
			return unix.EINTR
		}
	}
	k.state = notifySent
	// struct seccomp_notif: id, pid, flags, then struct seccomp_data.
	binary.LittleEndian.PutUint64(buf[0:], k.id)
	binary.LittleEndian.PutUint32(buf[8:], uint32(k.tid))
	binary.LittleEndian.PutUint32(buf[12:], 0)
	binary.LittleEndian.PutUint32(buf[16:], uint32(k.data.Nr))
	binary.LittleEndian.PutUint32(buf[20:], k.data.Arch)
	binary.LittleEndian.PutUint64(buf[24:], k.data.InstructionPointer)
	for i, a := range k.data.Args {
		binary.LittleEndian.PutUint64(buf[32+8*i:], a)
	}
	n.mu.Unlock()
	n.q.Notify()
	if err := t.CopyOut(addr, buf[:]); err != nil {
		// Keep the notification for another receive.
		n.mu.Lock()
		if k.state == notifySent {
			k.state = notifyInit
		}
		n.mu.Unlock()
		n.q.Notify()
		return unix.EFAULT
	}
	return nil
}

// send implements SECCOMP_IOCTL_NOTIF_SEND: exactly one reply per
// received notification.
func (l *seccompListener) send(t *Task, addr uint64) error {
	var buf [seccompNotifRespSize]byte
	if err := t.CopyIn(addr, buf[:]); err != nil {
		return unix.EFAULT
	}
	id := binary.LittleEndian.Uint64(buf[0:])
	val := int64(binary.LittleEndian.Uint64(buf[8:]))
	errno := int32(binary.LittleEndian.Uint32(buf[16:]))
	flags := binary.LittleEndian.Uint32(buf[20:])
	if flags&^seccompUserNotifFlagContinue != 0 {
		return unix.EINVAL
	}
	if flags&seccompUserNotifFlagContinue != 0 && (errno != 0 || val != 0) {
		return unix.EINVAL
	}
	n := l.f.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	k := n.findLocked(id)
	if k == nil {
		return unix.ENOENT
	}
	if k.state != notifySent {
		return unix.EINPROGRESS
	}
	k.state, k.val, k.err, k.flags = notifyReplied, val, errno, flags
	k.wake()
	return nil
}

// idValid implements SECCOMP_IOCTL_NOTIF_ID_VALID: whether the
// notification is still waiting for its reply.
func (l *seccompListener) idValid(t *Task, addr uint64) error {
	var b [8]byte
	if err := t.CopyIn(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	n := l.f.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	if k := n.findLocked(binary.LittleEndian.Uint64(b[:])); k != nil && k.state == notifySent {
		return nil
	}
	return unix.ENOENT
}

// addfd implements SECCOMP_IOCTL_NOTIF_ADDFD: the notifying task installs
// a copy of the supervisor's srcfd and the call returns its number there
// (kernel/seccomp.c:seccomp_notify_addfd()).
func (l *seccompListener) addfd(t *Task, addr uint64, size int) (uint64, error) {
	if size < seccompAddfdSize || size >= pageSize {
		return 0, unix.EINVAL
	}
	buf := make([]byte, size)
	if err := t.CopyIn(addr, buf); err != nil {
		return 0, unix.EFAULT
	}
	for _, b := range buf[seccompAddfdSize:] {
		if b != 0 {
			// copy_struct_from_user(): unknown trailing fields
			// must be zero.
			return 0, unix.E2BIG
		}
	}
	id := binary.LittleEndian.Uint64(buf[0:])
	flags := binary.LittleEndian.Uint32(buf[8:])
	srcfd := int32(binary.LittleEndian.Uint32(buf[12:]))
	newfd := binary.LittleEndian.Uint32(buf[16:])
	newfdFlags := binary.LittleEndian.Uint32(buf[20:])
	if newfdFlags&^unix.O_CLOEXEC != 0 {
		return 0, unix.EINVAL
	}
	if flags&^(seccompAddfdFlagSetfd|seccompAddfdFlagSend) != 0 {
		return 0, unix.EINVAL
	}
	if newfd != 0 && flags&seccompAddfdFlagSetfd == 0 {
		return 0, unix.EINVAL
	}
	file := t.fdt.get(int(srcfd))
	if srcfd < 0 || file == nil {
		return 0, unix.EBADF
	}
	defer file.DecRef()
	a := &seccompAddfd{
		file: file, setfd: flags&seccompAddfdFlagSetfd != 0, newfd: int(int32(newfd)),
		cloexec: newfdFlags&unix.O_CLOEXEC != 0, send: flags&seccompAddfdFlagSend != 0,
		done: make(chan struct{}),
	}
	n := l.f.notify
	n.mu.Lock()
	k := n.findLocked(id)
	if k == nil {
		n.mu.Unlock()
		return 0, unix.ENOENT
	}
	if k.state != notifySent {
		n.mu.Unlock()
		return 0, unix.EINPROGRESS
	}
	if a.send {
		if len(k.addfds) > 0 {
			n.mu.Unlock()
			return 0, unix.EBUSY
		}
		// The reply goes with the descriptor: exactly one.
		k.state = notifyReplied
	}
	k.addfds = append(k.addfds, a)
	k.wake()
	n.mu.Unlock()

	if err := t.Block(a.done); err != nil {
		n.mu.Lock()
		if i := slices.Index(k.addfds, a); i >= 0 {
			// Not taken yet: withdraw it.
			k.addfds = slices.Delete(k.addfds, i, i+1)
			if a.send {
				k.state = notifySent
			}
			n.mu.Unlock()
			return 0, ERESTARTSYS
		}
		n.mu.Unlock()
		<-a.done
	}
	if a.err != nil {
		return 0, a.err
	}
	return uint64(a.ret), nil
}

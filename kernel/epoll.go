package kernel

import (
	"encoding/binary"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epoll(7) (Linux: fs/eventpoll.c), on the readiness interface of File.
//
// An interest (epollItem) does not hold a reference to its file, as on
// Linux: it lasts while the open file description does, whatever its
// descriptors, and goes when the description is closed (epoll(7), Q6).
// Each interest keeps a Waiter registered with its file. A token on it
// means the file notified: the interest is marked pending (what an
// edge-triggered interest reports on) and registered again, since a file
// may notify once per registration. epoll_wait takes the tokens, then asks
// each file for its readiness, so level-triggered reports are exact. To
// block, it runs one goroutine that selects over the interests' waiters
// and wakes it (a Waiter has no callback to run when notified).
//
// TODO(ringbox): a Waiter that runs a callback when notified (Linux:
// ep_poll_callback()) would remove the forwarding goroutine and the scan
// of every interest per epoll_wait.
// TODO(ringbox): EPOLLEXCLUSIVE wakes every waiter, not one.

func init() {
	register(unix.SYS_EPOLL_CREATE, "epoll_create", sysEpollCreate, argInt)
	register(unix.SYS_EPOLL_CREATE1, "epoll_create1", sysEpollCreate1, argHex)
	register(unix.SYS_EPOLL_CTL, "epoll_ctl", sysEpollCtl, argFD, argInt, argFD, argHex)
	register(unix.SYS_EPOLL_WAIT, "epoll_wait", sysEpollWait, argFD, argHex, argInt, argInt)
	register(unix.SYS_EPOLL_PWAIT, "epoll_pwait", sysEpollPwait, argFD, argHex, argInt, argInt, argHex, argInt)
	register(unix.SYS_EPOLL_PWAIT2, "epoll_pwait2", sysEpollPwait2, argFD, argHex, argInt, argHex, argHex, argInt)
}

// epollEventSize is sizeof(struct epoll_event), packed on x86-64.
const epollEventSize = 12

// epollMaxEvents is EP_MAX_EVENTS.
const epollMaxEvents = 0x7fffffff / epollEventSize

// epollMaxNests is EP_MAX_NESTS, the depth of epolls watching epolls.
const epollMaxNests = 4

// Input-only flags of struct epoll_event.events.
const (
	epollFlags           = unix.EPOLLET | unix.EPOLLONESHOT | unix.EPOLLWAKEUP | unix.EPOLLEXCLUSIVE
	epollExclusiveOKBits = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDNORM | unix.EPOLLWRNORM |
		unix.EPOLLRDBAND | unix.EPOLLWRBAND | unix.EPOLLERR | unix.EPOLLHUP |
		unix.EPOLLWAKEUP | unix.EPOLLET | unix.EPOLLEXCLUSIVE
)

// anonInodeDev is st_dev of anonymous-inode files (not ABI).
const anonInodeDev = 0x10

// epollNestMu serializes the additions of an epoll to an epoll, so that
// the loop check sees a stable graph (Linux: epnested_mutex).
var epollNestMu sync.Mutex

// epollKey identifies an interest: a file and the descriptor it was added
// with (Linux: struct epoll_filefd).
type epollKey struct {
	f  File
	fd int
}

// epollItem is one interest (Linux: struct epitem).
type epollItem struct {
	key epollKey
	// w is registered with the file from EPOLL_CTL_ADD to EPOLL_CTL_DEL.
	w *Waiter
	// events and data are what epoll_ctl gave, EPOLLERR|EPOLLHUP added.
	// Protected by the epoll's mu.
	events uint32
	data   uint64
	// disabled is set once an EPOLLONESHOT interest has reported, until
	// EPOLL_CTL_MOD. Protected by the epoll's mu.
	disabled bool

	// pending: the file notified since the last report.
	pending atomic.Bool
	// fired: a token of w was taken, so the registration may be spent.
	fired atomic.Bool
}

// mask is the events the interest polls for.
func (it *epollItem) mask() uint32 { return it.events &^ epollFlags }

// fire records a notification of the file.
func (it *epollItem) fire() {
	it.pending.Store(true)
	it.fired.Store(true)
}

// epollFile is an epoll instance (Linux: struct eventpoll).
type epollFile struct {
	fileRefs
	fileFlags

	// wq wakes epoll_wait callers when the interests change, and
	// pollers of the epoll itself (with nested's help).
	wq WaitQueue

	mu sync.Mutex
	// items are the interests in insertion order, byKey indexes them.
	// Protected by mu.
	items []*epollItem
	byKey map[epollKey]*epollItem
	// next rotates the scan's start so that many ready interests are
	// reported in turn (Linux requeues reported ones at the tail).
	// Protected by mu.
	next int
	// nested are the forwarders of EventRegister. Protected by mu.
	nested map[*Waiter]func()
}

func newEpollFile() *epollFile {
	e := &epollFile{byKey: make(map[epollKey]*epollItem), nested: make(map[*Waiter]func())}
	e.initRefs()
	e.flags.Store(unix.O_RDWR)
	return e
}

// DecRef implements File.DecRef: the last reference drops every interest.
func (e *epollFile) DecRef() {
	if !e.decRef() {
		return
	}
	e.mu.Lock()
	items := e.items
	e.items, e.byKey = nil, nil
	e.mu.Unlock()
	for _, it := range items {
		it.key.f.EventUnregister(it.w)
	}
}

// arm registers the interest's waiter with its file and notes whether the
// file is ready already (Linux: ep_insert() and ep_modify() poll the file
// once).
func (it *epollItem) arm() {
	f := it.key.f
	f.EventRegister(it.w, it.mask())
	if f.Readiness(it.mask())&it.mask() != 0 {
		it.pending.Store(true)
	}
}

// forward starts a goroutine that waits until one of the interests' files
// notifies, marks that interest and calls wake; the returned stop ends it
// and waits for it. Forwarders of several waiters compete for a token, so
// wake must wake them all (e.wq.Notify).
func (e *epollFile) forward(wake func()) (stop func()) {
	quit := make(chan struct{})
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(quit)}}
	e.mu.Lock()
	items := append([]*epollItem(nil), e.items...)
	e.mu.Unlock()
	for _, it := range items {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(it.w.C)})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if i, _, _ := reflect.Select(cases); i > 0 {
			items[i-1].fire()
			wake()
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// released reports whether f's last reference is gone.
func released(f File) bool {
	r, ok := f.(releaser)
	return ok && r.released()
}

// canPoll reports whether f can be watched (Linux: file_can_poll(), false
// for files without a poll method: regular files, /dev/null).
func canPoll(f File) bool {
	p, ok := f.(pollabler)
	return !ok || p.pollable()
}

// ctl implements epoll_ctl(2) once the files are known.
func (e *epollFile) ctl(op int, fd int, f File, events uint32, data uint64) error {
	key := epollKey{f, fd}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byKey == nil {
		return unix.EBADF
	}
	it := e.byKey[key]
	switch op {
	case unix.EPOLL_CTL_ADD:
		if it != nil {
			return unix.EEXIST
		}
		it = &epollItem{key: key, w: NewWaiter(), events: events | unix.EPOLLERR | unix.EPOLLHUP, data: data}
		e.items = append(e.items, it)
		e.byKey[key] = it
		it.arm()
	case unix.EPOLL_CTL_DEL:
		if it == nil {
			return unix.ENOENT
		}
		e.removeLocked(it)
	case unix.EPOLL_CTL_MOD:
		if it == nil {
			return unix.ENOENT
		}
		if it.events&unix.EPOLLEXCLUSIVE != 0 {
			// Linux leaves an exclusive interest as it is.
			return nil
		}
		it.events, it.data, it.disabled = events|unix.EPOLLERR|unix.EPOLLHUP, data, false
		it.pending.Store(false)
		it.arm()
	default:
		return unix.EINVAL
	}
	// Blocked waiters watch a set of interests that just changed.
	e.wq.Notify()
	return nil
}

// removeLocked drops an interest.
//
// Preconditions: e.mu is held.
func (e *epollFile) removeLocked(it *epollItem) {
	it.key.f.EventUnregister(it.w)
	delete(e.byKey, it.key)
	for i, x := range e.items {
		if x == it {
			e.items = append(e.items[:i], e.items[i+1:]...)
			if e.next > i {
				e.next--
			}
			break
		}
	}
}

// epollEvent is a reported event.
type epollEvent struct {
	events uint32
	data   uint64
}

// collect returns up to max ready events, applying the edge-triggered and
// one-shot rules (Linux: ep_send_events()); with peek, it only looks.
func (e *epollFile) collect(max int, peek bool) []epollEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Interests of closed files go (Linux: eventpoll_release()).
	for i := 0; i < len(e.items); {
		if it := e.items[i]; released(it.key.f) {
			e.removeLocked(it)
			continue
		}
		i++
	}
	var out []epollEvent
	n := len(e.items)
	for k := 0; k < n && len(out) < max; k++ {
		i := (e.next + k) % n
		it := e.items[i]
		select {
		case <-it.w.C:
			it.fire()
		default:
		}
		if it.fired.Swap(false) {
			it.key.f.EventRegister(it.w, it.mask())
		}
		if it.disabled {
			continue
		}
		mask := it.mask()
		et := it.events&unix.EPOLLET != 0
		if et && !it.pending.Load() {
			continue
		}
		ev := it.key.f.Readiness(mask) & mask
		if peek {
			if ev != 0 {
				out = append(out, epollEvent{ev, it.data})
			}
			continue
		}
		if et {
			it.pending.Store(false)
		}
		if ev == 0 {
			continue
		}
		out = append(out, epollEvent{ev, it.data})
		if it.events&unix.EPOLLONESHOT != 0 {
			it.disabled = true
		}
		e.next = i + 1
	}
	return out
}

// wait implements epoll_wait's wait: until an event, the deadline
// (timed), or a signal (EINTR: epoll_wait is never restarted, signal(7)).
func (e *epollFile) wait(t *Task, max int, timed bool, deadline time.Time) ([]epollEvent, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	timedOut := timed && !time.Now().Before(deadline)
	for {
		if evs := e.collect(max, false); len(evs) > 0 || timedOut {
			return evs, nil
		}
		w := NewWaiter()
		e.wq.Add(w)
		stop := e.forward(e.wq.Notify)
		if evs := e.collect(max, false); len(evs) > 0 {
			stop()
			e.wq.Remove(w)
			return evs, nil
		}
		var tc <-chan time.Time
		if timed {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			}
			tc = timer.C
		}
		err := t.BlockUntil(w.C, tc)
		stop()
		e.wq.Remove(w)
		switch err {
		case ErrInterrupted:
			return nil, unix.EINTR
		case ErrTimedOut:
			timedOut = true
		}
	}
}

// Read implements File.Read: an epoll cannot be read.
func (e *epollFile) Read(t *Task, dst []byte) (int, error) { return 0, unix.EINVAL }

// Write implements File.Write.
func (e *epollFile) Write(t *Task, src []byte) (int, error) { return 0, unix.EINVAL }

// PRead implements File.PRead.
func (e *epollFile) PRead(t *Task, dst []byte, off int64) (int, error) { return 0, unix.ESPIPE }

// PWrite implements File.PWrite.
func (e *epollFile) PWrite(t *Task, src []byte, off int64) (int, error) { return 0, unix.ESPIPE }

// Seek implements File.Seek (Linux: noop_llseek returns the position, 0).
func (e *epollFile) Seek(t *Task, off int64, whence int) (int64, error) { return 0, nil }

// Seekable implements File.Seekable.
func (e *epollFile) Seekable() bool { return false }

// Ioctl implements File.Ioctl.
func (e *epollFile) Ioctl(t *Task, req, arg uint64) (uint64, error) { return 0, unix.ENOTTY }

// Stat implements File.Stat: an anonymous inode, mode 0600 without a
// file type (Linux: fs/anon_inodes.c).
func (e *epollFile) Stat(t *Task) (unix.Stat_t, error) {
	return unix.Stat_t{Dev: anonInodeDev, Nlink: 1, Mode: 0o600, Blksize: pageSize}, nil
}

// Readiness implements File.Readiness: readable when an event is ready
// (Linux: ep_eventpoll_poll()).
func (e *epollFile) Readiness(mask uint32) uint32 {
	if len(e.collect(1, true)) > 0 {
		return (unix.POLLIN | pollRdNorm) & mask
	}
	return 0
}

// EventRegister implements File.EventRegister: w is notified once, when
// an interest's file notifies or the interests change.
func (e *epollFile) EventRegister(w *Waiter, mask uint32) {
	e.EventUnregister(w)
	e.wq.Add(w)
	stop := e.forward(e.wq.Notify)
	e.mu.Lock()
	e.nested[w] = stop
	e.mu.Unlock()
}

// EventUnregister implements File.EventUnregister.
func (e *epollFile) EventUnregister(w *Waiter) {
	e.wq.Remove(w)
	e.mu.Lock()
	stop := e.nested[w]
	delete(e.nested, w)
	e.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// reaches reports whether e, or an epoll it watches, down to depth
// levels, watches target; running out of depth counts as reaching it
// (Linux: ep_loop_check(), ELOOP either way).
//
// Preconditions: epollNestMu is held.
func (e *epollFile) reaches(target *epollFile, depth int) bool {
	if depth > epollMaxNests {
		return true
	}
	e.mu.Lock()
	var subs []*epollFile
	for _, it := range e.items {
		if sub, ok := it.key.f.(*epollFile); ok {
			subs = append(subs, sub)
		}
	}
	e.mu.Unlock()
	for _, sub := range subs {
		if sub == target || sub.reaches(target, depth+1) {
			return true
		}
	}
	return false
}

// sysEpollCreate implements epoll_create(2): the size must be positive and
// is otherwise ignored.
func sysEpollCreate(t *Task, a *syscallArgs) (uint64, error) {
	if a.int(0) <= 0 {
		return 0, unix.EINVAL
	}
	return epollCreate(t, 0)
}

// sysEpollCreate1 implements epoll_create1(2).
func sysEpollCreate1(t *Task, a *syscallArgs) (uint64, error) {
	flags := a.int(0)
	if flags&^unix.EPOLL_CLOEXEC != 0 {
		return 0, unix.EINVAL
	}
	return epollCreate(t, flags)
}

func epollCreate(t *Task, flags int) (uint64, error) {
	e := newEpollFile()
	fd, err := t.fdt.newFD(e, 0, flags&unix.EPOLL_CLOEXEC != 0, t.fileLimit())
	if err != nil {
		e.DecRef()
		return 0, err
	}
	return uint64(fd), nil
}

// sysEpollCtl implements epoll_ctl(2), with Linux's order of checks
// (fs/eventpoll.c:do_epoll_ctl()).
func sysEpollCtl(t *Task, a *syscallArgs) (uint64, error) {
	epfd, op, fd := a.int(0), a.int(1), a.int(2)
	var events uint32
	var data uint64
	if op != unix.EPOLL_CTL_DEL {
		var b [epollEventSize]byte
		if err := t.CopyIn(a.u(3), b[:]); err != nil {
			return 0, err
		}
		events = binary.LittleEndian.Uint32(b[0:])
		data = binary.LittleEndian.Uint64(b[4:])
	}
	ef := t.getFile(epfd)
	if ef == nil {
		return 0, unix.EBADF
	}
	defer ef.DecRef()
	tf := t.getFile(fd)
	if tf == nil {
		return 0, unix.EBADF
	}
	defer tf.DecRef()
	if !canPoll(tf) {
		return 0, unix.EPERM
	}
	// EPOLLWAKEUP needs CAP_BLOCK_SUSPEND, without which it is dropped
	// silently (ep_take_care_of_epollwakeup()).
	// TODO(ringbox): no capabilities yet; it is always dropped.
	events &^= unix.EPOLLWAKEUP
	e, ok := ef.(*epollFile)
	if !ok || ef == tf {
		return 0, unix.EINVAL
	}
	target, targetIsEpoll := tf.(*epollFile)
	if op != unix.EPOLL_CTL_DEL && events&unix.EPOLLEXCLUSIVE != 0 {
		if op == unix.EPOLL_CTL_MOD {
			return 0, unix.EINVAL
		}
		if op == unix.EPOLL_CTL_ADD && (targetIsEpoll || events&^epollExclusiveOKBits != 0) {
			return 0, unix.EINVAL
		}
	}
	if op == unix.EPOLL_CTL_ADD && targetIsEpoll {
		epollNestMu.Lock()
		defer epollNestMu.Unlock()
		if target.reaches(e, 1) {
			return 0, unix.ELOOP
		}
	}
	return 0, e.ctl(op, fd, tf, events, data)
}

// sysEpollWait implements epoll_wait(2).
func sysEpollWait(t *Task, a *syscallArgs) (uint64, error) {
	ms := a.int(3)
	var deadline time.Time
	if ms >= 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	return epollWait(t, a.int(0), a.u(1), a.int(2), ms >= 0, deadline)
}

// sysEpollPwait implements epoll_pwait(2): epoll_wait with a signal mask
// in force during the wait (as ppoll's, see setWaitSigMask).
func sysEpollPwait(t *Task, a *syscallArgs) (uint64, error) {
	ms := a.int(3)
	var deadline time.Time
	if ms >= 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	return epollPwait(t, a, ms >= 0, deadline)
}

// sysEpollPwait2 implements epoll_pwait2(2): a timespec timeout.
func sysEpollPwait2(t *Task, a *syscallArgs) (uint64, error) {
	var deadline time.Time
	timed := a.u(3) != 0
	if timed {
		ts, err := t.copyInTimespec(a.u(3))
		if err != nil {
			return 0, err
		}
		if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
			return 0, unix.EINVAL
		}
		deadline = timespecDeadline(ts)
	}
	return epollPwait(t, a, timed, deadline)
}

func epollPwait(t *Task, a *syscallArgs, timed bool, deadline time.Time) (uint64, error) {
	if a.u(4) != 0 {
		mask, err := t.copyInSigset(a.u(4), a.u(5))
		if err != nil {
			return 0, err
		}
		t.setWaitSigMask(mask)
	}
	n, err := epollWait(t, a.int(0), a.u(1), a.int(2), timed, deadline)
	if a.u(4) != 0 {
		t.endWaitSigMask(err == unix.EINTR)
	}
	return n, err
}

// epollWait implements the common part of the epoll_wait family (Linux:
// do_epoll_wait()).
func epollWait(t *Task, epfd int, addr uint64, max int, timed bool, deadline time.Time) (uint64, error) {
	if max <= 0 || max > epollMaxEvents {
		return 0, unix.EINVAL
	}
	if !userRangeOK(addr, uint64(max)*epollEventSize) {
		return 0, unix.EFAULT
	}
	f := t.getFile(epfd)
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef()
	e, ok := f.(*epollFile)
	if !ok {
		return 0, unix.EINVAL
	}
	evs, err := e.wait(t, max, timed, deadline)
	if err != nil {
		return 0, err
	}
	b := make([]byte, len(evs)*epollEventSize)
	for i, ev := range evs {
		binary.LittleEndian.PutUint32(b[i*epollEventSize:], ev.events)
		binary.LittleEndian.PutUint64(b[i*epollEventSize+4:], ev.data)
	}
	if len(b) > 0 {
		if err := t.CopyOut(addr, b); err != nil {
			// TODO(ringbox): Linux puts the events back on the ready
			// list when the copy fails; here an edge-triggered or
			// one-shot report is lost.
			return 0, err
		}
	}
	return uint64(len(evs)), nil
}

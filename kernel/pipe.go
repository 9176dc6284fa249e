package kernel

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// Pipe geometry (Linux: include/linux/pipe_fs_i.h, fs/pipe.c).
const (
	// pipeBuf is PIPE_BUF: writes of at most this many bytes are atomic
	// (pipe(7)).
	pipeBuf = 4096
	// pipePage is the size of one slot of the ring.
	pipePage = pageSize
	// pipeDefSlots is PIPE_DEF_BUFFERS: 16 slots, 64 KiB.
	pipeDefSlots = 16
	// pipeMaxSize is /proc/sys/fs/pipe-max-size's default, the largest
	// F_SETPIPE_SZ an unprivileged process gets.
	pipeMaxSize = 1 << 20
)

// pipeDev is st_dev of every pipe (Linux: pipefs's anonymous device; the
// number is not ABI).
const pipeDev = 0xf

// pipePages recycles the slots' pages.
var pipePages = sync.Pool{New: func() any { return new([pipePage]byte) }}

// pipeInodes numbers the pipes for st_ino.
var pipeInodes atomic.Uint64

// pipeSlot is one page of the ring (Linux: struct pipe_buffer).
type pipeSlot struct {
	data *[pipePage]byte
	off  int // first unread byte
	len  int // unread bytes
	// packet: written by an O_DIRECT writer; never merged, read whole
	// (Linux: PIPE_BUF_FLAG_PACKET; the other case is
	// PIPE_BUF_FLAG_CAN_MERGE).
	packet bool
}

// pipe is the object both ends of a pipe share (Linux: struct
// pipe_inode_info). It models Linux's ring of page-sized slots, so that
// capacity, merging of small writes and POLLOUT behave as on Linux: a
// pipe holds 16 slots however little each one holds.
type pipe struct {
	ino   uint64
	ctime unix.Timespec
	uid   uint32
	gid   uint32

	// rq wakes readers (data, last writer gone); wq wakes writers
	// (space, last reader gone) (Linux: rd_wait, wr_wait).
	rq, wq WaitQueue

	mu sync.Mutex
	// ring holds len(ring) slots; head counts slots ever filled and tail
	// slots ever emptied, so occupancy is head-tail (Linux: pipe->head,
	// pipe->tail, pipe->ring_size == pipe->max_usage). Protected by mu.
	ring       []pipeSlot
	head, tail uint
	// readers and writers count the open ends. Protected by mu.
	readers, writers int
}

// newPipe returns a pipe with both ends counted as open.
func newPipe(t *Task) *pipe {
	now := time.Now()
	return &pipe{
		ino:     pipeInodes.Add(1),
		ctime:   unix.NsecToTimespec(now.UnixNano()),
		uid:     t.creds.EffectiveUID,
		gid:     t.creds.EffectiveGID,
		ring:    make([]pipeSlot, pipeDefSlots),
		readers: 1,
		writers: 1,
	}
}

// Preconditions for the methods ending in Locked: p.mu is held.

func (p *pipe) emptyLocked() bool { return p.head == p.tail }
func (p *pipe) fullLocked() bool  { return p.head-p.tail >= uint(len(p.ring)) }
func (p *pipe) slotLocked(i uint) *pipeSlot {
	return &p.ring[i%uint(len(p.ring))]
}

// readLocked moves up to len(dst) bytes out of the ring (Linux:
// fs/pipe.c:pipe_read()'s copy loop). A packet ends the read: the rest of
// a packet longer than dst is discarded.
func (p *pipe) readLocked(dst []byte) int {
	n := 0
	for n < len(dst) && !p.emptyLocked() {
		s := p.slotLocked(p.tail)
		c := copy(dst[n:], s.data[s.off:s.off+s.len])
		n += c
		s.off += c
		s.len -= c
		packet := s.packet
		if packet {
			s.len = 0
		}
		if s.len == 0 {
			pipePages.Put(s.data)
			*s = pipeSlot{}
			p.tail++
		}
		if packet {
			break
		}
	}
	return n
}

// mergeLocked appends src to the last slot if it takes it whole (Linux:
// pipe_write()'s merge into the last buffer, which keeps small writes
// atomic and packs them).
func (p *pipe) mergeLocked(src []byte) bool {
	if p.emptyLocked() {
		return false
	}
	s := p.slotLocked(p.head - 1)
	if s.packet || s.off+s.len+len(src) > pipePage {
		return false
	}
	copy(s.data[s.off+s.len:], src)
	s.len += len(src)
	return true
}

// fillLocked puts up to one page of src in a new slot and returns its
// length; the ring must not be full.
func (p *pipe) fillLocked(src []byte, packet bool) int {
	n := min(len(src), pipePage)
	s := p.slotLocked(p.head)
	*s = pipeSlot{data: pipePages.Get().(*[pipePage]byte), len: n, packet: packet}
	copy(s.data[:], src[:n])
	p.head++
	return n
}

// size is F_GETPIPE_SZ.
func (p *pipe) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ring) * pipePage
}

// setSize is F_SETPIPE_SZ (Linux: fs/pipe.c:pipe_set_size() and
// round_pipe_size()): the size rounds up to a power-of-two number of
// pages; above pipe-max-size it is EPERM, below the data held EBUSY.
//
// TODO(ringbox): Linux lets CAP_SYS_RESOURCE exceed pipe-max-size and
// charges pipes to per-user limits (pipe-user-pages-soft/hard); ringbox
// has neither.
func (p *pipe) setSize(arg uint32) (int, error) {
	if arg > 1<<31 {
		return 0, unix.EINVAL
	}
	pages := max((uint64(arg)+pipePage-1)/pipePage, 1)
	slots := uint64(1) << bits.Len64(pages-1)
	if slots*pipePage > pipeMaxSize {
		return 0, unix.EPERM
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.head - p.tail
	if uint64(n) > slots {
		return 0, unix.EBUSY
	}
	ring := make([]pipeSlot, slots)
	for i := uint(0); i < n; i++ {
		ring[i] = *p.slotLocked(p.tail + i)
	}
	p.ring, p.tail, p.head = ring, 0, n
	p.wq.Notify()
	return int(slots * pipePage), nil
}

// pipeFile is one end of a pipe: an open file description with its own
// flags (O_RDONLY or O_WRONLY, O_NONBLOCK, O_DIRECT). One opened O_RDWR
// through /proc/self/fd is both a reader and a writer.
type pipeFile struct {
	fileRefs
	fileFlags
	p *pipe
	// rd and wr say whether the description counts among the readers
	// and the writers (Linux: FMODE_READ, FMODE_WRITE).
	rd, wr bool
}

// newPipeFiles returns the read and write ends of a new pipe (Linux:
// fs/pipe.c:create_pipe_files()); flags may hold O_NONBLOCK and, for the
// write end, O_DIRECT.
func newPipeFiles(t *Task, flags int) (r, w *pipeFile) {
	p := newPipe(t)
	r = &pipeFile{p: p, rd: true}
	w = &pipeFile{p: p, wr: true}
	r.initRefs()
	w.initRefs()
	r.flags.Store(int32(unix.O_RDONLY | flags&unix.O_NONBLOCK))
	w.flags.Store(int32(unix.O_WRONLY | flags&(unix.O_NONBLOCK|unix.O_DIRECT)))
	return r, w
}

// DecRef implements File.DecRef: closing the last reference of an end
// wakes the other side, which sees EOF or EPIPE (Linux:
// fs/pipe.c:pipe_release()).
func (f *pipeFile) DecRef() {
	if !f.decRef() {
		return
	}
	p := f.p
	p.mu.Lock()
	if f.wr {
		p.writers--
	}
	if f.rd {
		p.readers--
	}
	p.mu.Unlock()
	p.rq.Notify()
	p.wq.Notify()
}

// SetFlags implements File.SetFlags: pipes take O_DIRECT (packet mode,
// pipe(7)).
func (f *pipeFile) SetFlags(flags int) error {
	f.setFlags(flags)
	return nil
}

// Read implements File.Read (Linux: fs/pipe.c:pipe_read()): it returns
// what is there, up to len(dst); with nothing there, 0 (EOF) once every
// writer is gone, EAGAIN when nonblocking, else it waits.
func (f *pipeFile) Read(t *Task, dst []byte) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	p := f.p
	var w *Waiter
	for {
		p.mu.Lock()
		if !p.emptyLocked() {
			n := p.readLocked(dst)
			p.mu.Unlock()
			p.wq.Notify()
			if w != nil {
				p.rq.Remove(w)
			}
			return n, nil
		}
		writers := p.writers
		p.mu.Unlock()
		if writers == 0 {
			break
		}
		if f.nonblocking() {
			if w != nil {
				p.rq.Remove(w)
			}
			return 0, unix.EAGAIN
		}
		if w == nil {
			// Register, then look again: a write between the check
			// and the registration must not be missed.
			w = NewWaiter()
			p.rq.Add(w)
			continue
		}
		if err := t.Block(w.C); err != nil {
			p.rq.Remove(w)
			return 0, ERESTARTSYS
		}
	}
	if w != nil {
		p.rq.Remove(w)
	}
	return 0, nil
}

// Write implements File.Write (Linux: fs/pipe.c:pipe_write()). Up to
// PIPE_BUF bytes go in whole or not at all; larger writes may be split
// among readers' reads and return short only when nonblocking or
// interrupted. With every reader gone it is EPIPE and SIGPIPE.
func (f *pipeFile) Write(t *Task, src []byte) (int, error) {
	if len(src) == 0 {
		return 0, nil
	}
	p := f.p
	packet := f.Flags()&unix.O_DIRECT != 0
	done := 0
	var w *Waiter
	defer func() {
		if w != nil {
			p.wq.Remove(w)
		}
	}()
	p.mu.Lock()
	if p.readers == 0 {
		p.mu.Unlock()
		t.sendSelfSignal(unix.SIGPIPE)
		return 0, unix.EPIPE
	}
	// The part of the write beyond whole pages goes into the last slot
	// when it fits, so that the rest fills whole slots.
	if c := len(src) % pipePage; c != 0 && !packet && p.mergeLocked(src[:c]) {
		done = c
	}
	for done < len(src) {
		if p.readers == 0 {
			p.mu.Unlock()
			t.sendSelfSignal(unix.SIGPIPE)
			if done > 0 {
				p.rq.Notify()
				return done, nil
			}
			return 0, unix.EPIPE
		}
		if !p.fullLocked() {
			done += p.fillLocked(src[done:], packet)
			continue
		}
		p.mu.Unlock()
		if done > 0 {
			p.rq.Notify()
		}
		if f.nonblocking() {
			if done > 0 {
				return done, nil
			}
			return 0, unix.EAGAIN
		}
		if w == nil {
			w = NewWaiter()
			p.wq.Add(w)
		} else if err := t.Block(w.C); err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, ERESTARTSYS
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	p.rq.Notify()
	return done, nil
}

// sendSelfSignal sends sig to the calling thread as Linux's
// send_sig(sig, current, 0) does: an SI_USER signal from the task itself,
// the SIGPIPE that goes with EPIPE or the SIGXFSZ with EFBIG.
func (t *Task) sendSelfSignal(sig unix.Signal) {
	info := &arch.SignalInfo{Signo: int32(sig), Code: arch.SI_USER}
	info.SetPid(t.tg.tgid)
	info.SetUid(t.creds.RealUID)
	if err := t.SendSignal(info); err != nil {
		t.log.Warn("cannot send a signal to the task itself", zapSignal(sig))
	}
}

// PRead implements File.PRead; pipes have no position.
func (f *pipeFile) PRead(t *Task, dst []byte, off int64) (int, error) { return 0, unix.ESPIPE }

// PWrite implements File.PWrite.
func (f *pipeFile) PWrite(t *Task, src []byte, off int64) (int, error) { return 0, unix.ESPIPE }

// Seek implements File.Seek (Linux: no_llseek).
func (f *pipeFile) Seek(t *Task, off int64, whence int) (int64, error) { return 0, unix.ESPIPE }

// Seekable implements File.Seekable.
func (f *pipeFile) Seekable() bool { return false }

// Ioctl implements File.Ioctl: FIONREAD (TIOCINQ) reports the bytes held (Linux:
// fs/pipe.c:pipe_ioctl()).
func (f *pipeFile) Ioctl(t *Task, req, arg uint64) (uint64, error) {
	if req != unix.TIOCINQ { // FIONREAD
		return 0, unix.ENOTTY
	}
	p := f.p
	p.mu.Lock()
	n := 0
	for i := p.tail; i != p.head; i++ {
		n += p.slotLocked(i).len
	}
	p.mu.Unlock()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(n))
	return 0, t.CopyOut(arg, b[:])
}

// Stat implements File.Stat: a FIFO owned by its creator, mode 0600,
// with a page as its block size (Linux: fs/pipe.c:get_pipe_inode()).
func (f *pipeFile) Stat(t *Task) (unix.Stat_t, error) {
	p := f.p
	return unix.Stat_t{
		Dev:     pipeDev,
		Ino:     p.ino,
		Nlink:   1,
		Mode:    unix.S_IFIFO | 0o600,
		Uid:     p.uid,
		Gid:     p.gid,
		Blksize: pipePage,
		Atim:    p.ctime,
		Mtim:    p.ctime,
		Ctim:    p.ctime,
	}, nil
}

// Readiness implements File.Readiness (Linux: fs/pipe.c:pipe_poll()): the
// read end is readable with data and hung up without writers; the write
// end is writable with a free slot and in error without readers.
func (f *pipeFile) Readiness(mask uint32) uint32 {
	p := f.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var ev uint32
	if f.wr {
		if !p.fullLocked() {
			ev |= unix.POLLOUT | pollWrNorm
		}
		if p.readers == 0 {
			ev |= unix.POLLERR
		}
	}
	if f.rd {
		if !p.emptyLocked() {
			ev |= unix.POLLIN | pollRdNorm
		}
		if p.writers == 0 {
			ev |= unix.POLLHUP
		}
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements File.EventRegister.
func (f *pipeFile) EventRegister(w *Waiter, mask uint32) {
	if f.wr {
		f.p.wq.Add(w)
	}
	if f.rd {
		f.p.rq.Add(w)
	}
}

// EventUnregister implements File.EventUnregister.
func (f *pipeFile) EventUnregister(w *Waiter) {
	if f.wr {
		f.p.wq.Remove(w)
	}
	if f.rd {
		f.p.rq.Remove(w)
	}
}

package kernel

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"
)

// select(2) and pselect6(2) (Linux: fs/select.c), on poll's machinery.

func init() {
	register(unix.SYS_SELECT, "select", sysSelect, argInt, argHex, argHex, argHex, argHex)
	register(unix.SYS_PSELECT6, "pselect6", sysPselect6, argInt, argHex, argHex, argHex, argHex, argHex)
}

// The poll events that make a descriptor readable, writable or
// exceptional for select (Linux: POLLIN_SET, POLLOUT_SET, POLLEX_SET).
const (
	selectInSet  = unix.POLLIN | pollRdNorm | pollRdBand | unix.POLLHUP | unix.POLLERR
	selectOutSet = unix.POLLOUT | pollWrNorm | pollWrBand | unix.POLLERR
	selectExSet  = unix.POLLPRI
)

// fdSetBytes is the size of an fd_set of n bits as Linux copies it: whole
// longs (FDS_BYTES()).
func fdSetBytes(n int) int { return (n + 63) / 64 * 8 }

// selectTableMin is the smallest descriptor table Linux has
// (NR_OPEN_DEFAULT); select ignores bits beyond the table.
const selectTableMin = 64

// sysSelect implements select(2): a timeval timeout (NULL waits forever)
// that is updated with the time left; interrupted, it restarts when no
// handler runs (ERESTARTNOHAND).
func sysSelect(t *Task, a *syscallArgs) (uint64, error) {
	tvAddr := a.u(4)
	timed := tvAddr != 0
	var deadline time.Time
	zero := false
	if timed {
		var b [16]byte
		if err := t.CopyIn(tvAddr, b[:]); err != nil {
			return 0, err
		}
		sec, usec := int64(binary.LittleEndian.Uint64(b[0:])), int64(binary.LittleEndian.Uint64(b[8:]))
		// Linux folds whole seconds of tv_usec into tv_sec before
		// validating (kern_select()).
		ts := unix.Timespec{Sec: sec + usec/1e6, Nsec: usec % 1e6 * 1000}
		if ts.Sec < 0 || ts.Nsec < 0 {
			return 0, unix.EINVAL
		}
		deadline = timespecDeadline(ts)
		zero = ts.Sec == 0 && ts.Nsec == 0
	}
	n, err := doSelect(t, a.int(0), a.u(1), a.u(2), a.u(3), timed, deadline)
	if timed && !zero {
		left := max(time.Until(deadline), 0)
		var b [16]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(left/time.Second))
		binary.LittleEndian.PutUint64(b[8:], uint64(left%time.Second/time.Microsecond))
		if cerr := t.CopyOut(tvAddr, b[:]); cerr != nil && err == ERESTARTNOHAND {
			return 0, unix.EINTR
		}
	}
	return n, err
}

// sysPselect6 implements pselect6(2): a timespec timeout and a signal mask
// passed as {const sigset_t *ss; size_t ss_len} (Linux: the
// sigset_argpack).
func sysPselect6(t *Task, a *syscallArgs) (uint64, error) {
	var maskAddr, maskSize uint64
	if a.u(5) != 0 {
		var b [16]byte
		if err := t.CopyIn(a.u(5), b[:]); err != nil {
			return 0, err
		}
		maskAddr, maskSize = binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:])
	}
	n, in, out, ex := a.int(0), a.u(1), a.u(2), a.u(3)
	return waitTimespecMasked(t, a.u(4), maskAddr, maskSize, func(timed bool, deadline time.Time) (uint64, error) {
		return doSelect(t, n, in, out, ex, timed, deadline)
	})
}

// doSelect implements the common part of select and pselect6 (Linux:
// core_sys_select() and do_select()): EINVAL for a negative n, EBADF for
// a set bit of a closed descriptor; the sets are rewritten with the ready
// descriptors, whose bits it counts.
//
// TODO(ringbox): Linux ignores bits at or beyond its table's capacity
// (max_fds, a multiple of 64 that grows by powers of two); ringbox's
// capacity grows differently, so which high bits are ignored may differ.
func doSelect(t *Task, n int, inAddr, outAddr, exAddr uint64, timed bool, deadline time.Time) (uint64, error) {
	if n < 0 {
		return 0, unix.EINVAL
	}
	n = min(n, max(t.fdt.capacity(), selectTableMin))
	size := fdSetBytes(n)
	addrs := [3]uint64{inAddr, outAddr, exAddr}
	var sets [3][]byte
	for i, addr := range addrs {
		if addr == 0 {
			continue
		}
		sets[i] = make([]byte, size)
		if err := t.CopyIn(addr, sets[i]); err != nil {
			return 0, err
		}
	}
	isSet := func(set []byte, fd int) bool { return set != nil && set[fd/8]&(1<<(fd%8)) != 0 }
	// The poll events of each set, and which sets ask for each fd.
	setEvents := [3]uint16{selectInSet, selectOutSet, selectExSet}
	var pfds []pollFD
	var asked []uint8
	for fd := 0; fd < n; fd++ {
		var events uint16
		var in uint8
		for i := range sets {
			if isSet(sets[i], fd) {
				events |= setEvents[i]
				in |= 1 << i
			}
		}
		if in == 0 {
			continue
		}
		f := t.fdt.get(fd)
		if f == nil {
			return 0, unix.EBADF
		}
		f.DecRef()
		pfds = append(pfds, pollFD{fd: int32(fd), events: events, sel: true})
		asked = append(asked, in)
	}
	if _, err := pollWait(t, pfds, timed, deadline); err != nil {
		return 0, err
	}
	for i := range sets {
		clear(sets[i])
	}
	count := 0
	for k, p := range pfds {
		fd := int(p.fd)
		for i := range sets {
			if asked[k]&(1<<i) != 0 && p.revents&setEvents[i] != 0 {
				sets[i][fd/8] |= 1 << (fd % 8)
				count++
			}
		}
	}
	for i, addr := range addrs {
		if addr == 0 {
			continue
		}
		if err := t.CopyOut(addr, sets[i]); err != nil {
			return 0, err
		}
	}
	return uint64(count), nil
}

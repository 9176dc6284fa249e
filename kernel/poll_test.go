package kernel

import (
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// putPollFDs writes a struct pollfd array at addr.
func putPollFDs(task *Task, addr uint64, pfds []pollFD) {
	b := make([]byte, len(pfds)*pollFDSize)
	for i, p := range pfds {
		binary.LittleEndian.PutUint32(b[i*pollFDSize:], uint32(p.fd))
		binary.LittleEndian.PutUint16(b[i*pollFDSize+4:], p.events)
		binary.LittleEndian.PutUint16(b[i*pollFDSize+6:], 0xdead) // overwritten
	}
	task.CopyOut(addr, b)
}

// runDumping runs calls, then writes n bytes at bufAddr to stdout and
// returns the results and those bytes: how a test reads what the program
// was given back in memory.
func runDumping(t *testing.T, setup func(*Task), calls [][]uint64, n int) ([]int64, []byte) {
	t.Helper()
	calls = append(calls, []uint64{unix.SYS_WRITE, 1, bufAddr, uint64(n)})
	var results []int64
	k, task, out := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		if c.step > 0 {
			results = append(results, int64(st.Regs.Rax))
		}
		if c.step < len(calls) {
			return syscallEvent(st, calls[c.step][0], calls[c.step][1:]...)
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	setupFiles(t, task)
	if setup != nil {
		setup(task)
	}
	task.start()
	k.Wait()
	mem := make([]byte, n)
	if _, err := io.ReadFull(out, mem); err != nil {
		t.Fatalf("reading the dump: %v", err)
	}
	return results[:len(results)-1], mem
}

func TestPollReadiness(t *testing.T) {
	pfds := []pollFD{
		{fd: 3, events: unix.POLLIN | unix.POLLOUT}, // read end with data
		{fd: 4, events: unix.POLLIN | unix.POLLOUT}, // write end with room
		{fd: -5, events: unix.POLLIN},               // ignored
		{fd: 99, events: unix.POLLIN},               // closed
		{fd: 5, events: 0xffff},                     // /dev/null
		{fd: 6, events: unix.POLLIN},                // O_PATH: not pollable
		{fd: 4, events: 0},                          // nothing asked, nothing wrong
	}
	want := []uint16{
		unix.POLLIN,
		unix.POLLOUT,
		0,
		unix.POLLNVAL,
		unix.POLLIN | unix.POLLOUT | pollRdNorm | pollWrNorm,
		unix.POLLNVAL,
		0,
	}
	results, mem := runDumping(t, func(task *Task) { putPollFDs(task, bufAddr, pfds) },
		[][]uint64{{unix.SYS_POLL, bufAddr, uint64(len(pfds)), 0}}, len(pfds)*pollFDSize)
	if got, want := results[0], int64(5); got != want {
		t.Errorf("poll = %d, want %d", got, want)
	}
	for i := range pfds {
		if got := binary.LittleEndian.Uint16(mem[i*pollFDSize+6:]); got != want[i] {
			t.Errorf("pollfd %d (fd %d): revents %#x, want %#x", i, pfds[i].fd, got, want[i])
		}
		if got := int32(binary.LittleEndian.Uint32(mem[i*pollFDSize:])); got != pfds[i].fd {
			t.Errorf("pollfd %d: fd changed to %d", i, got)
		}
	}
}

func TestPollHangupAndError(t *testing.T) {
	pfds := []pollFD{{fd: 3, events: unix.POLLIN}, {fd: 7, events: unix.POLLOUT}}
	results, mem := runDumping(t, func(task *Task) {
		putPollFDs(task, bufAddr, pfds)
		// SIG_IGN: the EPIPE write must not kill the program.
		h := task.tg.handlers.Load()
		h.mu.Lock()
		h.actions[unix.SIGPIPE-1].Handler = sigIGN
		h.mu.Unlock()
	}, [][]uint64{
		{unix.SYS_CLOSE, 4},                    // the only writer of 3
		{unix.SYS_PIPE2, bufAddr + 64, 0},      // 4 (read end) and 7
		{unix.SYS_CLOSE, 4},                    // 7 loses its reader
		{unix.SYS_POLL, bufAddr, 2, 0},         // 3: data and hang-up; 7: error
		{unix.SYS_READ, 3, bufAddr + 128, 100}, // drain 3
		{unix.SYS_POLL, bufAddr + 8, 1, 0},     // 7 alone, checked below
		{unix.SYS_WRITE, 7, bufAddr + 128, 1},  // EPIPE
	}, 2*pollFDSize)
	wantResults := []int64{0, 0, 0, 2, testPipeLen, 1, errno(unix.EPIPE)}
	for i := range wantResults {
		if results[i] != wantResults[i] {
			t.Errorf("call %d: got %d, want %d", i, results[i], wantResults[i])
		}
	}
	if got, want := binary.LittleEndian.Uint16(mem[6:]), uint16(unix.POLLIN|unix.POLLHUP); got != want {
		t.Errorf("read end without writers, with data: revents %#x, want %#x", got, want)
	}
	if got, want := binary.LittleEndian.Uint16(mem[pollFDSize+6:]), uint16(unix.POLLOUT|unix.POLLERR); got != want {
		t.Errorf("write end without readers: revents %#x, want %#x", got, want)
	}
}

func TestPollTimeouts(t *testing.T) {
	empty := []pollFD{{fd: 3, events: unix.POLLIN}}
	var ts [16]byte
	binary.LittleEndian.PutUint64(ts[8:], uint64(5*time.Millisecond))
	results, mem := runDumping(t, func(task *Task) {
		putPollFDs(task, bufAddr+64, empty)
		task.CopyOut(bufAddr, ts[:])
	}, [][]uint64{
		{unix.SYS_READ, 3, bufAddr + 128, 100},           // empty the pipe
		{unix.SYS_POLL, bufAddr + 64, 1, 0},              // not ready, no wait
		{unix.SYS_POLL, bufAddr + 64, 1, 5},              // not ready, 5 ms
		{unix.SYS_PPOLL, bufAddr + 64, 1, bufAddr, 0, 8}, // not ready, 5 ms
		{unix.SYS_POLL, 0, 0, 1},                         // a plain 1 ms sleep
		{unix.SYS_WRITE, 4, bufAddr + 128, 1},            // now it is ready
		{unix.SYS_PPOLL, bufAddr + 64, 1, 0, 0, 0},       // NULL timeout: forever, but ready
		{unix.SYS_POLL, bufAddr + 64, 1, minus1},         // negative timeout: forever, but ready
	}, 16)
	want := []int64{testPipeLen, 0, 0, 0, 0, 1, 1, 1}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("call %d: got %d, want %d", i, results[i], want[i])
		}
	}
	sec, nsec := binary.LittleEndian.Uint64(mem[0:]), binary.LittleEndian.Uint64(mem[8:])
	if sec != 0 || nsec != 0 {
		t.Errorf("ppoll left %d.%09d s in its expired timeout, want 0", sec, nsec)
	}
}

func TestPollWokenByWrite(t *testing.T) {
	var rd *pipeFile
	k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		switch c.step {
		case 0:
			return syscallEvent(st, unix.SYS_READ, 3, bufAddr+128, 100)
		case 1:
			return syscallEvent(st, unix.SYS_POLL, bufAddr, 1, minus1)
		case 2:
			if got := int64(st.Regs.Rax); got != 1 {
				t.Errorf("poll woken by a write = %d, want 1", got)
			}
		}
		return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
	})
	setupFiles(t, task)
	putPollFDs(task, bufAddr, []pollFD{{fd: 3, events: unix.POLLIN}})
	f := task.fdt.get(3)
	rd = f.(*pipeFile)
	f.DecRef()
	wf := task.fdt.get(4)
	defer wf.DecRef()
	other, err := k.newTask(2, task)
	if err != nil {
		t.Fatal(err)
	}
	task.start()
	waitQueued(&rd.p.rq)
	wf.Write(other, []byte("x"))
	k.Wait()
}

// withHandler installs a handler for sig so that sending it interrupts
// rather than kills or is ignored.
func withHandler(task *Task, sig unix.Signal) {
	h := task.tg.handlers.Load()
	h.mu.Lock()
	h.actions[sig-1].Handler = 0x1000
	h.mu.Unlock()
}

func TestPollInterruptedRestarts(t *testing.T) {
	task := newIdleTask(t)
	setupFiles(t, task)
	withHandler(task, unix.SIGUSR1)
	task.CopyOut(bufAddr+128, make([]byte, 100))
	if n, _ := sysRead(task, &syscallArgs{a: [6]uint64{3, bufAddr + 128, 100}}); n != testPipeLen {
		t.Fatalf("draining read = %d", n)
	}
	putPollFDs(task, bufAddr, []pollFD{{fd: 3, events: unix.POLLIN}})
	done := make(chan error)
	go func() {
		_, err := sysPoll(task, &syscallArgs{a: [6]uint64{bufAddr, 1, 60000}})
		done <- err
	}()
	f := task.fdt.get(3)
	rd := f.(*pipeFile)
	f.DecRef()
	waitQueued(&rd.p.rq)
	task.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
	if err := <-done; err != ERESTART_RESTARTBLOCK {
		t.Fatalf("interrupted poll: %v, want ERESTART_RESTARTBLOCK", err)
	}
	if task.restart == nil {
		t.Fatalf("no restart function for restart_syscall")
	}
	// The signal is handled; the restarted poll finds the data.
	h := task.sigLock()
	task.pending.discard(SignalSetOf(unix.SIGUSR1))
	h.mu.Unlock()
	w := task.fdt.get(4)
	w.Write(task, []byte("y"))
	w.DecRef()
	if n, err := task.restart(task); n != 1 || err != nil {
		t.Errorf("restarted poll = %d, %v; want 1, nil", n, err)
	}
}

func TestPpollSignalMask(t *testing.T) {
	task := newIdleTask(t)
	setupFiles(t, task)
	withHandler(task, unix.SIGUSR1)
	usr1 := SignalSetOf(unix.SIGUSR1)
	h := task.sigLock()
	task.setSigMaskLocked(usr1)
	h.mu.Unlock()
	task.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})

	var empty, ts [8]byte
	task.CopyOut(sigsetAddr, empty[:])
	task.CopyOut(tsAddr, make([]byte, 16))
	_ = ts
	putPollFDs(task, bufAddr, []pollFD{{fd: 4, events: 0}})

	// Ready at once with a zero timeout: the old mask comes back.
	if n, err := sysPpoll(task, &syscallArgs{a: [6]uint64{bufAddr, 1, tsAddr, sigsetAddr, 8}}); n != 0 || err != nil {
		t.Fatalf("ppoll, zero timeout = %d, %v", n, err)
	}
	if task.sigMask != usr1 || task.restoreMask {
		t.Errorf("after ppoll: mask %#x restoreMask %v; want %#x false", task.sigMask, task.restoreMask, usr1)
	}
	// Blocking: the pending SIGUSR1, unblocked by the wait's mask,
	// interrupts it; the wait's mask stays for the handler to run under,
	// and the old one is saved for after it.
	if _, err := sysPpoll(task, &syscallArgs{a: [6]uint64{bufAddr, 1, 0, sigsetAddr, 8}}); err != ERESTARTNOHAND {
		t.Fatalf("ppoll with SIGUSR1 pending and unblocked: %v, want ERESTARTNOHAND", err)
	}
	if task.sigMask != 0 || !task.restoreMask || task.savedMask != usr1 {
		t.Errorf("after the interrupted ppoll: mask %#x restoreMask %v saved %#x; want 0 true %#x",
			task.sigMask, task.restoreMask, task.savedMask, usr1)
	}
}

func TestHostFile(t *testing.T) {
	task := newIdleTask(t)
	withHandler(task, unix.SIGUSR1)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	hf, err := newHostFile(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer hf.DecRef()
	if hf.Seekable() {
		t.Errorf("a host pipe is seekable")
	}
	if got := hf.Readiness(unix.POLLIN); got != 0 {
		t.Errorf("empty host pipe readiness = %#x, want 0", got)
	}
	registered := func() bool {
		hf.mu.Lock()
		defer hf.mu.Unlock()
		return len(hf.waits) > 0
	}

	// A blocked read returns the host's data.
	got := make(chan string)
	go func() {
		buf := make([]byte, 10)
		n, _ := hf.Read(task, buf)
		got <- string(buf[:n])
	}()
	for !registered() {
		time.Sleep(time.Millisecond)
	}
	w.Write([]byte("data"))
	if s := <-got; s != "data" {
		t.Errorf("blocked host read = %q, want \"data\"", s)
	}

	// A blocked read is interrupted by a signal, and leaves no poller.
	done := make(chan error)
	go func() {
		_, err := hf.Read(task, make([]byte, 10))
		done <- err
	}()
	for !registered() {
		time.Sleep(time.Millisecond)
	}
	task.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
	if err := <-done; err != ERESTARTSYS {
		t.Errorf("interrupted host read: %v, want ERESTARTSYS", err)
	}
	if registered() {
		t.Errorf("a host poller is left after the read")
	}
	h := task.sigLock()
	task.pending.discard(SignalSetOf(unix.SIGUSR1))
	h.mu.Unlock()

	// O_NONBLOCK is the program's own: EAGAIN, the host fd untouched.
	hf.SetFlags(unix.O_NONBLOCK)
	if _, err := hf.Read(task, make([]byte, 1)); err != unix.EAGAIN {
		t.Errorf("nonblocking read of an empty host pipe: %v, want EAGAIN", err)
	}
	fl, err := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Errorf("F_SETFL reached the host descriptor")
	}
}

func TestHostFileWriteInterruptible(t *testing.T) {
	task := newIdleTask(t)
	withHandler(task, unix.SIGUSR1)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	hf, err := newHostFile(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer hf.DecRef()
	// Fill the host pipe without blocking.
	hf.SetFlags(unix.O_NONBLOCK)
	page := make([]byte, pipeBuf)
	for {
		if _, err := hf.Write(task, page); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	hf.SetFlags(0)
	done := make(chan error)
	go func() {
		_, err := hf.Write(task, page)
		done <- err
	}()
	for {
		hf.mu.Lock()
		n := len(hf.waits)
		hf.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	task.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
	if err := <-done; err != ERESTARTSYS {
		t.Errorf("write blocked on a full host pipe, interrupted: %v, want ERESTARTSYS", err)
	}
}

func TestMemDevices(t *testing.T) {
	task := newIdleTask(t)
	tests := []struct {
		path     string
		minor    uint32
		read     string
		writeErr error
	}{
		{"/dev/null", 3, "", nil},
		{"/dev/zero", 5, "\x00\x00\x00", nil},
		{"/dev/full", 7, "\x00\x00\x00", unix.ENOSPC},
	}
	for _, tc := range tests {
		f, err := openFile(task, unix.AT_FDCWD, tc.path, unix.O_RDWR)
		if err != nil {
			t.Fatalf("open %s: %v", tc.path, err)
		}
		st, _ := f.Stat(task)
		if st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, tc.minor) {
			t.Errorf("%s: mode %#o rdev %d:%d; want %#o 1:%d", tc.path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), unix.S_IFCHR|0o666, tc.minor)
		}
		buf := []byte("abc")
		n, _ := f.Read(task, buf)
		if got := string(buf[:n]); got != tc.read {
			t.Errorf("%s: read %q, want %q", tc.path, got, tc.read)
		}
		if _, err := f.Write(task, buf); err != tc.writeErr {
			t.Errorf("%s: write: %v, want %v", tc.path, err, tc.writeErr)
		}
		f.DecRef()
	}
}

func TestRandomDevicesAndTTY(t *testing.T) {
	cases := []syscallCase{
		{"open /dev/urandom", []uint64{unix.SYS_OPEN, pathAddr(7), unix.O_RDWR}, 7},
		{"read", []uint64{unix.SYS_READ, 7, bufAddr, 100}, 100},
		{"write is taken", []uint64{unix.SYS_WRITE, 7, bufAddr, 3}, 3},
		{"RNDGETENTCNT", []uint64{unix.SYS_IOCTL, 7, unix.RNDGETENTCNT, bufAddr}, 0},
		{"unknown ioctl", []uint64{unix.SYS_IOCTL, 7, 0x1234, bufAddr}, errno(unix.EINVAL)},
		{"no epoll for /dev/urandom", []uint64{unix.SYS_EPOLL_CREATE1, 0}, 8},
		{"epoll_ctl", []uint64{unix.SYS_EPOLL_CTL, 8, unix.EPOLL_CTL_ADD, 7, iovAddr}, errno(unix.EPERM)},
		{"no controlling terminal", []uint64{unix.SYS_OPEN, pathAddr(8), unix.O_RDWR}, errno(unix.ENXIO)},
	}
	runCases(t, func(task *Task) { setupFiles(t, task) }, cases)
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantDir bool
	}{
		{"/dev/null", "/dev/null", false},
		{"//dev//null", "/dev/null", false},
		{"/dev/./null", "/dev/null", false},
		{"/dev/../dev/null", "/dev/null", false},
		{"/../../dev/null", "/dev/null", false},
		{"dev/null", "/dev/null", false},
		{"/dev/null/", "/dev/null", true},
		{"/", "/", true},
	}
	for _, tc := range tests {
		got, dir := cleanPath(tc.in)
		if got != tc.want || dir != tc.wantDir {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, %v", tc.in, got, dir, tc.want, tc.wantDir)
		}
	}
}

func TestHostFileIoctls(t *testing.T) {
	task := newIdleTask(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	hf, err := newHostFile(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer hf.DecRef()
	w.Write([]byte("xyz"))
	if _, err := hf.Ioctl(task, unix.TIOCINQ, bufAddr); err != nil {
		t.Fatalf("FIONREAD: %v", err)
	}
	var b [4]byte
	task.CopyIn(bufAddr, b[:])
	if got := binary.LittleEndian.Uint32(b[:]); got != 3 {
		t.Errorf("FIONREAD = %d, want 3", got)
	}
	if _, err := hf.Ioctl(task, unix.TCGETS, bufAddr); err != unix.ENOTTY {
		t.Errorf("TCGETS on a pipe: %v, want ENOTTY", err)
	}
	fd, err := task.fdt.newFD(hf, 0, false, testNOFILE)
	if err != nil {
		t.Fatal(err)
	}
	hf.IncRef() // the table took the test's reference
	want, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sysFcntl(task, &syscallArgs{a: [6]uint64{uint64(fd), unix.F_GETPIPE_SZ}}); int(n) != want || err != nil {
		t.Errorf("F_GETPIPE_SZ of a host pipe = %d, %v; want the host's %d", n, err, want)
	}

	// A terminal: raw mode set through the sandbox reaches the host.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	defer pts.Close()
	tty, err := newHostFile(int(pts.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer tty.DecRef()
	if _, err := tty.Ioctl(task, unix.TCGETS, bufAddr); err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	var tio unix.Termios
	task.CopyIn(bufAddr, termiosBytes(&tio))
	tio.Lflag &^= unix.ECHO | unix.ICANON
	task.CopyOut(bufAddr, termiosBytes(&tio))
	if _, err := tty.Ioctl(task, unix.TCSETS, bufAddr); err != nil {
		t.Fatalf("TCSETS: %v", err)
	}
	host, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if host.Lflag&(unix.ECHO|unix.ICANON) != 0 {
		t.Errorf("host terminal lflag %#x still has ECHO or ICANON after TCSETS", host.Lflag)
	}
}

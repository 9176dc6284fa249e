package kernel

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// epollCall calls an epoll system call of the idle task directly.
func epollCall(task *Task, fn syscallFn, args ...uint64) (int64, error) {
	var a syscallArgs
	copy(a.a[:], args)
	n, err := fn(task, &a)
	return int64(n), err
}

// epollAdd adds fd to epfd with events and data fd.
func epollAdd(t *testing.T, task *Task, epfd, op, fd int, events uint32) error {
	t.Helper()
	var b [epollEventSize]byte
	binary.LittleEndian.PutUint32(b[0:], events)
	binary.LittleEndian.PutUint64(b[4:], uint64(fd))
	task.CopyOut(bufAddr+512, b[:])
	_, err := epollCall(task, sysEpollCtl, uint64(epfd), uint64(op), uint64(fd), bufAddr+512)
	return err
}

// epollWaitN waits with timeout ms and returns the events (event mask and
// data).
func epollWaitN(t *testing.T, task *Task, epfd int, ms int) ([]epollEvent, error) {
	t.Helper()
	n, err := epollCall(task, sysEpollWait, uint64(epfd), bufAddr+1024, 8, uint64(int64(ms)))
	if err != nil {
		return nil, err
	}
	b := make([]byte, n*epollEventSize)
	task.CopyIn(bufAddr+1024, b)
	evs := make([]epollEvent, n)
	for i := range evs {
		evs[i].events = binary.LittleEndian.Uint32(b[i*epollEventSize:])
		evs[i].data = binary.LittleEndian.Uint64(b[i*epollEventSize+4:])
	}
	return evs, nil
}

// newEpollTask returns an idle task with setupFiles' descriptors and an
// epoll at 7.
func newEpollTask(t *testing.T) *Task {
	task := newIdleTask(t)
	setupFiles(t, task)
	if fd, err := epollCall(task, sysEpollCreate1, unix.EPOLL_CLOEXEC); fd != 7 || err != nil {
		t.Fatalf("epoll_create1 = %d, %v; want 7", fd, err)
	}
	return task
}

func TestEpollCtlErrnos(t *testing.T) {
	task := newEpollTask(t)
	tests := []struct {
		name     string
		epfd, fd int
		op       int
		events   uint32
		want     error
	}{
		{"add /dev/null", 7, 5, unix.EPOLL_CTL_ADD, unix.EPOLLIN, unix.EPERM},
		{"add itself", 7, 7, unix.EPOLL_CTL_ADD, unix.EPOLLIN, unix.EINVAL},
		{"not an epoll", 3, 4, unix.EPOLL_CTL_ADD, unix.EPOLLIN, unix.EINVAL},
		{"unknown op", 7, 3, 9, unix.EPOLLIN, unix.EINVAL},
		{"closed fd", 7, 99, unix.EPOLL_CTL_ADD, unix.EPOLLIN, unix.EBADF},
		{"closed epfd", 99, 3, unix.EPOLL_CTL_ADD, unix.EPOLLIN, unix.EBADF},
		{"mod before add", 7, 3, unix.EPOLL_CTL_MOD, unix.EPOLLIN, unix.ENOENT},
		{"del before add", 7, 3, unix.EPOLL_CTL_DEL, 0, unix.ENOENT},
		{"add", 7, 3, unix.EPOLL_CTL_ADD, unix.EPOLLIN, nil},
		{"add again", 7, 3, unix.EPOLL_CTL_ADD, unix.EPOLLIN, unix.EEXIST},
		{"mod exclusive", 7, 3, unix.EPOLL_CTL_MOD, unix.EPOLLIN | unix.EPOLLEXCLUSIVE, unix.EINVAL},
		{"add exclusive oneshot", 7, 4, unix.EPOLL_CTL_ADD, unix.EPOLLIN | unix.EPOLLEXCLUSIVE | unix.EPOLLONESHOT, unix.EINVAL},
		{"del", 7, 3, unix.EPOLL_CTL_DEL, 0, nil},
	}
	for _, tc := range tests {
		if err := epollAdd(t, task, tc.epfd, tc.op, tc.fd, tc.events); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := epollCall(task, sysEpollCtl, 7, unix.EPOLL_CTL_ADD, 3, kernelAddr); err != unix.EFAULT {
		t.Errorf("add with the event in the kernel half: %v, want EFAULT", err)
	}
	for _, tc := range []struct {
		name string
		fn   syscallFn
		args []uint64
		want error
	}{
		{"epoll_create 0", sysEpollCreate, []uint64{0}, unix.EINVAL},
		{"epoll_create1 bad flag", sysEpollCreate1, []uint64{1}, unix.EINVAL},
		{"epoll_wait maxevents 0", sysEpollWait, []uint64{7, bufAddr, 0, 0}, unix.EINVAL},
		{"epoll_wait maxevents too large", sysEpollWait, []uint64{7, bufAddr, epollMaxEvents + 1, 0}, unix.EINVAL},
		{"epoll_wait events in the kernel half", sysEpollWait, []uint64{7, kernelAddr, 1, 0}, unix.EFAULT},
		{"epoll_wait not an epoll", sysEpollWait, []uint64{3, bufAddr, 1, 0}, unix.EINVAL},
		{"epoll_wait closed", sysEpollWait, []uint64{99, bufAddr, 1, 0}, unix.EBADF},
		{"epoll_pwait sigsetsize 4", sysEpollPwait, []uint64{7, bufAddr, 1, 0, sigsetAddr, 4}, unix.EINVAL},
		{"epoll_pwait2 bad timespec", sysEpollPwait2, []uint64{7, bufAddr, 1, tsAddr, 0, 8}, unix.EINVAL},
	} {
		if _, err := epollCall(task, tc.fn, tc.args...); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestEpollLevelEdgeOneshot(t *testing.T) {
	task := newEpollTask(t)
	// 3 holds data: ready at once.
	if err := epollAdd(t, task, 7, unix.EPOLL_CTL_ADD, 3, unix.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		evs, _ := epollWaitN(t, task, 7, 0)
		if len(evs) != 1 || evs[0] != (epollEvent{unix.EPOLLIN, 3}) {
			t.Errorf("level-triggered wait %d: %v, want one EPOLLIN for 3", i, evs)
		}
	}
	// Edge-triggered: reported once, again only after new data.
	if err := epollAdd(t, task, 7, unix.EPOLL_CTL_MOD, 3, unix.EPOLLIN|unix.EPOLLET); err != nil {
		t.Fatal(err)
	}
	w := task.fdt.get(4)
	defer w.DecRef()
	steps := []struct {
		write bool
		want  int
	}{{false, 1}, {false, 0}, {true, 1}, {false, 0}}
	for i, s := range steps {
		if s.write {
			w.Write(task, []byte("z"))
		}
		if evs, _ := epollWaitN(t, task, 7, 0); len(evs) != s.want {
			t.Errorf("edge-triggered step %d: %d events, want %d", i, len(evs), s.want)
		}
	}
	// One-shot: once, then again after EPOLL_CTL_MOD.
	if err := epollAdd(t, task, 7, unix.EPOLL_CTL_MOD, 3, unix.EPOLLIN|unix.EPOLLONESHOT); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 0} {
		if evs, _ := epollWaitN(t, task, 7, 0); len(evs) != want {
			t.Errorf("one-shot wait %d: %d events, want %d", i, len(evs), want)
		}
	}
	epollAdd(t, task, 7, unix.EPOLL_CTL_MOD, 3, unix.EPOLLIN|unix.EPOLLONESHOT)
	if evs, _ := epollWaitN(t, task, 7, 0); len(evs) != 1 {
		t.Errorf("one-shot after MOD: %d events, want 1", len(evs))
	}
}

func TestEpollCloseRemovesInterest(t *testing.T) {
	task := newEpollTask(t)
	epollAdd(t, task, 7, unix.EPOLL_CTL_ADD, 3, unix.EPOLLIN)
	// A dup keeps the description, and the interest, alive.
	dup, _ := epollCall(task, sysDup, 3)
	task.fdt.remove(3)
	if evs, _ := epollWaitN(t, task, 7, 0); len(evs) != 1 {
		t.Errorf("after closing 3 with a dup open: %d events, want 1", len(evs))
	}
	task.fdt.remove(int(dup))
	if evs, _ := epollWaitN(t, task, 7, 0); len(evs) != 0 {
		t.Errorf("after closing the last descriptor: %d events, want 0", len(evs))
	}
	f := task.fdt.get(7)
	defer f.DecRef()
	e := f.(*epollFile)
	e.mu.Lock()
	n := len(e.items)
	e.mu.Unlock()
	if n != 0 {
		t.Errorf("%d interests left, want 0", n)
	}
}

func TestEpollWaitBlocks(t *testing.T) {
	task := newEpollTask(t)
	withHandler(task, unix.SIGUSR1)
	task.fdt.remove(3) // the pipe with data
	r, w := newPipeFiles(task, 0)
	task.fdt.set(3, r, false, testNOFILE)
	defer w.DecRef()
	epollAdd(t, task, 7, unix.EPOLL_CTL_ADD, 3, unix.EPOLLIN|unix.EPOLLET)
	if evs, _ := epollWaitN(t, task, 7, 1); len(evs) != 0 {
		t.Fatalf("empty pipe: %v", evs)
	}
	f := task.fdt.get(7)
	e := f.(*epollFile)
	f.DecRef()

	type result struct {
		evs []epollEvent
		err error
	}
	done := make(chan result)
	wait := func() {
		evs, err := epollWaitN(t, task, 7, -1)
		done <- result{evs, err}
	}
	go wait()
	waitQueued(&e.wq)
	w.Write(task, []byte("x"))
	if res := <-done; len(res.evs) != 1 || res.evs[0] != (epollEvent{unix.EPOLLIN, 3}) {
		t.Errorf("blocked epoll_wait woken by a write: %v, %v", res.evs, res.err)
	}

	go wait()
	waitQueued(&e.wq)
	task.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
	if res := <-done; res.err != unix.EINTR {
		t.Errorf("interrupted epoll_wait: %v, want EINTR (never restarted)", res.err)
	}
}

func TestEpollNested(t *testing.T) {
	task := newEpollTask(t)
	inner, _ := epollCall(task, sysEpollCreate1, 0) // 8
	epollAdd(t, task, int(inner), unix.EPOLL_CTL_ADD, 3, unix.EPOLLIN)
	if err := epollAdd(t, task, 7, unix.EPOLL_CTL_ADD, int(inner), unix.EPOLLIN); err != nil {
		t.Fatalf("epoll in an epoll: %v", err)
	}
	if err := epollAdd(t, task, int(inner), unix.EPOLL_CTL_ADD, 7, unix.EPOLLIN); err != unix.ELOOP {
		t.Errorf("a loop of epolls: %v, want ELOOP", err)
	}
	if evs, _ := epollWaitN(t, task, 7, 0); len(evs) != 1 || evs[0].events != unix.EPOLLIN {
		t.Errorf("outer epoll: %v, want EPOLLIN for the inner one", evs)
	}
	// poll(2) on an epoll.
	putPollFDs(task, bufAddr, []pollFD{{fd: 7, events: unix.POLLIN}})
	if n, err := epollCall(task, sysPoll, bufAddr, 1, 0); n != 1 || err != nil {
		t.Errorf("poll on a ready epoll = %d, %v; want 1", n, err)
	}
}

// TestEpollManyPipes: writer tasks feed several pipes while one task
// waits on them with an edge-triggered epoll and drains each ready pipe
// until EAGAIN, as Go's runtime does; every byte must arrive.
func TestEpollManyPipes(t *testing.T) {
	task := newEpollTask(t)
	const pipes, writes = 8, 200
	var ws []*pipeFile
	for i := 0; i < pipes; i++ {
		r, w := newPipeFiles(task, unix.O_NONBLOCK)
		fd, err := task.fdt.newFD(r, 0, false, testNOFILE)
		if err != nil {
			t.Fatal(err)
		}
		if err := epollAdd(t, task, 7, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLET); err != nil {
			t.Fatal(err)
		}
		w.SetFlags(0)
		ws = append(ws, w)
	}
	for i, w := range ws {
		wt, err := task.k.newTask(int32(100+i), task)
		if err != nil {
			t.Fatal(err)
		}
		go func(w *pipeFile) {
			defer w.DecRef()
			for k := 0; k < writes; k++ {
				w.Write(wt, []byte{byte(k)})
			}
		}(w)
	}
	got := 0
	buf := make([]byte, 64)
	for got < pipes*writes {
		// A lost edge would wait forever: give up after 10 s of
		// silence (a hang guard, not a timing assertion).
		evs, err := epollWaitN(t, task, 7, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Fatalf("no event for 10 s with %d of %d bytes read", got, pipes*writes)
		}
		for _, ev := range evs {
			f := task.fdt.get(int(ev.data))
			for {
				n, err := f.Read(task, buf)
				got += n
				if err == unix.EAGAIN || n == 0 {
					break
				}
			}
			f.DecRef()
		}
	}
	if got != pipes*writes {
		t.Errorf("got %d bytes, want %d", got, pipes*writes)
	}
}

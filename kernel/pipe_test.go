package kernel

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// newIdleTask returns a task of a test kernel that runs no program, for
// calling File methods directly from the test goroutine.
func newIdleTask(t *testing.T) *Task {
	t.Helper()
	_, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		panic("idle task ran")
	})
	return task
}

// waitQueued spins until q has a waiter: the other goroutine is about to
// block (or blocked), so a wake-up now tests the wake path.
func waitQueued(q *WaitQueue) {
	for q.Empty() {
		runtime.Gosched()
	}
}

func TestPipeEOFAndEPIPE(t *testing.T) {
	task := newIdleTask(t)
	r, w := newPipeFiles(task, 0)
	if n, err := w.Write(task, []byte("abc")); n != 3 || err != nil {
		t.Fatalf("write = %d, %v; want 3, nil", n, err)
	}
	w.DecRef()
	buf := make([]byte, 10)
	if n, err := r.Read(task, buf); n != 3 || err != nil || string(buf[:n]) != "abc" {
		t.Errorf("read = %d %q, %v; want 3 \"abc\", nil", n, buf[:n], err)
	}
	if n, err := r.Read(task, buf); n != 0 || err != nil {
		t.Errorf("read at EOF = %d, %v; want 0, nil", n, err)
	}
	if got, want := r.Readiness(unix.POLLIN), uint32(unix.POLLHUP); got != want {
		t.Errorf("read end readiness after the writer closed = %#x, want %#x", got, want)
	}
	r.DecRef()

	r, w = newPipeFiles(task, 0)
	r.DecRef()
	if n, err := w.Write(task, []byte("x")); n != 0 || err != unix.EPIPE {
		t.Errorf("write without readers = %d, %v; want 0, EPIPE", n, err)
	}
	if n, err := w.Write(task, nil); n != 0 || err != nil {
		t.Errorf("empty write without readers = %d, %v; want 0, nil (Linux returns before the reader check)", n, err)
	}
	h := task.sigLock()
	pending := task.pending.set&SignalSetOf(unix.SIGPIPE) != 0
	h.mu.Unlock()
	if !pending {
		t.Errorf("SIGPIPE not pending after EPIPE")
	}
	if got, want := w.Readiness(unix.POLLOUT), uint32(unix.POLLOUT|unix.POLLERR); got != want {
		t.Errorf("write end readiness without readers = %#x, want %#x", got, want)
	}
	w.DecRef()
}

func TestPipeNonblockingCapacity(t *testing.T) {
	task := newIdleTask(t)
	page := bytes.Repeat([]byte{'x'}, pipePage)
	tests := []struct {
		name string
		// fill writes the pipe full; then the checks run.
		fill      func(w *pipeFile) int
		wantTotal int
	}{
		{"page-sized writes", func(w *pipeFile) int {
			total := 0
			for {
				n, err := w.Write(task, page)
				if err != nil {
					return total
				}
				total += n
			}
		}, 65536},
		{"one-byte writes merge into pages", func(w *pipeFile) int {
			total := 0
			for {
				n, err := w.Write(task, page[:1])
				if err != nil {
					return total
				}
				total += n
			}
		}, 65536},
		{"one large write is cut at the capacity", func(w *pipeFile) int {
			n, _ := w.Write(task, make([]byte, 200000))
			return n
		}, 65536},
	}
	for _, tc := range tests {
		r, w := newPipeFiles(task, unix.O_NONBLOCK)
		if n, err := r.Read(task, make([]byte, 1)); n != 0 || err != unix.EAGAIN {
			t.Errorf("%s: read of an empty pipe = %d, %v; want EAGAIN", tc.name, n, err)
		}
		if got := tc.fill(w); got != tc.wantTotal {
			t.Errorf("%s: pipe took %d bytes, want %d", tc.name, got, tc.wantTotal)
		}
		if n, err := w.Write(task, page[:1]); n != 0 || err != unix.EAGAIN {
			t.Errorf("%s: write to a full pipe = %d, %v; want EAGAIN", tc.name, n, err)
		}
		if got := w.Readiness(unix.POLLOUT); got != 0 {
			t.Errorf("%s: full pipe readiness = %#x, want 0", tc.name, got)
		}
		// 100 bytes read free no slot: Linux still has no room.
		if n, _ := r.Read(task, make([]byte, 100)); n != 100 {
			t.Errorf("%s: read %d, want 100", tc.name, n)
		}
		if n, err := w.Write(task, page[:100]); n != 0 || err != unix.EAGAIN {
			t.Errorf("%s: write of 100 bytes after reading 100 = %d, %v; want EAGAIN", tc.name, n, err)
		}
		r.DecRef()
		w.DecRef()
	}
}

func TestPipePacketMode(t *testing.T) {
	task := newIdleTask(t)
	r, w := newPipeFiles(task, unix.O_DIRECT|unix.O_NONBLOCK)
	for _, s := range []string{"abc", "defg", "h"} {
		if n, err := w.Write(task, []byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q = %d, %v", s, n, err)
		}
	}
	buf := make([]byte, 10)
	for _, tc := range []struct {
		size int
		want string
	}{{10, "abc"}, {2, "de"}, {10, "h"}} {
		n, err := r.Read(task, buf[:tc.size])
		if err != nil || string(buf[:n]) != tc.want {
			t.Errorf("read(%d) = %q, %v; want %q (one packet per read, the rest of it dropped)", tc.size, buf[:n], err, tc.want)
		}
	}
	if n, err := r.Read(task, buf); err != unix.EAGAIN {
		t.Errorf("read of the drained pipe = %d, %v; want EAGAIN", n, err)
	}
	r.DecRef()
	w.DecRef()
}

func TestPipeSetSize(t *testing.T) {
	task := newIdleTask(t)
	r, w := newPipeFiles(task, 0)
	defer r.DecRef()
	defer w.DecRef()
	for _, tc := range []struct {
		arg     uint32
		want    int
		wantErr error
	}{
		{0, pipePage, nil},
		{5000, 2 * pipePage, nil},
		{65536, 65536, nil},
		{0xffffffff, 0, unix.EINVAL},
		{2 << 20, 0, unix.EPERM},
	} {
		got, err := w.p.setSize(tc.arg)
		if got != tc.want || err != tc.wantErr {
			t.Errorf("setSize(%d) = %d, %v; want %d, %v", tc.arg, got, err, tc.want, tc.wantErr)
		}
	}
	// Three slots in use do not fit in two.
	for i := 0; i < 3; i++ {
		w.Write(task, make([]byte, pipePage))
	}
	if _, err := w.p.setSize(2 * pipePage); err != unix.EBUSY {
		t.Errorf("shrinking below the data held: %v, want EBUSY", err)
	}
	if got, err := w.p.setSize(4 * pipePage); got != 4*pipePage || err != nil {
		t.Errorf("setSize(4 pages) = %d, %v", got, err)
	}
	buf := make([]byte, 4*pipePage)
	total := 0
	for total < 3*pipePage {
		n, err := r.Read(task, buf)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if got := w.p.size(); got != 4*pipePage {
		t.Errorf("size = %d, want %d", got, 4*pipePage)
	}
}

func TestPipeBlockedReaderAndWriterWoken(t *testing.T) {
	task := newIdleTask(t)
	other, err := task.k.newTask(2, task)
	if err != nil {
		t.Fatal(err)
	}
	r, w := newPipeFiles(task, 0)
	defer r.DecRef()
	defer w.DecRef()

	got := make(chan string)
	go func() {
		buf := make([]byte, 10)
		n, _ := r.Read(task, buf)
		got <- string(buf[:n])
	}()
	waitQueued(&r.p.rq)
	w.Write(other, []byte("hi"))
	if s := <-got; s != "hi" {
		t.Errorf("blocked reader got %q, want \"hi\"", s)
	}

	// A writer blocked on a full pipe completes once a reader drains it.
	big := make([]byte, 65536+pipePage)
	wrote := make(chan int)
	go func() {
		n, _ := w.Write(other, big)
		wrote <- n
	}()
	waitQueued(&w.p.wq)
	sink := make([]byte, len(big))
	total := 0
	for total < len(big) {
		n, err := r.Read(task, sink[total:])
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if n := <-wrote; n != len(big) {
		t.Errorf("blocked writer wrote %d, want %d", n, len(big))
	}
}

func TestPipeReadInterrupted(t *testing.T) {
	task := newIdleTask(t)
	// A handler makes SIGUSR1 deliverable rather than ignored or fatal.
	h := task.tg.handlers.Load()
	h.mu.Lock()
	h.actions[unix.SIGUSR1-1].Handler = 0x1000
	h.mu.Unlock()
	r, w := newPipeFiles(task, 0)
	defer r.DecRef()
	defer w.DecRef()
	done := make(chan error)
	go func() {
		_, err := r.Read(task, make([]byte, 1))
		done <- err
	}()
	waitQueued(&r.p.rq)
	task.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
	if err := <-done; err != ERESTARTSYS {
		t.Errorf("interrupted read: %v, want ERESTARTSYS", err)
	}
}

// TestPipeAtomicWrites runs four writer tasks that write PIPE_BUF-byte
// records concurrently with a reader: no record may be torn.
func TestPipeAtomicWrites(t *testing.T) {
	task := newIdleTask(t)
	r, w := newPipeFiles(task, 0)
	const writers, records = 4, 64
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wt, err := task.k.newTask(int32(10+i), task)
		if err != nil {
			t.Fatal(err)
		}
		w.IncRef()
		wg.Add(1)
		go func(id byte) {
			defer wg.Done()
			defer w.DecRef()
			rec := bytes.Repeat([]byte{'A' + id}, pipeBuf)
			for k := 0; k < records; k++ {
				if n, err := w.Write(wt, rec); n != pipeBuf || err != nil {
					t.Errorf("writer %d: write = %d, %v", id, n, err)
					return
				}
			}
		}(byte(i))
	}
	w.DecRef()
	counts := make(map[byte]int)
	rec := make([]byte, pipeBuf)
	for {
		n, err := readFull(task, r, rec)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if n != pipeBuf || !bytes.Equal(rec, bytes.Repeat(rec[:1], pipeBuf)) {
			t.Fatalf("torn record of %d bytes starting %q", n, rec[:8])
		}
		counts[rec[0]]++
	}
	wg.Wait()
	r.DecRef()
	for i := 0; i < writers; i++ {
		if got := counts['A'+byte(i)]; got != records {
			t.Errorf("writer %d: %d records, want %d", i, got, records)
		}
	}
}

// readFull reads until buf is full or EOF.
func readFull(task *Task, f File, buf []byte) (int, error) {
	got := 0
	for got < len(buf) {
		n, err := f.Read(task, buf[got:])
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
		got += n
	}
	return got, nil
}

func TestPipeStatAndFlags(t *testing.T) {
	task := newIdleTask(t)
	r, w := newPipeFiles(task, unix.O_NONBLOCK|unix.O_DIRECT)
	defer r.DecRef()
	defer w.DecRef()
	st, err := r.Stat(task)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFIFO|0o600 || st.Nlink != 1 || st.Blksize != pipePage {
		t.Errorf("stat = mode %#o nlink %d blksize %d; want %#o 1 %d", st.Mode, st.Nlink, st.Blksize, unix.S_IFIFO|0o600, pipePage)
	}
	if wst, _ := w.Stat(task); wst.Ino != st.Ino {
		t.Errorf("ends have inodes %d and %d, want the same", st.Ino, wst.Ino)
	}
	// Linux: O_DIRECT is given to the write end only.
	if got, want := r.Flags(), unix.O_RDONLY|unix.O_NONBLOCK; got != want {
		t.Errorf("read end flags = %#x, want %#x", got, want)
	}
	if got, want := w.Flags(), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_DIRECT; got != want {
		t.Errorf("write end flags = %#x, want %#x", got, want)
	}
	if _, err := r.Seek(task, 0, unix.SEEK_SET); !errors.Is(err, unix.ESPIPE) {
		t.Errorf("seek: %v, want ESPIPE", err)
	}
}

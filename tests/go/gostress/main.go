// Command gostress is a differential test program for ringbox: a static Go
// binary (build with CGO_ENABLED=0) that exercises the Go runtime's use of
// the kernel — threads (clone), futexes, signals for preemption and
// os/signal, timers, pipes, and fork/exec — and prints TAP-like lines that
// must be identical natively and under ringbox.
//
// It execs tests/bin/proc/killparent-glibc (built from
// tests/proc/killparent.c), found under $RINGBOX_TEST_BIN/proc or, by
// default, at ../proc/ relative to this executable (tests/bin/go/gostress).
// Without it, the exec cases report SKIP.
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// tap numbers and prints results, and remembers whether any failed.
type tap struct {
	n, passed, failed int
}

func (t *tap) ok(cond bool, desc string, args ...any) {
	t.n++
	d := fmt.Sprintf(desc, args...)
	if cond {
		t.passed++
		fmt.Printf("ok %d - %s\n", t.n, d)
		return
	}
	t.failed++
	fmt.Printf("not ok %d - %s\n", t.n, d)
}

func (t *tap) eq(got, want any, desc string, args ...any) {
	t.n++
	d := fmt.Sprintf(desc, args...)
	if got == want {
		t.passed++
		fmt.Printf("ok %d - %s\n", t.n, d)
		return
	}
	t.failed++
	fmt.Printf("not ok %d - %s: got %v want %v\n", t.n, d, got, want)
}

func (t *tap) skip(reason, desc string) {
	t.n++
	t.passed++
	fmt.Printf("ok %d - %s # SKIP %s\n", t.n, desc, reason)
}

// helperPath locates the killparent helper program.
func helperPath() (string, bool) {
	var dirs []string
	if d := os.Getenv("RINGBOX_TEST_BIN"); d != "" {
		dirs = append(dirs, filepath.Join(d, "proc"))
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "proc"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "killparent-glibc")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

func goroutines(t *tap) {
	var wg sync.WaitGroup
	results := make([]int, 200)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := 0
			for k := 0; k <= i*100; k++ {
				s += k
			}
			results[i] = s
		}()
	}
	wg.Wait()
	good := true
	for i, s := range results {
		n := i * 100
		if s != n*(n+1)/2 {
			good = false
		}
	}
	t.ok(good, "200 goroutines compute their sums")
}

func channels(t *tap) {
	src := make(chan int)
	sq := make(chan int, 8)
	out := make(chan int)
	go func() {
		for i := 1; i <= 1000; i++ {
			src <- i
		}
		close(src)
	}()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range src {
				sq <- v * v
			}
		}()
	}
	go func() {
		wg.Wait()
		close(sq)
	}()
	go func() {
		s := 0
		for v := range sq {
			s += v
		}
		out <- s
	}()
	t.eq(<-out, 333833500, "channel pipeline: sum of squares 1..1000 through 4 workers")

	a, b := make(chan int), make(chan int)
	quit := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			if i%2 == 0 {
				a <- 1
			} else {
				b <- 2
			}
		}
		close(quit)
	}()
	na, nb := 0, 0
loop:
	for {
		select {
		case <-a:
			na++
		case <-b:
			nb++
		case <-quit:
			break loop
		}
	}
	t.ok(na == 50 && nb == 50, "select receives from both channels")
}

func mutex(t *tap) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	count := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				mu.Lock()
				count++
				if i%1000 == 0 {
					runtime.Gosched()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.eq(count, 40000, "8 goroutines x 5000 increments under a contended sync.Mutex")

	var rw sync.RWMutex
	var cv = sync.NewCond(&mu)
	ready := 0
	for g := 0; g < 4; g++ {
		go func() {
			rw.RLock()
			rw.RUnlock()
			mu.Lock()
			ready++
			cv.Broadcast()
			mu.Unlock()
		}()
	}
	mu.Lock()
	for ready < 4 {
		cv.Wait()
	}
	mu.Unlock()
	t.eq(ready, 4, "sync.Cond wakes the waiter after 4 goroutines")
}

func ticker(t *tap) {
	start := time.Now()
	tk := time.NewTicker(5 * time.Millisecond)
	n := 0
	for range tk.C {
		n++
		if n == 5 {
			break
		}
	}
	tk.Stop()
	t.ok(time.Since(start) >= 20*time.Millisecond, "time.Ticker: 5 ticks of 5 ms take at least 20 ms")
	select {
	case <-time.After(10 * time.Millisecond):
		t.ok(true, "time.After fires")
	case <-time.After(5 * time.Second):
		t.ok(false, "time.After fires")
	}
	preemption(t)
}

// preemption occupies both Ps with loops that have no preemption points,
// so the sleeping main goroutine only runs again if the runtime preempts a
// spinner asynchronously: sysmon sends the spinning thread a signal
// (SIGURG since Go 1.14) that must interrupt user-mode code. The spinners
// stop at a flag set by main or at an iteration cap; stopping at the flag
// proves main ran while both spun.
func preemption(t *tap) {
	var stop atomic.Int32
	var byFlag [2]bool
	var wg sync.WaitGroup
	for i := range byFlag {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for stop.Load() == 0 && n < 3_000_000_000 {
				n++
			}
			byFlag[i] = stop.Load() != 0
		}()
	}
	time.Sleep(20 * time.Millisecond)
	stop.Store(1)
	wg.Wait()
	t.ok(byFlag[0] && byFlag[1], "async preemption: main runs while two goroutines spin on both Ps")
}

// threads checks that goroutines blocked in system calls get OS threads of
// their own (the runtime hands their P off), and that LockOSThread gives
// each locked goroutine a distinct kernel thread.
func threads(t *tap) {
	const n = 50
	var fds [n][2]int
	for i := range fds {
		if err := syscall.Pipe(fds[i][:]); err != nil {
			t.ok(false, "pipe: %v", err)
			return
		}
	}
	got := make(chan byte, n)
	for i := range fds {
		go func() {
			b := make([]byte, 1)
			// A raw read blocks this goroutine's thread in the kernel.
			syscall.Read(fds[i][0], b)
			got <- b[0]
		}()
	}
	time.Sleep(10 * time.Millisecond)
	for i := range fds {
		syscall.Write(fds[i][1], []byte{byte(i)})
	}
	sum := 0
	for range n {
		sum += int(<-got)
	}
	for i := range fds {
		syscall.Close(fds[i][0])
		syscall.Close(fds[i][1])
	}
	t.eq(sum, n*(n-1)/2, "50 goroutines blocked in read(2) all complete")

	tids := make(chan int, 4)
	release := make(chan struct{})
	for range 4 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids <- syscall.Gettid()
			<-release
		}()
	}
	seen := map[int]bool{}
	for range 4 {
		seen[<-tids] = true
	}
	close(release)
	t.eq(len(seen), 4, "4 goroutines locked to OS threads see 4 distinct tids")
}

// gc runs collections while goroutines allocate, exercising the runtime's
// stop-the-world preemption, madvise and page faults.
func gc(t *tap) {
	var wg sync.WaitGroup
	sums := make([]int, 4)
	for g := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 50; round++ {
				m := make(map[int][]byte, 64)
				for k := 0; k < 64; k++ {
					m[k] = make([]byte, 1024+k)
				}
				for k, v := range m {
					sums[g] += k + len(v)
				}
			}
		}()
	}
	for range 5 {
		runtime.GC()
	}
	wg.Wait()
	good := true
	for _, s := range sums {
		if s != 50*(64*63/2+64*1024+64*63/2) {
			good = false
		}
	}
	t.ok(good, "allocating goroutines survive concurrent garbage collections")
}

func pipes(t *tap) {
	r, w, err := os.Pipe()
	if err != nil {
		t.ok(false, "os.Pipe: %v", err)
		return
	}
	data := bytes.Repeat([]byte("ringbox-pipe-"), 80000) // ~1 MiB
	go func() {
		w.Write(data)
		w.Close()
	}()
	got, err := io.ReadAll(r)
	r.Close()
	t.ok(err == nil && bytes.Equal(got, data), "1 MiB through an os.Pipe between goroutines")
}

func execs(t *tap) {
	helper, found := helperPath()
	if !found {
		t.skip("killparent helper not found", "os/exec runs a static C program")
		t.skip("killparent helper not found", "stdin and stdout pipes across exec")
		t.skip("killparent helper not found", "os/signal receives SIGUSR1 from a child")
		return
	}
	out, err := exec.Command(helper).Output()
	t.ok(err == nil && bytes.HasSuffix(out, []byte("# passed 1 failed 0\n")), "os/exec runs a static C program")

	data := bytes.Repeat([]byte{0, 1, 2, 3, 255, 'x'}, 50000)
	cmd := exec.Command(helper, "cat")
	cmd.Stdin = bytes.NewReader(data)
	out, err = cmd.Output()
	sumGot, sumWant := sha256.Sum256(out), sha256.Sum256(data)
	t.ok(err == nil && sumGot == sumWant, "stdin and stdout pipes across exec")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	cmd = exec.Command(helper, "kill")
	cmd.Env = append(os.Environ(), "RINGBOX_KILLPARENT=1")
	err = cmd.Run()
	select {
	case s := <-sig:
		t.ok(err == nil && s == syscall.SIGUSR1, "os/signal receives SIGUSR1 from a child")
	case <-time.After(5 * time.Second):
		t.ok(false, "os/signal receives SIGUSR1 from a child")
	}
	signal.Stop(sig)
}

func main() {
	runtime.GOMAXPROCS(2)
	t := &tap{}
	goroutines(t)
	channels(t)
	mutex(t)
	ticker(t)
	threads(t)
	gc(t)
	pipes(t)
	execs(t)
	fmt.Printf("# passed %d failed %d\n", t.passed, t.failed)
	if t.failed > 0 {
		os.Exit(1)
	}
}

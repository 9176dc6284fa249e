package kernel

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEventfd(t *testing.T) {
	task := newIdleTask(t)
	val := func(v uint64) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, v)
		return b
	}
	fd, err := eventfdCreate(task, 2, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	f := task.fdt.get(int(fd))
	defer f.DecRef()
	buf := make([]byte, 8)
	for i, want := range []error{nil, nil, unix.EAGAIN} {
		if _, err := f.Read(task, buf); err != want {
			t.Errorf("semaphore read %d: %v, want %v", i, err, want)
		} else if err == nil && binary.LittleEndian.Uint64(buf) != 1 {
			t.Errorf("semaphore read %d = %d, want 1", i, binary.LittleEndian.Uint64(buf))
		}
	}
	for _, tc := range []struct {
		name string
		src  []byte
		want error
	}{
		{"ULLONG_MAX", val(^uint64(0)), unix.EINVAL},
		{"short", []byte{1, 2, 3}, unix.EINVAL},
		{"16 bytes", make([]byte, 16), unix.EINVAL},
		{"up to the ceiling", val(eventfdMax), nil},
		{"over the ceiling", val(1), unix.EAGAIN},
		{"zero", val(0), nil},
	} {
		if _, err := f.Write(task, tc.src); err != tc.want {
			t.Errorf("write %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got, want := f.Readiness(unix.POLLIN|unix.POLLOUT), uint32(unix.POLLIN); got != want {
		t.Errorf("readiness at the ceiling = %#x, want %#x", got, want)
	}

	// A blocked read is woken by a write of another task.
	fd, _ = eventfdCreate(task, 0, 0)
	g := task.fdt.get(int(fd))
	defer g.DecRef()
	other, err := task.k.newTask(2, task)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64)
	go func() {
		b := make([]byte, 8)
		g.Read(task, b)
		got <- binary.LittleEndian.Uint64(b)
	}()
	waitQueued(&g.(*eventFile).rq)
	g.Write(other, val(5))
	g.Write(other, val(0))
	if v := <-got; v != 5 {
		t.Errorf("blocked read = %d, want 5", v)
	}
}

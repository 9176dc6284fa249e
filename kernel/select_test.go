package kernel

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSelect(t *testing.T) {
	const setSize = 8 // one long: descriptors 0..63
	in, out, ex := uint64(bufAddr), uint64(bufAddr+setSize), uint64(bufAddr+2*setSize)
	bits := func(fds ...int) []byte {
		var v uint64
		for _, fd := range fds {
			v |= 1 << fd
		}
		b := make([]byte, setSize)
		binary.LittleEndian.PutUint64(b, v)
		return b
	}
	var zeroTV [16]byte
	results, mem := runDumping(t, func(task *Task) {
		task.CopyOut(in, bits(3, 5))
		task.CopyOut(out, bits(4))
		task.CopyOut(ex, bits(3))
		task.CopyOut(bufAddr+64, zeroTV[:])
		task.CopyOut(bufAddr+128, bits(40))
	}, [][]uint64{
		{unix.SYS_SELECT, 6, in, out, ex, bufAddr + 64},
		{unix.SYS_SELECT, 41, bufAddr + 128, 0, 0, bufAddr + 64},
		{unix.SYS_SELECT, minus1, 0, 0, 0, bufAddr + 64},
		{unix.SYS_SELECT, 1, kernelAddr, 0, 0, bufAddr + 64},
		{unix.SYS_SELECT, 100000, 0, 0, 0, bufAddr + 64},
		{unix.SYS_PSELECT6, 0, 0, 0, 0, tsAddr, 0},
	}, 3*setSize)
	want := []int64{3, errno(unix.EBADF), errno(unix.EINVAL), errno(unix.EFAULT), 0, errno(unix.EINVAL)}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("call %d: got %d, want %d", i, results[i], want[i])
		}
	}
	// /dev/null is readable, the pipe's read end has data and its write
	// end room; nothing is exceptional.
	for i, w := range [][]byte{bits(3, 5), bits(4), bits()} {
		if got := mem[i*setSize : (i+1)*setSize]; string(got) != string(w) {
			t.Errorf("set %d after select = %x, want %x", i, got, w)
		}
	}
}

package kernel

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// BenchmarkPipeWriteRead times a write and a read of size bytes through a
// pipe, system calls included, on the fake platform.
func BenchmarkPipeWriteRead(b *testing.B) {
	for _, size := range []uint64{64, 4096, 65536} {
		b.Run(byteSize(size), func(b *testing.B) {
			t := &testing.T{}
			k, task, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
				switch {
				case c.step >= 2*b.N:
					return syscallEvent(st, unix.SYS_EXIT_GROUP, 0)
				case c.step%2 == 0:
					return syscallEvent(st, unix.SYS_WRITE, 4, bufAddr, size)
				default:
					return syscallEvent(st, unix.SYS_READ, 3, bufAddr, size)
				}
			})
			task.mm.insertLocked(&vma{start: bufAddr + 16*pageSize, end: bufAddr + 64*pageSize, perms: platform.ReadWrite, maxPerms: platform.AnyAccess})
			r, w := newPipeFiles(task, 0)
			task.fdt.set(3, r, false, testNOFILE)
			task.fdt.set(4, w, false, testNOFILE)
			b.SetBytes(int64(size))
			b.ResetTimer()
			task.start()
			k.Wait()
		})
	}
}

func byteSize(n uint64) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

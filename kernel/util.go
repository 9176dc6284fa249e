package kernel

import (
	"errors"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/boot/loader"
	"github.com/ringbox/ringbox/platform/memfile"
)

func init() {
	register(unix.SYS_RT_SIGACTION, "rt_sigaction", sysRtSigaction, argSignal, argHex, argHex, argInt)
	register(unix.SYS_RT_SIGPROCMASK, "rt_sigprocmask", sysRtSigprocmask, argInt, argHex, argHex, argInt)
}

// memfileRange is the file range of the page at off.
func memfileRange(off uint64) memfile.FileRange {
	return memfile.FileRange{Start: off, End: off + pageSize}
}

func errorsIsArgsTooLong(err error) bool { return errors.Is(err, loader.ErrArgsTooLong) }

// taskByTID returns the live task with tid, or nil.
func (k *Kernel) taskByTID(tid int32) *Task {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tasks[tid]
}

// parentTGID returns the TGID of the task's parent process, 0 when the
// parent is outside the sandbox (the first process's).
func (t *Task) parentTGID() int32 {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	if p := t.tg.parent; p != nil {
		return p.tgid
	}
	return 0
}

func zapSignal(sig unix.Signal) zap.Field  { return zap.String("signal", unix.SignalName(sig)) }
func zapInt32(k string, v int32) zap.Field { return zap.Int32(k, v) }
func zapHex(k string, v uint64) zap.Field  { return zap.String(k, "0x"+hex(v)) }

func hex(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b [16]byte
	i := len(b)
	for v != 0 {
		i--
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[i:])
}

// negErrno is the RAX value of a failed system call.
func negErrno(e unix.Errno) uint64 { return uint64(-int64(e)) }

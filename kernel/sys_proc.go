package kernel

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

func init() {
	register(unix.SYS_EXIT, "exit", sysExit, argInt)
	register(unix.SYS_EXIT_GROUP, "exit_group", sysExitGroup, argInt)
	register(unix.SYS_GETPID, "getpid", sysGetpid)
	register(unix.SYS_GETTID, "gettid", sysGettid)
	register(unix.SYS_GETPPID, "getppid", sysGetppid)
	register(unix.SYS_GETUID, "getuid", sysGetuid)
	register(unix.SYS_GETEUID, "geteuid", sysGeteuid)
	register(unix.SYS_GETGID, "getgid", sysGetgid)
	register(unix.SYS_GETEGID, "getegid", sysGetegid)
	register(unix.SYS_SET_TID_ADDRESS, "set_tid_address", sysSetTidAddress, argHex)
	register(unix.SYS_SET_ROBUST_LIST, "set_robust_list", sysSetRobustList, argHex, argInt)
	register(unix.SYS_GET_ROBUST_LIST, "get_robust_list", sysGetRobustList, argInt, argHex, argHex)
	register(unix.SYS_UNAME, "uname", sysUname, argHex)
	register(unix.SYS_ARCH_PRCTL, "arch_prctl", sysArchPrctl, argHex, argHex)
	register(unix.SYS_PRLIMIT64, "prlimit64", sysPrlimit64, argInt, argInt, argHex, argHex)
	register(unix.SYS_GETRLIMIT, "getrlimit", sysGetrlimit, argInt, argHex)
	register(unix.SYS_SETRLIMIT, "setrlimit", sysSetrlimit, argInt, argHex)
	register(unix.SYS_GETRANDOM, "getrandom", sysGetrandom, argHex, argInt, argHex)
}

// procPath formats /proc/<pid>/<name>.
func procPath(pid int32, name string) string { return fmt.Sprintf("/proc/%d/%s", pid, name) }

func sysExit(t *Task, a *syscallArgs) (uint64, error) {
	t.exitStatus = ExitStatus{Code: a.int(0) & 0xff}
	return 0, errTaskExit
}

func sysExitGroup(t *Task, a *syscallArgs) (uint64, error) {
	t.groupExit(ExitStatus{Code: a.int(0) & 0xff})
	return 0, errTaskExit
}

func sysGetpid(t *Task, _ *syscallArgs) (uint64, error) { return uint64(t.tg.tgid), nil }
func sysGettid(t *Task, _ *syscallArgs) (uint64, error) { return uint64(t.tid), nil }

// sysGetppid returns the parent's TGID; the first process's parent is
// outside the sandbox's PID namespace, so it sees 0 (pid_namespaces(7)).
func sysGetppid(t *Task, _ *syscallArgs) (uint64, error) {
	return uint64(t.parentTGID()), nil
}

func sysGetuid(t *Task, _ *syscallArgs) (uint64, error)  { return uint64(t.creds.RealUID), nil }
func sysGeteuid(t *Task, _ *syscallArgs) (uint64, error) { return uint64(t.creds.EffectiveUID), nil }
func sysGetgid(t *Task, _ *syscallArgs) (uint64, error)  { return uint64(t.creds.RealGID), nil }
func sysGetegid(t *Task, _ *syscallArgs) (uint64, error) { return uint64(t.creds.EffectiveGID), nil }

func sysSetTidAddress(t *Task, a *syscallArgs) (uint64, error) {
	t.clearChildTID = a.u(0)
	return uint64(t.tid), nil
}

// robustListHeadSize is sizeof(struct robust_list_head) on x86-64.
const robustListHeadSize = 24

func sysSetRobustList(t *Task, a *syscallArgs) (uint64, error) {
	if a.u(1) != robustListHeadSize {
		return 0, unix.EINVAL
	}
	t.robustList, t.robustLen = a.u(0), a.u(1)
	return 0, nil
}

// utsRelease is the kernel release ringbox reports: the Linux ABI it
// implements, marked as ringbox's.
const utsRelease = "6.1.0-ringbox"

func sysUname(t *Task, a *syscallArgs) (uint64, error) {
	var u unix.Utsname
	copy(u.Sysname[:], "Linux")
	copy(u.Nodename[:], t.k.cfg.Hostname)
	copy(u.Release[:], utsRelease)
	copy(u.Version[:], "#1 SMP PREEMPT ringbox")
	copy(u.Machine[:], "x86_64")
	copy(u.Domainname[:], "(none)")
	return 0, t.CopyOut(a.u(0), utsnameBytes(&u))
}

// arch_prctl codes (Linux: arch/x86/include/uapi/asm/prctl.h).
const (
	archSetGS = 0x1001
	archSetFS = 0x1002
	archGetFS = 0x1003
	archGetGS = 0x1004
)

func sysArchPrctl(t *Task, a *syscallArgs) (uint64, error) {
	return t.archPrctl(&t.st.Regs, a.int(0), a.u(1))
}

// archPrctl serves arch_prctl(2) on regs (the caller's, or a stopped
// tracee's for PTRACE_ARCH_PRCTL); the GET codes store the value at addr
// in the caller's memory.
func (t *Task) archPrctl(regs *arch.Registers, code int, addr uint64) (uint64, error) {
	switch code {
	case archSetFS, archSetGS:
		// Linux: arch/x86/kernel/process_64.c do_arch_prctl_64(): EPERM
		// for an address beyond TASK_SIZE_MAX.
		if addr >= arch.MaxUserAddress {
			return 0, unix.EPERM
		}
		if code == archSetFS {
			regs.FsBase = addr
		} else {
			regs.GsBase = addr
		}
		return 0, nil
	case archGetFS, archGetGS:
		v := regs.FsBase
		if code == archGetGS {
			v = regs.GsBase
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		return 0, t.CopyOut(addr, b[:])
	}
	return 0, unix.EINVAL
}

const numRlimits = unix.RLIMIT_RTTIME + 1

func sysPrlimit64(t *Task, a *syscallArgs) (uint64, error) {
	pid, res := a.int(0), a.int(1)
	if pid < 0 {
		return 0, unix.EINVAL
	}
	tg := t.tg
	if pid != 0 && int32(pid) != t.tg.tgid {
		other := t.k.taskByTID(int32(pid))
		if other == nil {
			return 0, unix.ESRCH
		}
		tg = other.tg
	}
	return 0, prlimit(t, tg, res, a.u(2), a.u(3))
}

func prlimit(t *Task, tg *ThreadGroup, res int, newAddr, oldAddr uint64) error {
	if res < 0 || res >= numRlimits {
		return unix.EINVAL
	}
	var nl unix.Rlimit
	if newAddr != 0 {
		var b [16]byte
		if err := t.CopyIn(newAddr, b[:]); err != nil {
			return err
		}
		nl.Cur = binary.LittleEndian.Uint64(b[0:])
		nl.Max = binary.LittleEndian.Uint64(b[8:])
		if nl.Cur > nl.Max {
			return unix.EINVAL
		}
		if res == unix.RLIMIT_NOFILE && nl.Max > 1<<20 {
			// Linux: fs.nr_open default.
			return unix.EPERM
		}
	}
	old := tg.limits.Get(res)
	if newAddr != 0 {
		if nl.Max > old.Max && t.creds.EffectiveUID != 0 {
			// Raising the hard limit needs CAP_SYS_RESOURCE.
			return unix.EPERM
		}
		tg.limits.Set(res, nl)
	}
	if oldAddr != 0 {
		return t.CopyOut(oldAddr, rlimitBytes(&old))
	}
	return nil
}

func sysGetrlimit(t *Task, a *syscallArgs) (uint64, error) {
	return 0, prlimit(t, t.tg, a.int(0), 0, a.u(1))
}

func sysSetrlimit(t *Task, a *syscallArgs) (uint64, error) {
	if a.u(1) == 0 {
		return 0, unix.EFAULT
	}
	return 0, prlimit(t, t.tg, a.int(0), a.u(1), 0)
}

// maxGetrandom is the most getrandom(2) returns in one call (Linux:
// drivers/char/random.c caps a request at MAX_RW_COUNT; urandom reads are
// chunked, and a large request may be short).
const maxGetrandom = 33554431

func sysGetrandom(t *Task, a *syscallArgs) (uint64, error) {
	addr, n, flags := a.u(0), a.u(1), a.u(2)
	if flags&^uint64(unix.GRND_NONBLOCK|unix.GRND_RANDOM|unix.GRND_INSECURE) != 0 {
		return 0, unix.EINVAL
	}
	if flags&(unix.GRND_INSECURE|unix.GRND_RANDOM) == unix.GRND_INSECURE|unix.GRND_RANDOM {
		return 0, unix.EINVAL
	}
	n = min(n, maxGetrandom)
	if !userRangeOK(addr, n) {
		return 0, unix.EFAULT
	}
	buf := make([]byte, min(n, 4096))
	var done uint64
	for done < n {
		c := min(n-done, uint64(len(buf)))
		rand.Read(buf[:c])
		if err := t.CopyOut(addr+done, buf[:c]); err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		done += c
	}
	return done, nil
}

func sysGetRobustList(t *Task, a *syscallArgs) (uint64, error) {
	target := t
	if pid := int32(a.int(0)); pid != 0 {
		if target = t.k.taskByTID(pid); target == nil {
			return 0, unix.ESRCH
		}
		if !t.mayKill(target.tg, 0) {
			return 0, unix.EPERM
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], target.robustList)
	if err := t.CopyOut(a.u(1), b[:]); err != nil {
		return 0, err
	}
	binary.LittleEndian.PutUint64(b[:], robustListHeadSize)
	return 0, t.CopyOut(a.u(2), b[:])
}

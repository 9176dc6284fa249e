package kernel

import (
	"encoding/binary"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/platform"
)

func init() {
	register(unix.SYS_PRCTL, "prctl", sysPrctl, argInt, argHex, argHex, argHex, argHex)
	register(unix.SYS_SYSINFO, "sysinfo", sysSysinfo, argHex)
	register(unix.SYS_MEMBARRIER, "membarrier", sysMembarrier, argInt, argInt, argInt)
	register(unix.SYS_RSEQ, "rseq", sysRseq, argHex, argInt, argHex, argHex)
	register(unix.SYS_PERSONALITY, "personality", sysPersonality, argHex)
	register(unix.SYS_SCHED_YIELD, "sched_yield", sysSchedYield)
	register(unix.SYS_SCHED_GETAFFINITY, "sched_getaffinity", sysSchedGetaffinity, argInt, argInt, argHex)
	register(unix.SYS_SCHED_SETAFFINITY, "sched_setaffinity", sysSchedSetaffinity, argInt, argInt, argHex)
	register(unix.SYS_GETCPU, "getcpu", sysGetcpu, argHex, argHex, argHex)
	register(unix.SYS_SCHED_GETSCHEDULER, "sched_getscheduler", sysSchedGetscheduler, argInt)
	register(unix.SYS_SCHED_GETPARAM, "sched_getparam", sysSchedGetparam, argInt, argHex)
	register(unix.SYS_SCHED_GET_PRIORITY_MAX, "sched_get_priority_max", sysSchedPriorityMax, argInt)
	register(unix.SYS_SCHED_GET_PRIORITY_MIN, "sched_get_priority_min", sysSchedPriorityMin, argInt)
	register(unix.SYS_UMASK, "umask", sysUmask, argHex)
	register(unix.SYS_SCHED_SETSCHEDULER, "sched_setscheduler", sysSchedSetscheduler, argInt, argInt, argHex)
	register(unix.SYS_SCHED_SETPARAM, "sched_setparam", sysSchedSetparam, argInt, argHex)
	register(unix.SYS_SCHED_RR_GET_INTERVAL, "sched_rr_get_interval", sysSchedRRGetInterval, argInt, argHex)
	register(unix.SYS_GETPRIORITY, "getpriority", sysGetpriority, argInt, argInt)
	register(unix.SYS_SETPRIORITY, "setpriority", sysSetpriority, argInt, argInt, argInt)
}

// prctl options (Linux: include/uapi/linux/prctl.h).
const (
	prSetPdeathsig      = 1
	prGetPdeathsig      = 2
	prGetDumpable       = 3
	prSetDumpable       = 4
	prSetName           = 15
	prGetName           = 16
	prSetChildSubreaper = 36
	prGetChildSubreaper = 37
	prSetNoNewPrivs     = 38
	prGetNoNewPrivs     = 39
	prSetPtracer        = 0x59616d61
	prCapbsetRead       = 23
	prGetKeepcaps       = 7
	prSetKeepcaps       = 8
	prSetVMA            = 0x53564d41
	prGetSeccomp        = 21
	prSetSeccomp        = 22
)

// sysPrctl implements prctl(2) for the options programs of the process
// model use; others are EINVAL, as for an unknown option.
func sysPrctl(t *Task, a *syscallArgs) (uint64, error) {
	switch a.int(0) {
	case prSetPdeathsig:
		sig := a.u(1)
		if sig > numSignals {
			return 0, unix.EINVAL
		}
		t.pdeathSignal.Store(int32(sig))
		return 0, nil
	case prGetPdeathsig:
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(t.pdeathSignal.Load()))
		return 0, t.CopyOut(a.u(1), b[:])
	case prGetDumpable:
		return uint64(t.tg.dumpable.Load()), nil
	case prSetDumpable:
		v := a.u(1)
		if v > 1 {
			return 0, unix.EINVAL
		}
		t.tg.dumpable.Store(int32(v))
		return 0, nil
	case prSetName:
		name, err := t.CopyInStringTrunc(a.u(1), 15)
		if err != nil {
			return 0, err
		}
		t.name = name
		return 0, nil
	case prGetName:
		var b [16]byte
		copy(b[:15], t.name)
		return 0, t.CopyOut(a.u(1), b[:])
	case prSetChildSubreaper:
		t.k.mu.Lock()
		t.tg.subreaper = a.u(1) != 0
		t.k.mu.Unlock()
		return 0, nil
	case prGetChildSubreaper:
		t.k.mu.Lock()
		v := t.tg.subreaper
		t.k.mu.Unlock()
		var b [4]byte
		if v {
			b[0] = 1
		}
		return 0, t.CopyOut(a.u(1), b[:])
	case prSetNoNewPrivs:
		if a.u(1) != 1 || a.u(2) != 0 || a.u(3) != 0 || a.u(4) != 0 {
			return 0, unix.EINVAL
		}
		t.noNewPrivs.Store(true)
		return 0, nil
	case prGetNoNewPrivs:
		if a.u(1) != 0 || a.u(2) != 0 || a.u(3) != 0 || a.u(4) != 0 {
			return 0, unix.EINVAL
		}
		if t.noNewPrivs.Load() {
			return 1, nil
		}
		return 0, nil
	case prGetKeepcaps:
		if t.keepCaps {
			return 1, nil
		}
		return 0, nil
	case prSetKeepcaps:
		if a.u(1) > 1 {
			return 0, unix.EINVAL
		}
		t.keepCaps = a.u(1) == 1
		return 0, nil
	case prSetPtracer:
		return 0, t.setPtracer(int64(a.u(1)))
	case prGetSeccomp:
		return uint64(t.sc.mode.Load()), nil
	case prSetSeccomp:
		// kernel/seccomp.c:prctl_set_seccomp(): the modes map to the
		// operations of seccomp(2), with no flags.
		switch a.u(1) {
		case seccompModeStrict:
			return t.seccompSetMode(seccompSetModeStrict, 0, 0)
		case seccompModeFilter:
			return t.seccompSetMode(seccompSetModeFilter, 0, a.u(2))
		}
		return 0, unix.EINVAL
	case prCapbsetRead:
		if a.u(1) > 40 {
			return 0, unix.EINVAL
		}
		return 1, nil
	}
	return 0, unix.EINVAL
}

// CopyInStringTrunc reads a string of at most max bytes, truncating a
// longer one (PR_SET_NAME semantics).
func (t *Task) CopyInStringTrunc(addr uint64, max int) (string, error) {
	b := make([]byte, max)
	n := 0
	for n < max {
		var c [1]byte
		if err := t.CopyIn(addr+uint64(n), c[:]); err != nil {
			if n == 0 {
				return "", err
			}
			break
		}
		if c[0] == 0 {
			break
		}
		b[n] = c[0]
		n++
	}
	return string(b[:n]), nil
}

// sysSysinfo reports the sandbox's view: its memory limit and use, its
// uptime and process count.
func sysSysinfo(t *Task, a *syscallArgs) (uint64, error) {
	k := t.k
	var b [112]byte
	up := int64(time.Since(k.start) / time.Second)
	binary.LittleEndian.PutUint64(b[0:], uint64(up))
	total := k.mf.Size()
	used := k.mf.Usage()
	binary.LittleEndian.PutUint64(b[32:], total)      // totalram
	binary.LittleEndian.PutUint64(b[40:], total-used) // freeram
	k.mu.Lock()
	procs := len(k.tasks)
	k.mu.Unlock()
	binary.LittleEndian.PutUint16(b[80:], uint16(procs))
	binary.LittleEndian.PutUint32(b[104:], 1) // mem_unit
	return 0, t.CopyOut(a.u(0), b[:])
}

// membarrier commands (Linux: include/uapi/linux/membarrier.h).
const (
	membarrierQuery                   = 0
	membarrierGlobal                  = 1 << 0
	membarrierPrivateExpedited        = 1 << 3
	membarrierRegisterPrivateExpedite = 1 << 4
)

// sysMembarrier implements the commands whose effect ringbox guarantees:
// every return to the kernel is a full barrier, and a task that enters the
// kernel for this call has synchronized with... itself only, so the
// expedited commands kick the other vCPUs of the address space.
//
// TODO(ringbox): MEMBARRIER_CMD_PRIVATE_EXPEDITED does not yet interrupt
// other threads running user code; on x86-64 (TSO) the program's own
// fences suffice for the common uses (Go, liburcu's fallback).
func sysMembarrier(t *Task, a *syscallArgs) (uint64, error) {
	cmd, flags := a.int(0), a.int(1)
	if flags != 0 {
		return 0, unix.EINVAL
	}
	switch cmd {
	case membarrierQuery:
		return membarrierGlobal | membarrierPrivateExpedited | membarrierRegisterPrivateExpedite, nil
	case membarrierRegisterPrivateExpedite:
		t.mm.membarrierRegistered.Store(true)
		return 0, nil
	case membarrierGlobal:
		return 0, nil
	case membarrierPrivateExpedited:
		if !t.mm.membarrierRegistered.Load() {
			return 0, unix.EPERM
		}
		return 0, nil
	}
	return 0, unix.EINVAL
}

// sysPersonality accepts PER_LINUX and queries.
func sysPersonality(t *Task, a *syscallArgs) (uint64, error) {
	p := uint32(a.u(0))
	old := t.tg.personality.Load()
	if p != 0xffffffff {
		t.tg.personality.Store(p)
	}
	return uint64(old), nil
}

func sysSchedYield(t *Task, _ *syscallArgs) (uint64, error) {
	runtime.Gosched()
	return 0, nil
}

// cpuMask returns the sandbox's vCPU set as a cpu_set_t prefix.
func (t *Task) cpuMaskBytes(size int) []byte {
	b := make([]byte, size)
	for i := 0; i < t.k.platform.NumCPUs() && i/8 < size; i++ {
		b[i/8] |= 1 << (i % 8)
	}
	return b
}

func sysSchedGetaffinity(t *Task, a *syscallArgs) (uint64, error) {
	pid, size := int32(a.int(0)), a.int(1)
	if size <= 0 || size%8 != 0 {
		return 0, unix.EINVAL
	}
	ncpu := t.k.platform.NumCPUs()
	need := (ncpu + 63) / 64 * 8
	if size < need {
		return 0, unix.EINVAL
	}
	target := t
	if pid != 0 {
		if target = t.k.taskByTID(pid); target == nil {
			return 0, unix.ESRCH
		}
	}
	mask := target.affinity(need)
	return uint64(need), t.CopyOut(a.u(2), mask)
}

func sysSchedSetaffinity(t *Task, a *syscallArgs) (uint64, error) {
	pid, size := int32(a.int(0)), a.int(1)
	if size < 0 {
		return 0, unix.EINVAL
	}
	size = min(size, 1024)
	b := make([]byte, size)
	if err := t.CopyIn(a.u(2), b); err != nil {
		return 0, err
	}
	valid := t.cpuMaskBytes(size)
	any := false
	for i := range b {
		b[i] &= valid[i]
		if b[i] != 0 {
			any = true
		}
	}
	if !any {
		return 0, unix.EINVAL
	}
	target := t
	if pid != 0 {
		if target = t.k.taskByTID(pid); target == nil {
			return 0, unix.ESRCH
		}
	}
	target.affinityMu.Lock()
	target.affinityMask = b
	target.applyAffinityLocked()
	target.affinityMu.Unlock()
	// TODO(ringbox): a target running user code on a vCPU the mask
	// excludes stays there until its next event (at most a time slice);
	// Linux migrates it before returning (kernel/sched/core.c:
	// __set_cpus_allowed_ptr_locked() -> affine_move_task()).
	return 0, nil
}

// applyAffinity gives the task's context its CPU mask (clone inherits
// the parent's).
func (t *Task) applyAffinity() {
	t.affinityMu.Lock()
	defer t.affinityMu.Unlock()
	t.applyAffinityLocked()
}

// applyAffinityLocked limits the task's context to the vCPUs of
// affinityMask, on platforms that can (platform.CPUAffinity). The
// context is the target's, possibly another task's: SetCPUs may be
// called from any goroutine. Holding affinityMu orders concurrent
// sched_setaffinity calls on the target the same in the mask and in the
// platform.
//
// Preconditions: t.affinityMu is held.
func (t *Task) applyAffinityLocked() {
	a, ok := t.ctx.(platform.CPUAffinity)
	if !ok {
		return
	}
	if t.affinityMask == nil {
		a.SetCPUs(nil)
		return
	}
	cpus := make([]bool, t.k.platform.NumCPUs())
	for i := range cpus {
		cpus[i] = i/8 < len(t.affinityMask) && t.affinityMask[i/8]&(1<<(i%8)) != 0
	}
	a.SetCPUs(cpus)
}

// affinity returns the task's CPU mask in size bytes.
func (t *Task) affinity(size int) []byte {
	t.affinityMu.Lock()
	defer t.affinityMu.Unlock()
	out := t.cpuMaskBytes(size)
	if t.affinityMask != nil {
		for i := range out {
			if i < len(t.affinityMask) {
				out[i] &= t.affinityMask[i]
			} else {
				out[i] = 0
			}
		}
	}
	return out
}

// sysGetcpu reports the vCPU the getcpu call was made on; node is always
// 0 (one NUMA node) - getcpu(2).
func sysGetcpu(t *Task, a *syscallArgs) (uint64, error) {
	cpu := t.currentCPU()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(cpu))
	if a.u(0) != 0 {
		if err := t.CopyOut(a.u(0), b[:]); err != nil {
			return 0, err
		}
	}
	if a.u(1) != 0 {
		var z [4]byte
		if err := t.CopyOut(a.u(1), z[:]); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// currentCPU returns the vCPU of the task's last event. The platform
// honours the affinity mask, so that vCPU is in it; should the last event
// have come on no vCPU (an interrupt while waiting for one), it is the
// lowest vCPU the mask allows, the one sched_getaffinity reports first.
func (t *Task) currentCPU() int {
	mask := t.affinity((t.k.platform.NumCPUs() + 7) / 8)
	if cpu := t.lastCPU; cpu >= 0 && cpu/8 < len(mask) && mask[cpu/8]&(1<<(cpu%8)) != 0 {
		return cpu
	}
	for i := 0; i < len(mask)*8; i++ {
		if mask[i/8]&(1<<(i%8)) != 0 {
			return i
		}
	}
	return 0
}

func (t *Task) schedTarget(pid int32) (*Task, error) {
	if pid < 0 {
		return nil, unix.EINVAL
	}
	if pid == 0 {
		return t, nil
	}
	if o := t.k.taskByTID(pid); o != nil {
		return o, nil
	}
	return nil, unix.ESRCH
}

// sysSchedGetscheduler reports the policy set with sched_setscheduler.
func sysSchedGetscheduler(t *Task, a *syscallArgs) (uint64, error) {
	target, err := t.schedTarget(int32(a.int(0)))
	if err != nil {
		return 0, err
	}
	return uint64(target.schedPolicy.Load()), nil
}

func sysSchedGetparam(t *Task, a *syscallArgs) (uint64, error) {
	if a.u(1) == 0 {
		return 0, unix.EINVAL
	}
	target, err := t.schedTarget(int32(a.int(0)))
	if err != nil {
		return 0, err
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(target.schedPrio.Load()))
	return 0, t.CopyOut(a.u(1), b[:])
}

func schedPriorityRange(policy int) (lo, hi int, err error) {
	switch policy {
	case unix.SCHED_FIFO, unix.SCHED_RR:
		return 1, 99, nil
	case unix.SCHED_NORMAL, unix.SCHED_BATCH, unix.SCHED_IDLE, 6: // SCHED_DEADLINE
		return 0, 0, nil
	}
	return 0, 0, unix.EINVAL
}

func sysSchedPriorityMax(t *Task, a *syscallArgs) (uint64, error) {
	_, hi, err := schedPriorityRange(a.int(0))
	return uint64(hi), err
}

func sysSchedPriorityMin(t *Task, a *syscallArgs) (uint64, error) {
	lo, _, err := schedPriorityRange(a.int(0))
	return uint64(lo), err
}

func sysUmask(t *Task, a *syscallArgs) (uint64, error) {
	old := t.fs.umask.Swap(uint32(a.u(0) & 0o777))
	return uint64(old), nil
}

// readSchedParam reads struct sched_param (one int).
func (t *Task) readSchedParam(addr uint64) (int32, error) {
	if addr == 0 {
		return 0, unix.EINVAL
	}
	var b [4]byte
	if err := t.CopyIn(addr, b[:]); err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(b[:])), nil
}

// schedResetOnFork is SCHED_RESET_ON_FORK.
const schedResetOnFork = 0x40000000

// sysSchedSetscheduler records a task's policy and priority; real-time
// policies need CAP_SYS_NICE (Linux: kernel/sched/core.c).
//
// TODO(ringbox): the policy is recorded and reported; the vCPU scheduler
// gives every task the same round-robin slice.
func sysSchedSetscheduler(t *Task, a *syscallArgs) (uint64, error) {
	pid, policy := int32(a.int(0)), a.int(1)
	prio, err := t.readSchedParam(a.u(2))
	if err != nil {
		return 0, err
	}
	target, err := t.schedTarget(pid)
	if err != nil {
		return 0, err
	}
	lo, hi, err := schedPriorityRange(policy &^ schedResetOnFork)
	if err != nil {
		return 0, err
	}
	if int(prio) < lo || int(prio) > hi {
		return 0, unix.EINVAL
	}
	if hi > 0 && !t.creds.has(capSysNice) {
		return 0, unix.EPERM
	}
	target.schedPolicy.Store(int32(policy))
	target.schedPrio.Store(prio)
	return 0, nil
}

func sysSchedSetparam(t *Task, a *syscallArgs) (uint64, error) {
	prio, err := t.readSchedParam(a.u(1))
	if err != nil {
		return 0, err
	}
	target, err := t.schedTarget(int32(a.int(0)))
	if err != nil {
		return 0, err
	}
	lo, hi, _ := schedPriorityRange(int(target.schedPolicy.Load() &^ schedResetOnFork))
	if int(prio) < lo || int(prio) > hi {
		return 0, unix.EINVAL
	}
	target.schedPrio.Store(prio)
	return 0, nil
}

// sysSchedRRGetInterval reports the time slice of the preemption tick.
func sysSchedRRGetInterval(t *Task, a *syscallArgs) (uint64, error) {
	if _, err := t.schedTarget(int32(a.int(0))); err != nil {
		return 0, err
	}
	ts := unix.NsecToTimespec(int64(timeSlice))
	return 0, t.CopyOut(a.u(1), timespecBytes(&ts))
}

// Nice values are kept per thread group and only reported.
//
// TODO(ringbox): nice does not weigh the vCPU scheduling.
func (t *Task) priorityTargets(which, who int) ([]*ThreadGroup, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*ThreadGroup
	switch which {
	case unix.PRIO_PROCESS:
		if who == 0 {
			return []*ThreadGroup{t.tg}, nil
		}
		if g := k.groups[int32(who)]; g != nil && !g.zombie {
			out = append(out, g)
		}
	case unix.PRIO_PGRP:
		pg := int32(who)
		if who == 0 {
			pg = t.tg.pgid
		}
		for _, g := range k.groups {
			if g.pgid == pg && !g.zombie {
				out = append(out, g)
			}
		}
	case unix.PRIO_USER:
		uid := uint32(who)
		if who == 0 {
			uid = t.creds.RealUID
		}
		for _, g := range k.groups {
			if !g.zombie && g.uid() == uid {
				out = append(out, g)
			}
		}
	default:
		return nil, unix.EINVAL
	}
	if len(out) == 0 {
		return nil, unix.ESRCH
	}
	return out, nil
}

// sysGetpriority returns 20 - nice, the raw value of the system call.
func sysGetpriority(t *Task, a *syscallArgs) (uint64, error) {
	gs, err := t.priorityTargets(a.int(0), a.int(1))
	if err != nil {
		return 0, err
	}
	best := int32(19)
	for _, g := range gs {
		best = min(best, g.nice.Load())
	}
	return uint64(20 - best), nil
}

func sysSetpriority(t *Task, a *syscallArgs) (uint64, error) {
	gs, err := t.priorityTargets(a.int(0), a.int(1))
	if err != nil {
		return 0, err
	}
	nice := int32(min(max(a.int(2), -20), 19))
	for _, g := range gs {
		if nice < g.nice.Load() && !t.privileged() {
			return 0, unix.EACCES
		}
		g.nice.Store(nice)
	}
	return 0, nil
}

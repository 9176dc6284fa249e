package kernel

import (
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// System V semaphores (Linux: ipc/sem.c; semget(2), semop(2), semctl(2)).
//
// The sandbox has one IPC namespace. Its semaphore sets live in a
// semNamespace that the Kernel creates on first use. A single mutex guards
// every set, the queues of blocked semop calls and the SEM_UNDO lists:
// Linux locks each set (or each semaphore) on its own, but sandboxed
// programs make few semaphore calls and one lock keeps the all-or-nothing
// semop, the wake-ups and the undo bookkeeping simple to reason about.
// semNamespace.mu is a leaf: nothing else is locked, and no user memory is
// touched, while it is held.
//
// The semop side (atomic operations, the pending queue, SEM_UNDO) is in
// sem_op.go.
//
// TODO(ringbox): the sandbox has a single IPC namespace (clone rejects
// CLONE_NEWIPC); the limits below are fixed, where Linux tunes them
// through /proc/sys/kernel/sem; /proc/sysvipc/sem is missing;
// unshare(CLONE_SYSVSEM), which Linux implements as exit_sem() on the
// caller, awaits an unshare(2) (exitSem is the piece it needs).

func init() {
	register(unix.SYS_SEMGET, "semget", sysSemget, argHex, argInt, argHex)
	register(unix.SYS_SEMCTL, "semctl", sysSemctl, argInt, argInt, argInt, argHex)
	register(unix.SYS_SEMOP, "semop", sysSemop, argInt, argHex, argInt)
	register(unix.SYS_SEMTIMEDOP, "semtimedop", sysSemtimedop, argInt, argHex, argInt, argHex)
}

// Limits of the IPC namespace: Linux's defaults (include/uapi/linux/sem.h,
// include/linux/ipc_namespace.h).
const (
	semMSL = 32000           // SEMMSL: semaphores per set
	semMNI = 32000           // SEMMNI: sets
	semMNS = semMNI * semMSL // SEMMNS: semaphores in all
	semOPM = 500             // SEMOPM: operations per semop call
	semVMX = 32767           // SEMVMX: largest semaphore value
	semAEM = semVMX          // SEMAEM: largest undo adjustment
	semUME = semOPM          // SEMUME
	semMNU = semMNS          // SEMMNU
	semMAP = semMNS          // SEMMAP
	semUSZ = 20              // SEMUSZ

	// ipcMNIShift and ipcMNI split an IPC identifier into a slot index
	// (low bits) and a sequence number (Linux: ipc/util.h, without
	// ipcmni_extend).
	ipcMNIShift = 15
	ipcMNI      = 1 << ipcMNIShift
	// ipcSeqMax is IPCID_SEQ_MAX: the sequence wraps there.
	ipcSeqMax = 0x7fffffff >> ipcMNIShift
)

// semctl(2) commands and semop(2) flags that x/sys/unix lacks
// (include/uapi/linux/sem.h, include/uapi/linux/ipc.h).
const (
	ipcInfo    = 3
	semGetPID  = 11
	semGetVal  = 12
	semGetAll  = 13
	semGetNCnt = 14
	semGetZCnt = 15
	semSetVal  = 16
	semSetAll  = 17
	semStat    = 18
	semInfo    = 19
	semStatAny = 20
	semUndo    = 0x1000 // SEM_UNDO
)

// ABI sizes (x86-64): struct semid64_ds, struct seminfo, struct sembuf.
const (
	semidDSSize = 104
	semInfoSize = 40
	sembufSize  = 6
)

// capIPCOwner bypasses IPC permission checks (capabilities(7)).
const capIPCOwner = unix.CAP_IPC_OWNER

// ipcPerm is an IPC object's ownership and mode (Linux: struct
// kern_ipc_perm).
type ipcPerm struct {
	key        int32
	uid, gid   uint32
	cuid, cgid uint32
	// mode holds the rwxrwxrwx bits.
	mode uint32
	seq  uint16
	id   int32
}

// permitted reports whether c may access p for the rwx bits in flag: the
// owner, group or other class of the mode, as Linux's ipcperms() picks it
// (euid against uid/cuid, fsgid and supplementary groups against
// gid/cgid), with CAP_IPC_OWNER overriding.
func (p *ipcPerm) permitted(c *Credentials, flag int) bool {
	requested := uint32(flag>>6|flag>>3|flag) & 0o7
	granted := p.mode
	switch {
	case c.EffectiveUID == p.cuid || c.EffectiveUID == p.uid:
		granted >>= 6
	case c.inGroup(p.cgid) || c.inGroup(p.gid):
		granted >>= 3
	}
	return requested&^granted == 0 || c.has(capIPCOwner)
}

// isCreatorOrOwner is the check of IPC_SET and IPC_RMID (Linux:
// ipc/util.c:ipcctl_obtain_check()).
func (p *ipcPerm) isCreatorOrOwner(c *Credentials) bool {
	return c.EffectiveUID == p.cuid || c.EffectiveUID == p.uid || c.has(capSysAdmin)
}

// inGroup is Linux's in_group_p(): the filesystem GID or a supplementary
// group.
func (c *Credentials) inGroup(gid uint32) bool {
	if c.FSGID == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// semaphore is one semaphore of a set.
type semaphore struct {
	val int32
	// pid is the TGID of the last process that changed or waited on
	// the value (GETPID).
	pid int32
}

// semSet is a semaphore set (Linux: struct sem_array). Every field is
// protected by semNamespace.mu.
type semSet struct {
	perm  ipcPerm
	sems  []semaphore
	otime int64 // last semop, Unix seconds
	ctime int64 // creation or last change by semctl, Unix seconds
	// pending are the blocked semop calls, oldest first.
	pending []*semQueue
	// undos are the SEM_UNDO entries of processes for this set.
	undos map[*semUndoEntry]struct{}
	// dead is set by IPC_RMID.
	dead bool
}

// semNamespace is the IPC namespace's semaphore table (Linux: sem_ids()
// of struct ipc_namespace).
type semNamespace struct {
	mu sync.Mutex
	// sets are the live sets by slot index; byKey the keyed ones.
	sets  map[int32]*semSet
	byKey map[int32]*semSet
	// lastIdx and seq make identifiers as ipc_idr_alloc() does: slots
	// are handed out cyclically, and the sequence number grows each
	// time the slots wrap, so a stale identifier is not reused soon.
	lastIdx int32
	seq     uint16
	// usedSems counts the semaphores of all sets (SEMMNS).
	usedSems int
}

// sems returns the namespace's semaphore table, creating it on first use.
func (k *Kernel) sems() *semNamespace {
	if ns := k.semNS.Load(); ns != nil {
		return ns
	}
	ns := &semNamespace{sets: make(map[int32]*semSet), byKey: make(map[int32]*semSet), lastIdx: -1}
	if k.semNS.CompareAndSwap(nil, ns) {
		return ns
	}
	return k.semNS.Load()
}

// lookupLocked returns the set with identifier id: EINVAL for a free slot
// or a stale sequence number (Linux: ipc_obtain_object_check()).
//
// Preconditions: ns.mu is held.
func (ns *semNamespace) lookupLocked(id int32) (*semSet, error) {
	if id < 0 {
		return nil, unix.EINVAL
	}
	s, ok := ns.sets[id%ipcMNI]
	if !ok || s.perm.id != id {
		return nil, unix.EINVAL
	}
	return s, nil
}

// newSetLocked creates a set of nsems semaphores (Linux: ipc/sem.c:newary()).
//
// Preconditions: ns.mu is held.
func (ns *semNamespace) newSetLocked(t *Task, key int32, nsems, flg int) (*semSet, error) {
	if nsems == 0 {
		return nil, unix.EINVAL
	}
	if ns.usedSems+nsems > semMNS || len(ns.sets) >= semMNI {
		return nil, unix.ENOSPC
	}
	// A free slot exists: SEMMNI is below IPCMNI.
	idx := ns.lastIdx + 1
	for {
		if idx >= ipcMNI {
			idx = 0
		}
		if _, used := ns.sets[idx]; !used {
			break
		}
		idx++
	}
	if idx <= ns.lastIdx {
		ns.seq++
		if ns.seq >= ipcSeqMax {
			ns.seq = 0
		}
	}
	ns.lastIdx = idx
	c := &t.creds
	s := &semSet{
		perm: ipcPerm{
			key: key, uid: c.EffectiveUID, gid: c.EffectiveGID, cuid: c.EffectiveUID, cgid: c.EffectiveGID,
			mode: uint32(flg) & 0o777, seq: ns.seq, id: int32(ns.seq)<<ipcMNIShift | idx,
		},
		sems:  make([]semaphore, nsems),
		ctime: time.Now().Unix(),
		undos: make(map[*semUndoEntry]struct{}),
	}
	ns.sets[idx] = s
	if key != unix.IPC_PRIVATE {
		ns.byKey[key] = s
	}
	ns.usedSems += nsems
	return s, nil
}

// removeLocked is IPC_RMID (Linux: ipc/sem.c:freeary()): blocked semop
// calls fail with EIDRM and the set's undo entries are dropped.
//
// Preconditions: ns.mu is held.
func (ns *semNamespace) removeLocked(s *semSet) {
	s.dead = true
	delete(ns.sets, s.perm.id%ipcMNI)
	if s.perm.key != unix.IPC_PRIVATE {
		delete(ns.byKey, s.perm.key)
	}
	ns.usedSems -= len(s.sems)
	for _, q := range s.pending {
		q.complete(unix.EIDRM)
	}
	s.pending = nil
	for u := range s.undos {
		delete(u.list.entries, s)
	}
	s.undos = nil
}

// sysSemget is semget(2) (Linux: ipc/sem.c:ksys_semget() and
// ipc/util.c:ipcget()).
func sysSemget(t *Task, a *syscallArgs) (uint64, error) {
	key, nsems, flg := int32(a.int(0)), a.int(1), a.int(2)
	if nsems < 0 || nsems > semMSL {
		return 0, unix.EINVAL
	}
	ns := t.k.sems()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if key == unix.IPC_PRIVATE {
		s, err := ns.newSetLocked(t, key, nsems, flg)
		if err != nil {
			return 0, err
		}
		return uint64(s.perm.id), nil
	}
	s, ok := ns.byKey[key]
	switch {
	case !ok && flg&unix.IPC_CREAT == 0:
		return 0, unix.ENOENT
	case !ok:
		s, err := ns.newSetLocked(t, key, nsems, flg)
		if err != nil {
			return 0, err
		}
		return uint64(s.perm.id), nil
	case flg&(unix.IPC_CREAT|unix.IPC_EXCL) == unix.IPC_CREAT|unix.IPC_EXCL:
		return 0, unix.EEXIST
	case nsems > len(s.sems):
		// Linux: sem_more_checks().
		return 0, unix.EINVAL
	case !s.perm.permitted(&t.creds, flg):
		return 0, unix.EACCES
	}
	return uint64(s.perm.id), nil
}

// sysSemctl is semctl(2) (Linux: ipc/sem.c:ksys_semctl()). The fourth
// argument is union semun passed by value: an int for SETVAL, a pointer
// otherwise. x86-64 has no IPC_64 flag to strip: a command with it is
// unknown, as in Linux.
func sysSemctl(t *Task, a *syscallArgs) (uint64, error) {
	id, semnum, cmd, arg := int32(a.int(0)), a.int(1), a.int(2), a.u(3)
	if id < 0 {
		return 0, unix.EINVAL
	}
	switch cmd {
	case ipcInfo, semInfo:
		return t.semctlInfo(cmd, arg)
	case unix.IPC_STAT, semStat, semStatAny:
		return t.semctlStat(id, cmd, arg)
	case semGetAll, semGetVal, semGetPID, semGetNCnt, semGetZCnt:
		return t.semctlGet(id, semnum, cmd, arg)
	case semSetAll:
		return t.semctlSetAll(id, arg)
	case semSetVal:
		return t.semctlSetVal(id, semnum, int32(arg))
	case unix.IPC_SET, unix.IPC_RMID:
		return t.semctlDown(id, cmd, arg)
	}
	return 0, unix.EINVAL
}

// semctlInfo is IPC_INFO and SEM_INFO: the limits, plus the usage for
// SEM_INFO; the result is the highest slot in use (Linux: semctl_info()).
func (t *Task) semctlInfo(cmd int, addr uint64) (uint64, error) {
	ns := t.k.sems()
	ns.mu.Lock()
	usz, aem := int32(semUSZ), int32(semAEM)
	if cmd == semInfo {
		usz, aem = int32(len(ns.sets)), int32(ns.usedSems)
	}
	maxIdx := int32(0)
	for idx := range ns.sets {
		maxIdx = max(maxIdx, idx)
	}
	ns.mu.Unlock()
	// struct seminfo: semmap, semmni, semmns, semmnu, semmsl, semopm,
	// semume, semusz, semvmx, semaem.
	var b [semInfoSize]byte
	for i, v := range []int32{semMAP, semMNI, semMNS, semMNU, semMSL, semOPM, semUME, usz, semVMX, aem} {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	if err := t.CopyOut(addr, b[:]); err != nil {
		return 0, err
	}
	return uint64(maxIdx), nil
}

// semctlStat is IPC_STAT, SEM_STAT (id is a slot index; the result is the
// set's identifier) and SEM_STAT_ANY (SEM_STAT without the read
// permission check) (Linux: semctl_stat()).
func (t *Task) semctlStat(id int32, cmd int, addr uint64) (uint64, error) {
	ns := t.k.sems()
	ns.mu.Lock()
	var s *semSet
	var err error
	if cmd == unix.IPC_STAT {
		s, err = ns.lookupLocked(id)
	} else if s = ns.sets[id%ipcMNI]; s == nil {
		err = unix.EINVAL
	}
	if err != nil {
		ns.mu.Unlock()
		return 0, err
	}
	if cmd != semStatAny && !s.perm.permitted(&t.creds, 0o444) {
		ns.mu.Unlock()
		return 0, unix.EACCES
	}
	b := s.encodeStatLocked()
	ret := uint64(0)
	if cmd != unix.IPC_STAT {
		ret = uint64(s.perm.id)
	}
	ns.mu.Unlock()
	if err := t.CopyOut(addr, b[:]); err != nil {
		return 0, err
	}
	return ret, nil
}

// encodeStatLocked encodes struct semid64_ds (x86-64: struct ipc64_perm,
// then sem_otime, sem_ctime and sem_nsems, each followed by an unused
// word; include/uapi/asm-generic/ipcbuf.h, arch/x86/include/uapi/asm/
// sembuf.h).
//
// Preconditions: semNamespace.mu is held.
func (s *semSet) encodeStatLocked() [semidDSSize]byte {
	var b [semidDSSize]byte
	le := binary.LittleEndian
	p := &s.perm
	le.PutUint32(b[0:], uint32(p.key))
	le.PutUint32(b[4:], p.uid)
	le.PutUint32(b[8:], p.gid)
	le.PutUint32(b[12:], p.cuid)
	le.PutUint32(b[16:], p.cgid)
	le.PutUint32(b[20:], p.mode)
	le.PutUint16(b[24:], p.seq)
	le.PutUint64(b[48:], uint64(s.otime))
	le.PutUint64(b[64:], uint64(s.ctime))
	le.PutUint64(b[80:], uint64(len(s.sems)))
	return b
}

// semctlGet is GETALL, GETVAL, GETPID, GETNCNT and GETZCNT (Linux:
// semctl_main()).
func (t *Task) semctlGet(id int32, semnum, cmd int, addr uint64) (uint64, error) {
	ns := t.k.sems()
	ns.mu.Lock()
	s, err := ns.lookupLocked(id)
	if err != nil {
		ns.mu.Unlock()
		return 0, err
	}
	if !s.perm.permitted(&t.creds, 0o444) {
		ns.mu.Unlock()
		return 0, unix.EACCES
	}
	if cmd == semGetAll {
		b := make([]byte, 2*len(s.sems))
		for i, sem := range s.sems {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(sem.val))
		}
		ns.mu.Unlock()
		if err := t.CopyOut(addr, b); err != nil {
			return 0, err
		}
		return 0, nil
	}
	defer ns.mu.Unlock()
	if semnum < 0 || semnum >= len(s.sems) {
		return 0, unix.EINVAL
	}
	switch cmd {
	case semGetVal:
		return uint64(s.sems[semnum].val), nil
	case semGetPID:
		return uint64(s.sems[semnum].pid), nil
	case semGetNCnt:
		return uint64(s.countWaitersLocked(semnum, false)), nil
	}
	return uint64(s.countWaitersLocked(semnum, true)), nil
}

// semctlSetAll is SETALL: every value at once, each at most SEMVMX; the
// undo adjustments of the set are cleared (Linux: semctl_main()).
func (t *Task) semctlSetAll(id int32, addr uint64) (uint64, error) {
	ns := t.k.sems()
	ns.mu.Lock()
	s, err := ns.lookupLocked(id)
	if err == nil && !s.perm.permitted(&t.creds, 0o222) {
		err = unix.EACCES
	}
	if err != nil {
		ns.mu.Unlock()
		return 0, err
	}
	n := len(s.sems)
	ns.mu.Unlock()

	// User memory is read without the lock; the set may go meanwhile.
	b := make([]byte, 2*n)
	if err := t.CopyIn(addr, b); err != nil {
		return 0, err
	}
	vals := make([]int32, n)
	for i := range vals {
		if vals[i] = int32(binary.LittleEndian.Uint16(b[2*i:])); vals[i] > semVMX {
			return 0, unix.ERANGE
		}
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if s.dead {
		return 0, unix.EIDRM
	}
	for i, v := range vals {
		s.sems[i] = semaphore{val: v, pid: t.tg.tgid}
	}
	for u := range s.undos {
		clear(u.adj)
	}
	s.ctime = time.Now().Unix()
	s.updateQueueLocked()
	return 0, nil
}

// semctlSetVal is SETVAL: one value in [0, SEMVMX]; the undo adjustments
// of that semaphore are cleared (Linux: semctl_setval()).
func (t *Task) semctlSetVal(id int32, semnum int, val int32) (uint64, error) {
	if val < 0 || val > semVMX {
		return 0, unix.ERANGE
	}
	ns := t.k.sems()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	s, err := ns.lookupLocked(id)
	if err != nil {
		return 0, err
	}
	if semnum < 0 || semnum >= len(s.sems) {
		return 0, unix.EINVAL
	}
	if !s.perm.permitted(&t.creds, 0o222) {
		return 0, unix.EACCES
	}
	for u := range s.undos {
		u.adj[semnum] = 0
	}
	s.sems[semnum] = semaphore{val: val, pid: t.tg.tgid}
	s.ctime = time.Now().Unix()
	s.updateQueueLocked()
	return 0, nil
}

// semctlDown is IPC_SET and IPC_RMID, allowed to the creator, the owner
// and CAP_SYS_ADMIN (Linux: semctl_down(), ipc/util.c:ipc_update_perm()).
func (t *Task) semctlDown(id int32, cmd int, addr uint64) (uint64, error) {
	var in [semidDSSize]byte
	if cmd == unix.IPC_SET {
		if err := t.CopyIn(addr, in[:]); err != nil {
			return 0, err
		}
	}
	ns := t.k.sems()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	s, err := ns.lookupLocked(id)
	if err != nil {
		return 0, err
	}
	if !s.perm.isCreatorOrOwner(&t.creds) {
		return 0, unix.EPERM
	}
	if cmd == unix.IPC_RMID {
		ns.removeLocked(s)
		return 0, nil
	}
	uid, gid := binary.LittleEndian.Uint32(in[4:]), binary.LittleEndian.Uint32(in[8:])
	if uid == ^uint32(0) || gid == ^uint32(0) {
		return 0, unix.EINVAL
	}
	s.perm.uid, s.perm.gid = uid, gid
	s.perm.mode = s.perm.mode&^0o777 | binary.LittleEndian.Uint32(in[20:])&0o777
	s.ctime = time.Now().Unix()
	return 0, nil
}

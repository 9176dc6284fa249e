package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

func init() {
	register(unix.SYS_GETPGID, "getpgid", sysGetpgid, argInt)
	register(unix.SYS_GETPGRP, "getpgrp", sysGetpgrp)
	register(unix.SYS_SETPGID, "setpgid", sysSetpgid, argInt, argInt)
	register(unix.SYS_GETSID, "getsid", sysGetsid, argInt)
	register(unix.SYS_SETSID, "setsid", sysSetsid)
	register(unix.SYS_SETUID, "setuid", sysSetuid, argInt)
	register(unix.SYS_SETGID, "setgid", sysSetgid, argInt)
	register(unix.SYS_SETREUID, "setreuid", sysSetreuid, argInt, argInt)
	register(unix.SYS_SETREGID, "setregid", sysSetregid, argInt, argInt)
	register(unix.SYS_SETRESUID, "setresuid", sysSetresuid, argInt, argInt, argInt)
	register(unix.SYS_SETRESGID, "setresgid", sysSetresgid, argInt, argInt, argInt)
	register(unix.SYS_GETRESUID, "getresuid", sysGetresuid, argHex, argHex, argHex)
	register(unix.SYS_GETRESGID, "getresgid", sysGetresgid, argHex, argHex, argHex)
	register(unix.SYS_SETFSUID, "setfsuid", sysSetfsuid, argInt)
	register(unix.SYS_SETFSGID, "setfsgid", sysSetfsgid, argInt)
	register(unix.SYS_GETGROUPS, "getgroups", sysGetgroups, argInt, argHex)
	register(unix.SYS_SETGROUPS, "setgroups", sysSetgroups, argInt, argHex)
	register(unix.SYS_CAPGET, "capget", sysCapget, argHex, argHex)
	register(unix.SYS_CAPSET, "capset", sysCapset, argHex, argHex)
}

// groupByPid returns the group named by pid (0: the caller's).
func (t *Task) groupByPid(pid int32) *ThreadGroup {
	if pid == 0 {
		return t.tg
	}
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.k.groups[pid]
}

func sysGetpgid(t *Task, a *syscallArgs) (uint64, error) {
	pid := int32(a.int(0))
	if pid < 0 {
		return 0, unix.ESRCH
	}
	g := t.groupByPid(pid)
	if g == nil {
		return 0, unix.ESRCH
	}
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return uint64(g.pgid), nil
}

func sysGetpgrp(t *Task, _ *syscallArgs) (uint64, error) { return uint64(t.pgid()), nil }

func sysGetsid(t *Task, a *syscallArgs) (uint64, error) {
	pid := int32(a.int(0))
	if pid < 0 {
		return 0, unix.ESRCH
	}
	g := t.groupByPid(pid)
	if g == nil {
		return 0, unix.ESRCH
	}
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return uint64(g.sid), nil
}

// sysSetpgid implements setpgid(2) (Linux: kernel/sys.c).
func sysSetpgid(t *Task, a *syscallArgs) (uint64, error) {
	pid, pgid := int32(a.int(0)), int32(a.int(1))
	if pgid < 0 || pid < 0 {
		return 0, unix.EINVAL
	}
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	g := t.tg
	if pid != 0 && pid != t.tg.tgid {
		g = k.groups[pid]
		if g == nil || g.reaped {
			return 0, unix.ESRCH
		}
		if g.parent != t.tg {
			return 0, unix.ESRCH
		}
		if g.sid != t.tg.sid {
			return 0, unix.EPERM
		}
		if g.execed {
			return 0, unix.EACCES
		}
	}
	if pgid == 0 {
		pgid = g.tgid
	}
	if g.sid == g.tgid {
		// A session leader cannot move.
		return 0, unix.EPERM
	}
	if pgid != g.tgid {
		ok := false
		for _, o := range k.groups {
			if o.pgid == pgid && o.sid == t.tg.sid {
				ok = true
				break
			}
		}
		if !ok {
			return 0, unix.EPERM
		}
	}
	g.pgid = pgid
	return 0, nil
}

func sysSetsid(t *Task, _ *syscallArgs) (uint64, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	id := t.tg.tgid
	// EPERM if any process group already has this ID (the caller leads
	// one, or another process uses it).
	for _, o := range k.groups {
		if o.pgid == id {
			return 0, unix.EPERM
		}
	}
	t.tg.pgid, t.tg.sid = id, id
	return uint64(id), nil
}

// Credential changes follow Linux's kernel/sys.c: a privileged task (euid
// 0 stands for CAP_SETUID/CAP_SETGID) may set any value, others only to
// one of their real, effective or saved IDs. -1 keeps a value.
//
// TODO(ringbox): capabilities are modelled as "euid 0 has them all";
// Linux keeps capability sets that the uid changes adjust.

const keepID = 0xffffffff

func (t *Task) privileged() bool { return t.creds.has(capSetuid) }

func idAllowed(v, r, e, s uint32) bool { return v == r || v == e || v == s }

func sysSetuid(t *Task, a *syscallArgs) (uint64, error) {
	old := t.creds
	uid := uint32(a.u(0))
	if uid == keepID {
		return 0, unix.EINVAL
	}
	c := &t.creds
	switch {
	case t.privileged():
		c.RealUID, c.EffectiveUID, c.SavedUID = uid, uid, uid
	case uid == c.RealUID || uid == c.SavedUID:
		c.EffectiveUID = uid
	default:
		return 0, unix.EPERM
	}
	c.FSUID = c.EffectiveUID
	t.credsChanged(old)
	return 0, nil
}

func sysSetgid(t *Task, a *syscallArgs) (uint64, error) {
	old := t.creds
	gid := uint32(a.u(0))
	if gid == keepID {
		return 0, unix.EINVAL
	}
	c := &t.creds
	switch {
	case t.creds.has(capSetgid):
		c.RealGID, c.EffectiveGID, c.SavedGID = gid, gid, gid
	case gid == c.RealGID || gid == c.SavedGID:
		c.EffectiveGID = gid
	default:
		return 0, unix.EPERM
	}
	c.FSGID = c.EffectiveGID
	t.credsChanged(old)
	return 0, nil
}

// idSet is one kind of ID of a task: the user IDs or the group IDs.
type idSet struct{ real, eff, saved, fs *uint32 }

func (t *Task) uids() idSet {
	c := &t.creds
	return idSet{&c.RealUID, &c.EffectiveUID, &c.SavedUID, &c.FSUID}
}

func (t *Task) gids() idSet {
	c := &t.creds
	return idSet{&c.RealGID, &c.EffectiveGID, &c.SavedGID, &c.FSGID}
}

// setre implements setreuid(2)/setregid(2) on ids (Linux: kernel/sys.c
// __sys_setreuid()): the real ID may become the real or effective one,
// the effective any of the three; the saved ID follows the new effective
// one when the real ID is set or the effective one departs from the
// real one.
func (t *Task) setre(ids idSet, r, e uint32, privileged bool) error {
	old := t.creds
	nr, ne := *ids.real, *ids.eff
	if r != keepID {
		if !privileged && r != *ids.real && r != *ids.eff {
			return unix.EPERM
		}
		nr = r
	}
	if e != keepID {
		if !privileged && !idAllowed(e, *ids.real, *ids.eff, *ids.saved) {
			return unix.EPERM
		}
		ne = e
	}
	if r != keepID || (e != keepID && e != *ids.real) {
		*ids.saved = ne
	}
	*ids.real, *ids.eff, *ids.fs = nr, ne, ne
	t.credsChanged(old)
	return nil
}

// setres implements setresuid(2)/setresgid(2) on ids: each of the three
// may become any of the current three, or anything when privileged.
func (t *Task) setres(ids idSet, v [3]uint32, privileged bool) error {
	old := t.creds
	for _, x := range v {
		if x != keepID && !privileged && !idAllowed(x, *ids.real, *ids.eff, *ids.saved) {
			return unix.EPERM
		}
	}
	for i, dst := range []*uint32{ids.real, ids.eff, ids.saved} {
		if v[i] != keepID {
			*dst = v[i]
		}
	}
	*ids.fs = *ids.eff
	t.credsChanged(old)
	return nil
}

func sysSetreuid(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.setre(t.uids(), uint32(a.u(0)), uint32(a.u(1)), t.privileged())
}

func sysSetregid(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.setre(t.gids(), uint32(a.u(0)), uint32(a.u(1)), t.creds.has(capSetgid))
}

func sysSetresuid(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.setres(t.uids(), [3]uint32{uint32(a.u(0)), uint32(a.u(1)), uint32(a.u(2))}, t.privileged())
}

func sysSetresgid(t *Task, a *syscallArgs) (uint64, error) {
	return 0, t.setres(t.gids(), [3]uint32{uint32(a.u(0)), uint32(a.u(1)), uint32(a.u(2))}, t.creds.has(capSetgid))
}

func (t *Task) putIDs(addrs [3]uint64, ids [3]uint32) error {
	for i, a := range addrs {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], ids[i])
		if err := t.CopyOut(a, b[:]); err != nil {
			return err
		}
	}
	return nil
}

func sysGetresuid(t *Task, a *syscallArgs) (uint64, error) {
	c := t.creds
	return 0, t.putIDs([3]uint64{a.u(0), a.u(1), a.u(2)}, [3]uint32{c.RealUID, c.EffectiveUID, c.SavedUID})
}

func sysGetresgid(t *Task, a *syscallArgs) (uint64, error) {
	c := t.creds
	return 0, t.putIDs([3]uint64{a.u(0), a.u(1), a.u(2)}, [3]uint32{c.RealGID, c.EffectiveGID, c.SavedGID})
}

// sysSetfsuid returns the old fsuid whether or not it changed it.
func sysSetfsuid(t *Task, a *syscallArgs) (uint64, error) {
	c := &t.creds
	old := c.FSUID
	v := uint32(a.u(0))
	if t.privileged() || idAllowed(v, c.RealUID, c.EffectiveUID, c.SavedUID) || v == c.FSUID {
		c.FSUID = v
	}
	return uint64(old), nil
}

func sysSetfsgid(t *Task, a *syscallArgs) (uint64, error) {
	c := &t.creds
	old := c.FSGID
	v := uint32(a.u(0))
	if t.creds.has(capSetgid) || idAllowed(v, c.RealGID, c.EffectiveGID, c.SavedGID) || v == c.FSGID {
		c.FSGID = v
	}
	return uint64(old), nil
}

// ngroupsMax is NGROUPS_MAX.
const ngroupsMax = 65536

func sysGetgroups(t *Task, a *syscallArgs) (uint64, error) {
	size := a.int(0)
	g := t.creds.Groups
	if size < 0 {
		return 0, unix.EINVAL
	}
	if size == 0 {
		return uint64(len(g)), nil
	}
	if size < len(g) {
		return 0, unix.EINVAL
	}
	b := make([]byte, 4*len(g))
	for i, v := range g {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return uint64(len(g)), t.CopyOut(a.u(1), b)
}

func sysSetgroups(t *Task, a *syscallArgs) (uint64, error) {
	size := a.int(0)
	if size < 0 || size > ngroupsMax {
		return 0, unix.EINVAL
	}
	if !t.creds.has(capSetgid) {
		return 0, unix.EPERM
	}
	b := make([]byte, 4*size)
	if err := t.CopyIn(a.u(1), b); err != nil {
		return 0, err
	}
	g := make([]uint32, size)
	for i := range g {
		g[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	t.creds.Groups = g
	return 0, nil
}

// credsChanged applies the side effects of a credential change: a
// process whose effective or filesystem IDs change becomes non-dumpable
// (suid_dumpable is 0; Linux: kernel/cred.c:commit_creds()).
func (t *Task) credsChanged(old Credentials) {
	c := &t.creds
	if c.EffectiveUID != old.EffectiveUID || c.EffectiveGID != old.EffectiveGID ||
		c.FSUID != old.FSUID || c.FSGID != old.FSGID {
		t.tg.dumpable.Store(0)
	}
	// Capabilities follow uid changes (Linux: security/commoncap.c:
	// cap_emulate_setxuid()).
	wasRoot := old.RealUID == 0 || old.EffectiveUID == 0 || old.SavedUID == 0
	noRoot := c.RealUID != 0 && c.EffectiveUID != 0 && c.SavedUID != 0
	if wasRoot && noRoot && !t.keepCaps {
		c.CapPermitted, c.CapEffective = 0, 0
	}
	if old.EffectiveUID == 0 && c.EffectiveUID != 0 {
		c.CapEffective = 0
	}
	if old.EffectiveUID != 0 && c.EffectiveUID == 0 {
		c.CapEffective = c.CapPermitted
	}
}

// Capability versions (Linux: include/uapi/linux/capability.h).
const (
	capV1 = 0x19980330
	capV2 = 0x20071026
	capV3 = 0x20080522
)

// capHeader reads struct __user_cap_header_struct and returns the number
// of 32-bit data words of its version; an unknown version is EINVAL with
// the preferred version written back (Linux: kernel/capability.c:
// cap_validate_magic()).
func (t *Task) capHeader(addr uint64) (words int, pid int32, err error) {
	var hdr [8]byte
	if err := t.CopyIn(addr, hdr[:]); err != nil {
		return 0, 0, err
	}
	switch binary.LittleEndian.Uint32(hdr[:]) {
	case capV1:
		words = 1
	case capV2, capV3:
		words = 2
	default:
		binary.LittleEndian.PutUint32(hdr[:], capV3)
		t.CopyOut(addr, hdr[:4])
		return 0, 0, unix.EINVAL
	}
	return words, int32(binary.LittleEndian.Uint32(hdr[4:])), nil
}

// sysCapget implements capget(2).
func sysCapget(t *Task, a *syscallArgs) (uint64, error) {
	words, pid, err := t.capHeader(a.u(0))
	if err != nil {
		if a.u(1) == 0 && err == unix.EINVAL {
			return 0, nil
		}
		return 0, err
	}
	if pid < 0 {
		return 0, unix.EINVAL
	}
	target := t
	if pid != 0 && pid != t.tid {
		if target = t.k.taskByTID(pid); target == nil {
			return 0, unix.ESRCH
		}
	}
	if a.u(1) == 0 {
		return 0, nil
	}
	c := target.creds
	data := make([]byte, 12*words)
	for w := 0; w < words; w++ {
		binary.LittleEndian.PutUint32(data[12*w:], uint32(c.CapEffective>>(32*w)))
		binary.LittleEndian.PutUint32(data[12*w+4:], uint32(c.CapPermitted>>(32*w)))
		binary.LittleEndian.PutUint32(data[12*w+8:], uint32(c.CapInheritable>>(32*w)))
	}
	return 0, t.CopyOut(a.u(1), data)
}

// sysCapset implements capset(2) on the caller itself: the new permitted
// set within the old one, effective within permitted, inheritable within
// the old inheritable and permitted sets (Linux: security/commoncap.c:
// cap_capset()).
func sysCapset(t *Task, a *syscallArgs) (uint64, error) {
	words, pid, err := t.capHeader(a.u(0))
	if err != nil {
		return 0, err
	}
	if pid != 0 && pid != t.tid {
		return 0, unix.EPERM
	}
	data := make([]byte, 12*words)
	if err := t.CopyIn(a.u(1), data); err != nil {
		return 0, err
	}
	var eff, prm, inh uint64
	for w := 0; w < words; w++ {
		eff |= uint64(binary.LittleEndian.Uint32(data[12*w:])) << (32 * w)
		prm |= uint64(binary.LittleEndian.Uint32(data[12*w+4:])) << (32 * w)
		inh |= uint64(binary.LittleEndian.Uint32(data[12*w+8:])) << (32 * w)
	}
	c := &t.creds
	if prm&^c.CapPermitted != 0 || eff&^prm != 0 || inh&^(c.CapInheritable|c.CapPermitted) != 0 {
		return 0, unix.EPERM
	}
	c.CapEffective, c.CapPermitted, c.CapInheritable = eff&capAll, prm&capAll, inh&capAll
	return 0, nil
}

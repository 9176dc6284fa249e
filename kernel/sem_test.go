package kernel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// semProbe prints the header values of the semaphore ABI that sem.go
// defines itself, from the kernel's UAPI headers.
const semProbe = `
#include <linux/ipc.h>
#include <linux/sem.h>
#include <stddef.h>
#include <stdio.h>

#define P(x) printf("%s %lld\n", #x, (long long)(x))

int main(void) {
	P(IPC_INFO); P(GETPID); P(GETVAL); P(GETALL); P(GETNCNT); P(GETZCNT);
	P(SETVAL); P(SETALL); P(SEM_STAT); P(SEM_INFO); P(SEM_STAT_ANY); P(SEM_UNDO);
	P(SEMMSL); P(SEMMNI); P(SEMMNS); P(SEMOPM); P(SEMVMX); P(SEMAEM);
	P(SEMUME); P(SEMMNU); P(SEMMAP); P(SEMUSZ);
	P(sizeof(struct semid64_ds)); P(sizeof(struct seminfo)); P(sizeof(struct sembuf));
	P(offsetof(struct semid64_ds, sem_perm.mode));
	P(offsetof(struct semid64_ds, sem_perm.seq));
	P(offsetof(struct semid64_ds, sem_otime));
	P(offsetof(struct semid64_ds, sem_ctime));
	P(offsetof(struct semid64_ds, sem_nsems));
	return 0;
}
`

// TestSemConstantsAgainstHeaders checks sem.go's ABI constants against
// the C headers.
func TestSemConstantsAgainstHeaders(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc not installed: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte(semProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "probe")
	if out, err := exec.Command("gcc", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	header := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("probe output %q: %v", line, err)
		}
		header[line[:i]] = v
	}
	for _, tc := range []struct {
		name string
		got  int64
	}{
		{"IPC_INFO", ipcInfo}, {"GETPID", semGetPID}, {"GETVAL", semGetVal},
		{"GETALL", semGetAll}, {"GETNCNT", semGetNCnt}, {"GETZCNT", semGetZCnt},
		{"SETVAL", semSetVal}, {"SETALL", semSetAll}, {"SEM_STAT", semStat},
		{"SEM_INFO", semInfo}, {"SEM_STAT_ANY", semStatAny}, {"SEM_UNDO", semUndo},
		{"SEMMSL", semMSL}, {"SEMMNI", semMNI}, {"SEMMNS", semMNS}, {"SEMOPM", semOPM},
		{"SEMVMX", semVMX}, {"SEMAEM", semAEM}, {"SEMUME", semUME}, {"SEMMNU", semMNU},
		{"SEMMAP", semMAP}, {"SEMUSZ", semUSZ},
		{"sizeof(struct semid64_ds)", semidDSSize},
		{"sizeof(struct seminfo)", semInfoSize},
		{"sizeof(struct sembuf)", sembufSize},
		{"offsetof(struct semid64_ds, sem_perm.mode)", 20},
		{"offsetof(struct semid64_ds, sem_perm.seq)", 24},
		{"offsetof(struct semid64_ds, sem_otime)", 48},
		{"offsetof(struct semid64_ds, sem_ctime)", 64},
		{"offsetof(struct semid64_ds, sem_nsems)", 80},
	} {
		want, ok := header[tc.name]
		if !ok {
			t.Errorf("%s: not printed by the probe", tc.name)
			continue
		}
		if tc.got != want {
			t.Errorf("%s = %d, want %d (header)", tc.name, tc.got, want)
		}
	}
}

// semCall runs system call fn for task with raw arguments.
func semCall(task *Task, fn syscallFn, args ...uint64) (uint64, error) {
	var a syscallArgs
	copy(a.a[:], args)
	return fn(task, &a)
}

// putSembufs writes struct sembuf {num, op, flg} triples at dataAddr.
func putSembufs(t *testing.T, task *Task, sops ...[3]int16) {
	t.Helper()
	b := make([]byte, sembufSize*len(sops))
	for i, s := range sops {
		for j, v := range s {
			binary.LittleEndian.PutUint16(b[sembufSize*i+2*j:], uint16(v))
		}
	}
	if err := task.CopyOut(dataAddr, b); err != nil {
		t.Fatal(err)
	}
}

// semValues returns the set's values.
func semValues(task *Task, id uint64) []int32 {
	ns := task.k.sems()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	s, err := ns.lookupLocked(int32(id))
	if err != nil {
		return nil
	}
	v := make([]int32, len(s.sems))
	for i, sem := range s.sems {
		v[i] = sem.val
	}
	return v
}

// newSemProcess returns a second process sharing task's memory (so that
// both read the same sembuf arrays), with a SIGUSR1 handler.
func newSemProcess(t *testing.T, task *Task) *Task {
	t.Helper()
	other, err := task.k.newTask(2, task)
	if err != nil {
		t.Fatal(err)
	}
	other.mm = task.mm
	task.mm.incUsers()
	h := other.tg.handlers.Load()
	h.mu.Lock()
	h.actions[unix.SIGUSR1-1].Handler = 0x1000
	h.mu.Unlock()
	return other
}

// waitSemWaiters spins until a call is blocked on semaphore num of set id
// (GETNCNT or GETZCNT is n): a change now tests the wake path.
func waitSemWaiters(task *Task, id uint64, num int, zero bool, n int) {
	for {
		cmd := semGetNCnt
		if zero {
			cmd = semGetZCnt
		}
		if got, _ := semCall(task, sysSemctl, id, uint64(num), uint64(cmd)); int(got) == n {
			return
		}
		runtime.Gosched()
	}
}

func TestSemget(t *testing.T) {
	task := newIdleTask(t)
	const key = 0x1234
	for _, tc := range []struct {
		name      string
		key       int32
		nsems     int
		flg       int
		want      error
		sameAsKey bool
	}{
		{"no semaphores", unix.IPC_PRIVATE, 0, 0o600, unix.EINVAL, false},
		{"over SEMMSL", unix.IPC_PRIVATE, semMSL + 1, 0o600, unix.EINVAL, false},
		{"negative count", unix.IPC_PRIVATE, -1, 0o600, unix.EINVAL, false},
		{"missing key", key, 2, 0o600, unix.ENOENT, false},
		{"create keyed", key, 2, unix.IPC_CREAT | 0o640, nil, true},
		{"open keyed", key, 2, 0o600, nil, true},
		{"open keyed, count 0", key, 0, 0, nil, true},
		{"open keyed, more semaphores", key, 3, 0, unix.EINVAL, false},
		{"IPC_EXCL", key, 2, unix.IPC_CREAT | unix.IPC_EXCL, unix.EEXIST, false},
		{"IPC_CREAT alone opens", key, 1, unix.IPC_CREAT | 0o600, nil, true},
		{"private", unix.IPC_PRIVATE, semMSL, 0o600, nil, false},
	} {
		got, err := semCall(task, sysSemget, uint64(tc.key), uint64(tc.nsems), uint64(tc.flg))
		if err != tc.want {
			t.Errorf("%s: semget = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err != nil {
			continue
		}
		keyed, _ := semCall(task, sysSemget, key, 0, 0)
		if (got == keyed) != tc.sameAsKey {
			t.Errorf("%s: semget = %d, keyed set %d: same %v, want %v", tc.name, got, keyed, got == keyed, tc.sameAsKey)
		}
	}

	// Another user: the mode decides; root's capabilities bypass it.
	id, _ := semCall(task, sysSemget, key, 0, 0)
	task.creds = Credentials{EffectiveUID: 1000, FSGID: 1000}
	for _, tc := range []struct {
		name string
		fn   syscallFn
		args []uint64
		want error
	}{
		{"semget for reading, group class", sysSemget, []uint64{key, 0, 0o040}, unix.EACCES},
		{"semget with no access asked", sysSemget, []uint64{key, 0, 0}, nil},
		{"GETVAL", sysSemctl, []uint64{id, 0, semGetVal}, unix.EACCES},
		{"SETVAL", sysSemctl, []uint64{id, 0, semSetVal, 1}, unix.EACCES},
		{"IPC_RMID", sysSemctl, []uint64{id, 0, unix.IPC_RMID}, unix.EPERM},
	} {
		if _, err := semCall(task, tc.fn, tc.args...); err != tc.want {
			t.Errorf("uid 1000, %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	task.creds.Groups = []uint32{0}
	if _, err := semCall(task, sysSemctl, id, 0, semGetVal); err != nil {
		t.Errorf("uid 1000 in group 0, GETVAL of a 0640 set: %v, want nil", err)
	}
	task.creds.CapEffective = 1 << capIPCOwner
	task.creds.Groups = nil
	if _, err := semCall(task, sysSemctl, id, 0, semSetVal, 1); err != nil {
		t.Errorf("CAP_IPC_OWNER, SETVAL: %v, want nil", err)
	}
}

func TestSemctl(t *testing.T) {
	task := newIdleTask(t)
	id, err := semCall(task, sysSemget, unix.IPC_PRIVATE, 3, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	vals := func(v ...uint16) {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], x)
		}
		if err := task.CopyOut(dataAddr, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func()
		args  []uint64
		want  uint64
		err   error
	}{
		{"SETVAL over SEMVMX", nil, []uint64{id, 0, semSetVal, semVMX + 1}, 0, unix.ERANGE},
		{"SETVAL negative", nil, []uint64{id, 0, semSetVal, 0xffffffff}, 0, unix.ERANGE},
		{"SETVAL semnum out of range", nil, []uint64{id, 3, semSetVal, 1}, 0, unix.EINVAL},
		{"SETVAL SEMVMX", nil, []uint64{id, 1, semSetVal, semVMX}, 0, nil},
		{"GETVAL", nil, []uint64{id, 1, semGetVal}, semVMX, nil},
		{"GETPID", nil, []uint64{id, 1, semGetPID}, 1, nil},
		{"GETVAL semnum out of range", nil, []uint64{id, 3, semGetVal}, 0, unix.EINVAL},
		{"negative id", nil, []uint64{^uint64(0), 0, semGetVal}, 0, unix.EINVAL},
		{"stale id", nil, []uint64{id + ipcMNI, 0, semGetVal}, 0, unix.EINVAL},
		{"IPC_64 flag", nil, []uint64{id, 0, 0x100 | semGetVal}, 0, unix.EINVAL},
		{"unknown command", nil, []uint64{id, 0, 99}, 0, unix.EINVAL},
		{"SETALL over SEMVMX", func() { vals(1, 2, semVMX+1) }, []uint64{id, 0, semSetAll, dataAddr}, 0, unix.ERANGE},
		{"SETALL", func() { vals(4, 5, 6) }, []uint64{id, 0, semSetAll, dataAddr}, 0, nil},
		{"GETVAL after SETALL", nil, []uint64{id, 2, semGetVal}, 6, nil},
		{"GETALL fault", nil, []uint64{id, 0, semGetAll, 8}, 0, unix.EFAULT},
		{"IPC_STAT", nil, []uint64{id, 0, unix.IPC_STAT, dataAddr}, 0, nil},
		{"SEM_STAT returns the id", nil, []uint64{id % ipcMNI, 0, semStat, dataAddr}, id, nil},
		{"IPC_INFO returns the highest slot", nil, []uint64{0, 0, ipcInfo, dataAddr}, id % ipcMNI, nil},
		{"IPC_SET fault", nil, []uint64{id, 0, unix.IPC_SET, 8}, 0, unix.EFAULT},
		{"IPC_RMID", nil, []uint64{id, 0, unix.IPC_RMID}, 0, nil},
		{"IPC_RMID again", nil, []uint64{id, 0, unix.IPC_RMID}, 0, unix.EINVAL},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		got, err := semCall(task, sysSemctl, tc.args...)
		if got != tc.want || err != tc.err {
			t.Errorf("%s: semctl = %d, %v; want %d, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestSemctlStatAndSet(t *testing.T) {
	task := newIdleTask(t)
	id, _ := semCall(task, sysSemget, 77, 2, unix.IPC_CREAT|0o644)
	b := make([]byte, semidDSSize)
	binary.LittleEndian.PutUint32(b[4:], 1000)    // uid
	binary.LittleEndian.PutUint32(b[8:], 100)     // gid
	binary.LittleEndian.PutUint32(b[20:], 0o7600) // mode: only the rwx bits count
	if err := task.CopyOut(dataAddr, b); err != nil {
		t.Fatal(err)
	}
	if _, err := semCall(task, sysSemctl, id, 0, unix.IPC_SET, dataAddr); err != nil {
		t.Fatalf("IPC_SET: %v", err)
	}
	if _, err := semCall(task, sysSemctl, id, 0, unix.IPC_STAT, dataAddr); err != nil {
		t.Fatalf("IPC_STAT: %v", err)
	}
	if err := task.CopyIn(dataAddr, b); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, tc := range []struct {
		field     string
		got, want uint64
	}{
		{"key", uint64(le.Uint32(b[0:])), 77},
		{"uid", uint64(le.Uint32(b[4:])), 1000},
		{"gid", uint64(le.Uint32(b[8:])), 100},
		{"cuid", uint64(le.Uint32(b[12:])), 0},
		{"mode", uint64(le.Uint32(b[20:])), 0o600},
		{"sem_otime", le.Uint64(b[48:]), 0},
		{"sem_nsems", le.Uint64(b[80:]), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("IPC_STAT %s = %#o, want %#o", tc.field, tc.got, tc.want)
		}
	}
	if le.Uint64(b[64:]) == 0 {
		t.Errorf("IPC_STAT sem_ctime = 0, want the time of IPC_SET")
	}
}

func TestSemopAtomic(t *testing.T) {
	task := newIdleTask(t)
	id, _ := semCall(task, sysSemget, unix.IPC_PRIVATE, 3, 0o600)
	for _, tc := range []struct {
		name  string
		sops  [][3]int16
		nsops uint64
		err   error
		want  []int32
	}{
		{"no operations", [][3]int16{{0, 1, 0}}, 0, unix.EINVAL, []int32{0, 0, 0}},
		{"over SEMOPM", [][3]int16{{0, 1, 0}}, semOPM + 1, unix.E2BIG, []int32{0, 0, 0}},
		{"semnum past the set", [][3]int16{{3, 1, 0}}, 1, unix.EFBIG, []int32{0, 0, 0}},
		{"increments", [][3]int16{{0, 2, 0}, {1, 1, 0}}, 2, nil, []int32{2, 1, 0}},
		{"second would block: nothing done", [][3]int16{{0, -1, 0}, {2, -1, unix.IPC_NOWAIT}}, 2, unix.EAGAIN, []int32{2, 1, 0}},
		{"wait for zero, IPC_NOWAIT", [][3]int16{{0, 0, unix.IPC_NOWAIT}}, 1, unix.EAGAIN, []int32{2, 1, 0}},
		{"zero already", [][3]int16{{2, 0, 0}}, 1, nil, []int32{2, 1, 0}},
		{"over SEMVMX: nothing done", [][3]int16{{0, -1, 0}, {2, semVMX, 0}, {2, 1, 0}}, 3, unix.ERANGE, []int32{2, 1, 0}},
		{"same semaphore twice, in order", [][3]int16{{0, -2, 0}, {0, 0, 0}, {0, 5, 0}}, 3, nil, []int32{5, 1, 0}},
		{"undo within SEMAEM", [][3]int16{{2, semVMX, semUndo}}, 1, nil, []int32{5, 1, semVMX}},
		{"down without undo", [][3]int16{{2, -semVMX, 0}}, 1, nil, []int32{5, 1, 0}},
		{"undo past -SEMAEM-1", [][3]int16{{2, 2, semUndo}}, 1, unix.ERANGE, []int32{5, 1, 0}},
	} {
		putSembufs(t, task, tc.sops...)
		if _, err := semCall(task, sysSemop, id, dataAddr, tc.nsops); err != tc.err {
			t.Errorf("%s: semop = %v, want %v", tc.name, err, tc.err)
		}
		if got := semValues(task, id); !equalInt32s(got, tc.want) {
			t.Errorf("%s: values %v, want %v", tc.name, got, tc.want)
		}
	}
}

func equalInt32s(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSemopWaits(t *testing.T) {
	for _, tc := range []struct {
		name string
		// sop is what the waiter (another process) runs.
		sop  [3]int16
		zero bool
		// end ends the wait, as the first process.
		end  func(t *testing.T, task, waiter *Task, id uint64)
		want error
	}{
		{"decrement woken by an increment", [3]int16{0, -2, 0}, false, func(t *testing.T, task, _ *Task, id uint64) {
			putSembufs(t, task, [3]int16{0, 1, 0})
			semCall(task, sysSemop, id, dataAddr, 1)
			// One is not enough: the waiter stays queued.
			waitSemWaiters(task, id, 0, false, 1)
			semCall(task, sysSemop, id, dataAddr, 1)
		}, nil},
		{"wait for zero woken by SETVAL", [3]int16{0, 0, 0}, true, func(t *testing.T, task, _ *Task, id uint64) {
			semCall(task, sysSemctl, id, 0, semSetVal, 0)
		}, nil},
		{"signal", [3]int16{0, -5, 0}, false, func(t *testing.T, _, waiter *Task, _ uint64) {
			waiter.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
		}, unix.EINTR},
		{"set removed", [3]int16{0, -5, 0}, false, func(t *testing.T, task, _ *Task, id uint64) {
			semCall(task, sysSemctl, id, 0, unix.IPC_RMID)
		}, unix.EIDRM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := newIdleTask(t)
			waiter := newSemProcess(t, task)
			id, _ := semCall(task, sysSemget, unix.IPC_PRIVATE, 1, 0o600)
			if tc.zero {
				semCall(task, sysSemctl, id, 0, semSetVal, 3)
			}
			// The waiter's sembuf is at dataAddr+64, apart from the
			// first process's.
			b := make([]byte, sembufSize)
			for j, v := range tc.sop {
				binary.LittleEndian.PutUint16(b[2*j:], uint16(v))
			}
			if err := task.CopyOut(dataAddr+64, b); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := semCall(waiter, sysSemop, id, dataAddr+64, 1)
				done <- err
			}()
			waitSemWaiters(task, id, 0, tc.zero, 1)
			tc.end(t, task, waiter, id)
			if err := <-done; err != tc.want {
				t.Errorf("semop = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				if pid, _ := semCall(task, sysSemctl, id, 0, semGetPID); pid != 2 {
					t.Errorf("GETPID after the woken call = %d, want the waiter's 2", pid)
				}
			}
			if tc.want != unix.EIDRM {
				if n, _ := semCall(task, sysSemctl, id, 0, semGetNCnt); n != 0 {
					t.Errorf("GETNCNT after the wait = %d, want 0", n)
				}
			}
		})
	}
}

func TestSemtimedop(t *testing.T) {
	task := newIdleTask(t)
	id, _ := semCall(task, sysSemget, unix.IPC_PRIVATE, 1, 0o600)
	putSembufs(t, task, [3]int16{0, -1, 0})
	ts := make([]byte, 16)
	for _, tc := range []struct {
		name       string
		sec, nsec  int64
		timeoutArg uint64
		want       error
	}{
		{"times out", 0, 1000, dataAddr + 64, unix.EAGAIN},
		{"zero timeout", 0, 0, dataAddr + 64, unix.EAGAIN},
		{"invalid nanoseconds", 0, 1e9, dataAddr + 64, unix.EINVAL},
		{"negative seconds", -1, 0, dataAddr + 64, unix.EINVAL},
		{"unreadable timeout", 0, 0, 8, unix.EFAULT},
	} {
		binary.LittleEndian.PutUint64(ts[0:], uint64(tc.sec))
		binary.LittleEndian.PutUint64(ts[8:], uint64(tc.nsec))
		if err := task.CopyOut(dataAddr+64, ts); err != nil {
			t.Fatal(err)
		}
		if _, err := semCall(task, sysSemtimedop, id, dataAddr, 1, tc.timeoutArg); err != tc.want {
			t.Errorf("%s: semtimedop = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n, _ := semCall(task, sysSemctl, id, 0, semGetNCnt); n != 0 {
		t.Errorf("GETNCNT after the timeouts = %d, want 0", n)
	}
}

func TestSemUndo(t *testing.T) {
	task := newIdleTask(t)
	other := newSemProcess(t, task)
	id, _ := semCall(task, sysSemget, unix.IPC_PRIVATE, 2, 0o600)
	up := func(p *Task, num, n int16) {
		t.Helper()
		putSembufs(t, task, [3]int16{num, n, semUndo})
		if _, err := semCall(p, sysSemop, id, dataAddr, 1); err != nil {
			t.Fatalf("semop(%d, %+d, SEM_UNDO): %v", num, n, err)
		}
	}

	// CLONE_SYSVSEM shares the list: applied when the last user exits.
	up(task, 0, 1)
	child := task.k.newTaskStruct(3, other.tg, nil)
	child.mm = task.mm
	child.semUndo = task.cloneSemUndo(unix.CLONE_SYSVSEM)
	up(child, 0, 1)
	child.exitSem()
	if got, want := semValues(task, id), []int32{2, 0}; !equalInt32s(got, want) {
		t.Errorf("after the sharing child's exit: %v, want %v", got, want)
	}
	task.exitSem()
	if got, want := semValues(task, id), []int32{0, 0}; !equalInt32s(got, want) {
		t.Errorf("after the last user's exit: %v, want %v", got, want)
	}

	// Without it the child starts with no list.
	if l := task.cloneSemUndo(unix.CLONE_VM); l != nil {
		t.Errorf("clone without CLONE_SYSVSEM shares the undo list")
	}

	// Applied values are clamped at 0; SETVAL clears adjustments.
	up(other, 0, 5)
	up(other, 1, 3)
	putSembufs(t, task, [3]int16{0, -4, 0})
	semCall(task, sysSemop, id, dataAddr, 1)
	semCall(task, sysSemctl, id, 1, semSetVal, 7)
	other.exitSem()
	if got, want := semValues(task, id), []int32{0, 7}; !equalInt32s(got, want) {
		t.Errorf("after exit with clamping and SETVAL: %v, want %v", got, want)
	}

	// A removed set's adjustments are dropped.
	up(task, 0, 2)
	semCall(task, sysSemctl, id, 0, unix.IPC_RMID)
	if n := len(task.semUndo.entries); n != 0 {
		t.Errorf("undo entries after IPC_RMID = %d, want 0", n)
	}
	task.exitSem()
}

// TestSemopCheckOrder: with several faults at once, the error is the one
// Linux checks first (ksys_semtimedop(), do_semtimedop()).
func TestSemopCheckOrder(t *testing.T) {
	task := newIdleTask(t)
	putSembufs(t, task, [3]int16{0, 1, 0})
	ts := make([]byte, 16)
	binary.LittleEndian.PutUint64(ts[8:], 1e9) // invalid tv_nsec
	if err := task.CopyOut(dataAddr+64, ts); err != nil {
		t.Fatal(err)
	}
	const neg = ^uint64(0)
	for _, tc := range []struct {
		name                    string
		id, sops, nsops, tsAddr uint64
		want                    error
	}{
		{"unreadable timeout first", neg, 8, 0, 8, unix.EFAULT},
		{"count over SEMOPM before the id", neg, dataAddr, semOPM + 1, 0, unix.E2BIG},
		{"no operations", 0, dataAddr, 0, 0, unix.EINVAL},
		{"unreadable operations before the id", neg, 8, 1, 0, unix.EFAULT},
		{"negative id", neg, dataAddr, 1, 0, unix.EINVAL},
		{"invalid timeout before the lookup", 12345, dataAddr, 1, dataAddr + 64, unix.EINVAL},
		{"unknown id", 12345, dataAddr, 1, 0, unix.EINVAL},
	} {
		if _, err := semCall(task, sysSemtimedop, tc.id, tc.sops, tc.nsops, tc.tsAddr); err != tc.want {
			t.Errorf("%s: semtimedop = %v, want %v", tc.name, err, tc.want)
		}
	}
}

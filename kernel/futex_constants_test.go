package kernel

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// constantsProbe prints the header values of the futex, timer and clock
// ABI constants that the kernel defines itself (x/sys/unix lacks them),
// and the CPU clock IDs the C library computes for the probe itself.
const constantsProbe = `
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define P(x) printf("%s %lld\n", #x, (long long)(x))

int main(void) {
	P(FUTEX_WAIT); P(FUTEX_WAKE); P(FUTEX_REQUEUE); P(FUTEX_CMP_REQUEUE);
	P(FUTEX_WAKE_OP); P(FUTEX_LOCK_PI); P(FUTEX_WAIT_BITSET);
	P(FUTEX_WAKE_BITSET); P(FUTEX_WAIT_REQUEUE_PI); P(FUTEX_LOCK_PI2);
	P(FUTEX_UNLOCK_PI); P(FUTEX_TRYLOCK_PI); P(FUTEX_CMP_REQUEUE_PI);
	P(FUTEX_PRIVATE_FLAG); P(FUTEX_CLOCK_REALTIME); P(FUTEX_BITSET_MATCH_ANY);
	P(FUTEX_WAITERS); P(FUTEX_OWNER_DIED); P(FUTEX_TID_MASK);
	P(FUTEX_OP_SET); P(FUTEX_OP_ADD); P(FUTEX_OP_OR); P(FUTEX_OP_ANDN);
	P(FUTEX_OP_XOR); P(FUTEX_OP_OPARG_SHIFT);
	P(FUTEX_OP_CMP_EQ); P(FUTEX_OP_CMP_NE); P(FUTEX_OP_CMP_LT);
	P(FUTEX_OP_CMP_LE); P(FUTEX_OP_CMP_GT); P(FUTEX_OP_CMP_GE);
	P(SIGEV_SIGNAL); P(SIGEV_NONE); P(SIGEV_THREAD); P(SIGEV_THREAD_ID);
	P(sizeof(struct sigevent));
	P(offsetof(struct sigevent, sigev_signo));
	P(offsetof(struct sigevent, sigev_notify));
	P(offsetof(struct sigevent, _sigev_un._tid));
	P(sizeof(struct rusage)); P(offsetof(struct rusage, ru_maxrss));
	clockid_t c;
	if (clock_getcpuclockid(getpid(), &c) == 0)
		P(c);
	if (pthread_getcpuclockid(pthread_self(), &c) == 0)
		printf("thread_clock %lld\n", (long long)c);
	printf("pid %lld\n", (long long)getpid());
	printf("tid %lld\n", (long long)syscall(SYS_gettid));
	return 0;
}
`

// TestABIConstantsAgainstHeaders checks the constants of futex.go,
// sys_timer.go and time.go against the C headers and the C library.
func TestABIConstantsAgainstHeaders(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc not installed: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte(constantsProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "probe")
	if out, err := exec.Command("gcc", "-o", bin, src, "-pthread").CombinedOutput(); err != nil {
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
		name, val := line[:max(i, 0)], line[i+1:]
		v, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			t.Fatalf("probe output %q: %v", sc.Text(), err)
		}
		header[name] = v
	}
	pid, tid := int32(header["pid"]), int32(header["tid"])
	tests := []struct {
		name string
		got  int64
	}{
		{"FUTEX_WAIT", futexOpWait},
		{"FUTEX_WAKE", futexOpWake},
		{"FUTEX_REQUEUE", futexOpRequeue},
		{"FUTEX_CMP_REQUEUE", futexOpCmpRequeue},
		{"FUTEX_WAKE_OP", futexOpWakeOp},
		{"FUTEX_LOCK_PI", futexOpLockPI},
		{"FUTEX_WAIT_BITSET", futexOpWaitBitset},
		{"FUTEX_WAKE_BITSET", futexOpWakeBitset},
		{"FUTEX_WAIT_REQUEUE_PI", futexOpWaitRequeuePI},
		{"FUTEX_LOCK_PI2", futexOpLockPI2},
		{"FUTEX_UNLOCK_PI", futexOpUnlockPI},
		{"FUTEX_TRYLOCK_PI", futexOpTrylockPI},
		{"FUTEX_CMP_REQUEUE_PI", futexOpCmpRequeuePI},
		{"FUTEX_PRIVATE_FLAG", futexPrivateFlag},
		{"FUTEX_CLOCK_REALTIME", futexClockRealtime},
		{"FUTEX_BITSET_MATCH_ANY", futexBitsetMatchAny},
		{"FUTEX_WAITERS", robustFutexWaiters},
		{"FUTEX_OWNER_DIED", robustFutexOwnerDied},
		{"FUTEX_TID_MASK", robustFutexTIDMask},
		{"FUTEX_OP_SET", futexWakeOpSet},
		{"FUTEX_OP_ADD", futexWakeOpAdd},
		{"FUTEX_OP_OR", futexWakeOpOr},
		{"FUTEX_OP_ANDN", futexWakeOpAndn},
		{"FUTEX_OP_XOR", futexWakeOpXor},
		{"FUTEX_OP_OPARG_SHIFT", futexWakeOpOpargShift},
		{"FUTEX_OP_CMP_EQ", futexWakeCmpEq},
		{"FUTEX_OP_CMP_NE", futexWakeCmpNe},
		{"FUTEX_OP_CMP_LT", futexWakeCmpLt},
		{"FUTEX_OP_CMP_LE", futexWakeCmpLe},
		{"FUTEX_OP_CMP_GT", futexWakeCmpGt},
		{"FUTEX_OP_CMP_GE", futexWakeCmpGe},
		{"SIGEV_SIGNAL", sigevSignal},
		{"SIGEV_NONE", sigevNone},
		{"SIGEV_THREAD", sigevThread},
		{"SIGEV_THREAD_ID", sigevThreadID},
		{"sizeof(struct sigevent)", sigeventSize},
		{"offsetof(struct sigevent, sigev_signo)", 8},
		{"offsetof(struct sigevent, sigev_notify)", 12},
		{"offsetof(struct sigevent, _sigev_un._tid)", 16},
		{"sizeof(struct rusage)", rusageSize},
		{"offsetof(struct rusage, ru_maxrss)", 32},
		// glibc's clock_getcpuclockid and pthread_getcpuclockid encode
		// the IDs as MAKE_PROCESS_CPUCLOCK and MAKE_THREAD_CPUCLOCK.
		{"c", int64(makeProcessCPUClock(pid, cpuClockSched))},
		{"thread_clock", int64(makeThreadCPUClock(tid, cpuClockSched))},
	}
	for _, tt := range tests {
		want, ok := header[tt.name]
		if !ok {
			t.Errorf("%s: not printed by the probe", tt.name)
		} else if tt.got != want {
			t.Errorf("%s: got %d, header says %d", tt.name, tt.got, want)
		}
	}
}

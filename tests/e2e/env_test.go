package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// defaultTimeout bounds one run of one program. Every program is meant to
// finish in well under 5 s natively (tests/README.md); the margin is for
// the ptrace platform and loaded machines. Emulated KVM (the test VM) is
// one to two orders of magnitude slower and sets RINGBOX_TEST_TIMEOUT.
const defaultTimeout = 30 * time.Second

// testEnv is the fixed environment every program runs with, natively and
// under ringbox alike, so that nothing of the caller's environment leaks
// into output that is compared (echo prints its envp).
var testEnv = append([]string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"HOME=/",
	"LANG=C",
	"TZ=UTC",
	"RINGBOX_E2E=1",
}, watchdogEnv()...)

// watchdogEnv passes TAP_WATCHDOG (the test programs' watchdog, in
// seconds) on to every run, native and in the sandbox alike: the test VM
// raises it, as programs there run one to two orders of magnitude slower.
func watchdogEnv() []string {
	if v := os.Getenv("TAP_WATCHDOG"); v != "" {
		return []string{"TAP_WATCHDOG=" + v}
	}
	return nil
}

// runDir is the working directory of every run: it exists everywhere,
// the test VM included.
const runDir = "/"

// repoRoot returns the directory holding go.mod, found by walking up from
// the package directory that `go test` runs in.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: set RINGBOX_TEST_BIN and RINGBOX_BIN")
		}
		dir = parent
	}
}

// buildResult is the outcome of finding and building the test programs.
type buildResult struct {
	// dir is the directory of the built programs, "" if there is none.
	dir string
	// err says why there is no dir.
	err error
	// makeErr is a failed "make -C tests": some programs may be
	// missing or stale, but the others are tested anyway (TestBuild
	// reports it), so that one broken source does not hide every
	// other result.
	makeErr error
}

// buildOnce finds (and, by default, builds) the test programs once per
// test binary run.
var buildOnce = sync.OnceValue(func() buildResult {
	var b buildResult
	dir := os.Getenv("RINGBOX_TEST_BIN")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return buildResult{err: err}
		}
		// make is incremental: up to date, this costs a go build
		// per Go program, a fraction of a second with its cache.
		// -k builds all that can be built.
		cmd := exec.Command("make", "-k", "-C", filepath.Join(root, "tests"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.makeErr = fmt.Errorf("make -k -C tests: %w\n%s", err, out.Bytes())
		}
		dir = filepath.Join(root, "tests", "bin")
	}
	// Programs run by a path free of symbolic links, so that what they
	// learn about themselves (/proc/self/exe, AT_EXECFN) matches argv[0].
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		b.err = fmt.Errorf("test programs directory (set RINGBOX_TEST_BIN, or build them with make -C tests): %w", err)
		if b.makeErr != nil {
			b.err = fmt.Errorf("%w\n%v", b.err, b.makeErr)
		}
		return b
	}
	b.dir = real
	return b
})

// binDir returns the directory of the built test programs, failing t when
// there is none.
func binDir(t *testing.T) string {
	t.Helper()
	b := buildOnce()
	if b.err != nil {
		t.Fatalf("test programs unavailable: %v", b.err)
	}
	return b.dir
}

// TestBuild fails when "make -C tests" did: the other tests then ran the
// programs that did build, and perhaps stale binaries of those that did
// not.
func TestBuild(t *testing.T) {
	if os.Getenv("RINGBOX_TEST_BIN") != "" {
		t.Skip("RINGBOX_TEST_BIN is set: the programs are prebuilt")
	}
	if b := buildOnce(); b.makeErr != nil {
		t.Fatal(b.makeErr)
	}
}

// ringboxTmp is where ringbox is built; TestMain creates and removes it so
// that the build outlives any single test.
var ringboxTmp string

// ringboxOnce locates or builds the ringbox binary, once per test binary
// run and only when a ringbox subtest asks for it.
var ringboxOnce = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("RINGBOX_BIN"); bin != "" {
		if st, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("RINGBOX_BIN: %w", err)
		} else if st.Mode()&0o111 == 0 || !st.Mode().IsRegular() {
			return "", fmt.Errorf("RINGBOX_BIN=%s is not an executable file", bin)
		}
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if ringboxTmp == "" {
		return "", errors.New("internal error: TestMain did not create a build directory")
	}
	bin := filepath.Join(ringboxTmp, "ringbox")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ringbox")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cannot build ringbox with \"go build ./cmd/ringbox\" in %s (set RINGBOX_BIN to use a built one): %w\n%s", root, err, out.Bytes())
	}
	return bin, nil
})

// ringboxBin returns the ringbox binary, failing t when there is none.
func ringboxBin(t *testing.T) string {
	t.Helper()
	bin, err := ringboxOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runTimeout returns the per-run timeout from RINGBOX_TEST_TIMEOUT.
func runTimeout() (time.Duration, error) {
	v := os.Getenv("RINGBOX_TEST_TIMEOUT")
	if v == "" {
		return defaultTimeout, nil
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("RINGBOX_TEST_TIMEOUT=%q: want a positive duration (\"5m\") or seconds", v)
	}
	return d, nil
}

// platformInfo describes one ringbox platform the harness compares against
// native execution.
type platformInfo struct {
	name string
	// flags are given to `ringbox run` before "--".
	flags []string
	// needsKVM marks platforms that skip themselves without /dev/kvm.
	needsKVM bool
}

// knownPlatforms are the platforms in their default order.
var knownPlatforms = []platformInfo{
	{name: "ptrace", flags: []string{"--platform", "ptrace"}},
	// Two vCPUs, so that multi-threaded programs really run in
	// parallel and cross-vCPU paths (TLB shootdown, kicks) are taken.
	{name: "kvm", flags: []string{"--platform", "kvm", "--cpus", "2"}, needsKVM: true},
}

// selectedPlatforms returns the platforms named by RINGBOX_TEST_PLATFORMS,
// or all of them.
func selectedPlatforms() ([]platformInfo, error) {
	v := os.Getenv("RINGBOX_TEST_PLATFORMS")
	if v == "" {
		return knownPlatforms, nil
	}
	var ps []platformInfo
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" || name == "native" {
			continue
		}
		found := false
		for _, p := range knownPlatforms {
			if p.name == name {
				ps = append(ps, p)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("RINGBOX_TEST_PLATFORMS: unknown platform %q (known: ptrace, kvm)", name)
		}
	}
	return ps, nil
}

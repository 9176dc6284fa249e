package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

func TestQemuArgs(t *testing.T) {
	cfg := vmConfig{
		qemu: "qemu-system-x86_64", kernel: "/c/vmlinuz", initrd: "/w/initramfs.cpio",
		cpu: "max", tcgThread: "single", smp: 2, memMiB: 2048, cmdTimeout: 10 * time.Minute,
	}
	got, err := qemuArgs(cfg)
	if err != nil {
		t.Fatalf("qemuArgs: %v", err)
	}
	want := []string{
		"-accel", "tcg,thread=single", "-cpu", "max", "-m", "2048", "-smp", "2",
		"-nographic", "-nic", "none", "-no-reboot",
		"-kernel", "/c/vmlinuz", "-initrd", "/w/initramfs.cpio",
		"-append", "console=ttyS0 panic=-1 quiet random.trust_cpu=on ringbox.timeout=10m0s ringbox.serialcpus=1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("qemuArgs:\ngot  %q\nwant %q", got, want)
	}
}

func TestKernelCmdline(t *testing.T) {
	base := vmConfig{cmdTimeout: 90 * time.Second}
	tests := []struct {
		name    string
		cmd     []string
		extra   string
		want    string
		wantErr string
	}{
		{name: "suite", want: "console=ttyS0 panic=-1 quiet random.trust_cpu=on ringbox.timeout=1m30s"},
		{
			name:  "single command and extra",
			cmd:   []string{"ringbox", "run", "--", "/tests/bin/basic/hello-glibc"},
			extra: "loglevel=7",
			want:  "console=ttyS0 panic=-1 quiet random.trust_cpu=on ringbox.timeout=1m30s ringbox.cmd=cmluZ2JveABydW4ALS0AL3Rlc3RzL2Jpbi9iYXNpYy9oZWxsby1nbGliYw== loglevel=7",
		},
		{name: "too long", cmd: []string{strings.Repeat("x", 1600)}, wantErr: "x86 limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.cmd, c.extraAppend = tt.cmd, tt.extra
			got, err := kernelCmdline(c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("kernelCmdline: got %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("kernelCmdline:\ngot  %q, %v\nwant %q", got, err, tt.want)
			}
			if len(tt.cmd) > 0 {
				enc, ok := suite.CmdlineParam(got, suite.ParamCmd)
				argv, err := suite.DecodeCmd(enc)
				if !ok || err != nil || !reflect.DeepEqual(argv, tt.cmd) {
					t.Errorf("the command read back from %q is %q, %v; want %q", got, argv, err, tt.cmd)
				}
			}
		})
	}
}

func TestConsole(t *testing.T) {
	var out bytes.Buffer
	c := newConsole(&out)
	// The serial console's CRLF, firmware escapes split across writes,
	// and kernel messages: fed a byte at a time, as QEMU may write them.
	input := "\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n" +
		"[    1.0] early message\r\n" +
		suite.Marker + "init 6.1.0 (go), 2 CPUs\r\n" +
		"test output \x1b[1mbold\x1b[0m\r\n" +
		suite.ExitMarker + "3\r\n" +
		"partial"
	for i := 0; i < len(input); i++ {
		if _, err := c.Write([]byte{input[i]}); err != nil {
			t.Fatal(err)
		}
	}
	wantOut := "SeaBIOS\n[    1.0] early message\n" + suite.Marker + "init 6.1.0 (go), 2 CPUs\n" +
		"test output \x1b[1mbold\x1b[0m\n" + suite.ExitMarker + "3\npartial"
	if got := out.String(); got != wantOut {
		t.Errorf("console output:\ngot  %q\nwant %q", got, wantOut)
	}
	select {
	case <-c.initSeen:
	default:
		t.Errorf("init's first line was not signalled")
	}
	select {
	case code := <-c.exitSeen:
		if code != 3 {
			t.Errorf("exit code: got %d, want 3", code)
		}
	default:
		t.Errorf("the exit line was not signalled")
	}
	lines := c.lastLines()
	if got, want := lines[len(lines)-1], "partial"; got != want {
		t.Errorf("last line: got %q, want %q", got, want)
	}
}

func TestConsoleTail(t *testing.T) {
	c := newConsole(&bytes.Buffer{})
	for i := 0; i < tailLines+10; i++ {
		if _, err := c.Write([]byte(strings.Repeat("y", maxLine+10) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	lines := c.lastLines()
	if len(lines) != tailLines {
		t.Errorf("lastLines: got %d lines, want %d", len(lines), tailLines)
	}
	if len(lines[0]) != maxLine {
		t.Errorf("a long line is kept as %d bytes, want %d", len(lines[0]), maxLine)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct{ in, want int }{{0, 0}, {1, 1}, {255, 255}, {-1, 1}, {256, 1}}
	for _, tt := range tests {
		if got := exitCode(tt.in); got != tt.want {
			t.Errorf("exitCode(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// fakeQemu writes a shell script standing in for QEMU.
func fakeQemu(t *testing.T, script string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for a fake QEMU")
	}
	p := filepath.Join(t.TempDir(), "fake-qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunVM(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		boot     time.Duration
		total    time.Duration
		wantCode int
		wantErr  error
		wantOut  string
	}{
		{
			name:     "pass",
			script:   `echo "RINGBOX-VM: init x"; echo "RINGBOX-VM: PASS a"; echo "1 passed, 0 failed"; echo "RINGBOX-VM-EXIT: 0"`,
			wantCode: 0,
			wantOut:  "RINGBOX-VM: PASS a\n",
		},
		{
			name:     "exit line then QEMU lingers",
			script:   `echo "RINGBOX-VM: init x"; echo "RINGBOX-VM-EXIT: 4"; exec sleep 1`,
			wantCode: 4,
		},
		{
			name:    "QEMU error",
			script:  `echo "qemu-system-x86_64: -kernel vmlinuz: cannot load" >&2; exit 1`,
			wantErr: errNoExit,
			wantOut: "cannot load",
		},
		{
			name:    "init dies",
			script:  `echo "RINGBOX-VM: init x"; echo "Kernel panic - not syncing: Attempted to kill init!"`,
			wantErr: errNoExit,
		},
		{
			name:    "no boot",
			script:  `echo "SeaBIOS"; exec sleep 60`,
			boot:    300 * time.Millisecond,
			wantErr: errBoot,
		},
		{
			name:    "hang after boot",
			script:  `echo "RINGBOX-VM: init x"; exec sleep 60`,
			total:   500 * time.Millisecond,
			wantErr: errTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			boot, total := tt.boot, tt.total
			if boot == 0 {
				boot = time.Minute
			}
			if total == 0 {
				total = time.Minute
			}
			cfg := vmConfig{qemu: fakeQemu(t, tt.script), smp: 1, memMiB: 256, cmdTimeout: time.Minute}
			var out bytes.Buffer
			res, con, err := runVM(cfg, &out, boot, total, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("runVM: got error %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || !res.announced || res.code != tt.wantCode {
				t.Fatalf("runVM: got %+v, %v; want code %d", res, err, tt.wantCode)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("console output %q does not contain %q", out.String(), tt.wantOut)
			}
			if con == nil {
				t.Fatalf("runVM returned no console")
			}
			if saidInit := strings.Contains(tt.script, "RINGBOX-VM: init"); saidInit != (res.bootTime != 0) {
				t.Errorf("runVM: boot time %v, but init announced itself: %v", res.bootTime, saidInit)
			}
		})
	}
}

func TestRunVMNoQemu(t *testing.T) {
	cfg := vmConfig{qemu: filepath.Join(t.TempDir(), "qemu-system-x86_64"), smp: 1, memMiB: 256, cmdTimeout: time.Minute}
	_, _, err := runVM(cfg, &bytes.Buffer{}, time.Minute, time.Minute, nil)
	if err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("runVM without QEMU: got %v, want the install hint", err)
	}
	if err := qemuAvailable(cfg.qemu); err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("qemuAvailable: got %v, want the install hint", err)
	}
}

func TestRunVMStop(t *testing.T) {
	cfg := vmConfig{qemu: fakeQemu(t, `echo "RINGBOX-VM: init x"; exec sleep 60`), smp: 1, memMiB: 256, cmdTimeout: time.Minute}
	stop := make(chan os.Signal, 1)
	stop <- os.Interrupt
	_, _, err := runVM(cfg, &bytes.Buffer{}, time.Minute, time.Minute, stop)
	if !errors.Is(err, errStopped) {
		t.Errorf("runVM with a signal: got %v, want %v", err, errStopped)
	}
}

// failWriter fails every write, like a closed pipe.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestConsoleKeepsWatchingAfterOutputFails(t *testing.T) {
	c := newConsole(failWriter{})
	for _, l := range []string{suite.Marker + "init x\n", suite.ExitMarker + "0\n"} {
		if n, err := c.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(l))
		}
	}
	select {
	case code := <-c.exitSeen:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	default:
		t.Errorf("the exit line was not seen")
	}
}

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

func TestRunnerRun(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to run test commands with (as inside the test VM)")
	}
	tests := []struct {
		name     string
		argv     []string
		timeout  time.Duration
		wantCode int
		wantOut  []string
	}{
		{name: "pass", argv: []string{"sh", "-c", "echo out; echo err >&2"}, wantCode: 0,
			wantOut: []string{"out\n", "err\n", suite.Marker + "PASS sh -c echo out; echo err >&2\n"}},
		{name: "exit status", argv: []string{"sh", "-c", "exit 3"}, wantCode: 3,
			wantOut: []string{suite.Marker + "FAIL sh -c exit 3 (exit 3)\n"}},
		{name: "environment", argv: []string{"sh", "-c", `test "$RINGBOX_BIN" = /x/ringbox`}, wantCode: 0},
		{name: "signal", argv: []string{"sh", "-c", "kill -TERM $$"}, wantCode: -1,
			wantOut: []string{"(exit -1): killed by terminated\n"}},
		{name: "timeout kills the group", argv: []string{"sh", "-c", "sleep 60 & sleep 60; wait"}, timeout: 200 * time.Millisecond, wantCode: -1,
			wantOut: []string{"(exit -1): timed out after"}},
		{name: "missing program", argv: []string{"/nonexistent/prog"}, wantCode: -1,
			wantOut: []string{suite.Marker + "FAIL /nonexistent/prog (exit -1): "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			r := &runner{out: &out, env: []string{"PATH=" + os.Getenv("PATH"), "RINGBOX_BIN=/x/ringbox"}, timeout: timeout, root: t.TempDir()}
			if got := r.run(suite.Command{Argv: tt.argv}); got != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d; output:\n%s", tt.argv, got, tt.wantCode, out.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("run(%q) output %q does not contain %q", tt.argv, out.String(), w)
				}
			}
		})
	}
}

func TestWorkDir(t *testing.T) {
	tests := []struct{ program, want string }{
		{program: "/tests/gotest/vmm-kvm/vmm-kvm.test", want: "/tests/gotest/vmm-kvm"},
		{program: "/bin/true", want: "/bin"},
		{program: "ringbox", want: suite.Root},
	}
	for _, tt := range tests {
		if got := workDir(tt.program, suite.Root); got != tt.want {
			t.Errorf("workDir(%q) = %q, want %q", tt.program, got, tt.want)
		}
	}
}

func TestFindModule(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"kvm.ko", "kvm-amd.ko.xz", "ccp.ko.zst"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		wantFile  string
		wantFlags int
		wantErr   bool
	}{
		{name: "kvm", wantFile: "kvm.ko", wantFlags: 0},
		{name: "kvm-amd", wantFile: "kvm-amd.ko.xz", wantFlags: 4},
		{name: "ccp", wantFile: "ccp.ko.zst", wantFlags: 4},
		{name: "irqbypass", wantErr: true},
	}
	for _, tt := range tests {
		p, flags, err := findModule(dir, tt.name)
		if tt.wantErr {
			if err == nil {
				t.Errorf("findModule(%q) = %q, want an error", tt.name, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("findModule(%q): %v", tt.name, err)
			continue
		}
		if got := filepath.Base(p); got != tt.wantFile || flags != tt.wantFlags {
			t.Errorf("findModule(%q) = %q, %#x; want %q, %#x", tt.name, got, flags, tt.wantFile, tt.wantFlags)
		}
	}
}

func TestKmsgText(t *testing.T) {
	tests := []struct{ rec, want string }{
		{rec: "3,512,4100000,-;kvm_amd: SVM not supported by CPU 0\n", want: "kvm_amd: SVM not supported by CPU 0"},
		{rec: "6,1,0,-;Linux version 6.1\n SUBSYSTEM=x\n DEVICE=y\n", want: "Linux version 6.1"},
		{rec: "no prefix", want: "no prefix"},
	}
	for _, tt := range tests {
		if got := kmsgText(tt.rec); got != tt.want {
			t.Errorf("kmsgText(%q) = %q, want %q", tt.rec, got, tt.want)
		}
	}
}

package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// These tests check the harness itself: a harness that cannot see a
// failure would make every differential test pass.

func TestCheckTAP(t *testing.T) {
	tests := []struct {
		name, stdout string
		wantErr      string // substring; "" means success
	}{
		{"passing", "ok 1 - a\nok 2 - b\n# passed 2 failed 0\n", ""},
		{"skip counts as passed", "ok 1 - a # SKIP why\n# passed 1 failed 0\n", ""},
		{"other lines allowed", "argc 1\nok 1 - a\n# note\n# passed 1 failed 0\n", ""},
		{"a failure", "ok 1 - a\nnot ok 2 - b: got 1 want 2\n# passed 1 failed 1\n", "1 check(s) failed"},
		{"failure hidden by summary", "not ok 1 - a\n# passed 1 failed 0\n", "failed"},
		{"no summary", "ok 1 - a\n", "is not"},
		{"summary miscounts", "ok 1 - a\n# passed 2 failed 0\n", "but 1 ok"},
		{"cut short", "ok 1 - a\n# passed 1 failed 0", "complete summary"},
		{"nothing checked", "# passed 0 failed 0\n", "no checks"},
		{"empty", "", "complete summary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTAP([]byte(tt.stdout))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkTAP(%q) = %v, want nil", tt.stdout, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkTAP(%q) = %v, want an error containing %q", tt.stdout, err, tt.wantErr)
			}
		})
	}
}

func TestFirstDiff(t *testing.T) {
	tests := []struct {
		got, want string
		wantMsg   []string
	}{
		{"a\nb\nc\n", "a\nx\nc\n", []string{"byte 2, line 2", `got:  "b\n"`, `want: "x\n"`}},
		{"a\n", "a\nb\n", []string{"got 2 bytes, want 4", "byte 2, line 2", "<end of output>"}},
		{"", "hello\n", []string{"byte 0, line 1", `want: "hello\n"`}},
	}
	for _, tt := range tests {
		msg := firstDiff([]byte(tt.got), []byte(tt.want))
		for _, w := range tt.wantMsg {
			if !strings.Contains(msg, w) {
				t.Errorf("firstDiff(%q, %q) = %q, want it to contain %q", tt.got, tt.want, msg, w)
			}
		}
	}
}

// TestRunCommand checks exit statuses, the signal mapping, stdin, the
// environment and the timeout with the shell, which every test host has.
func TestRunCommand(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh (the test VM has none): the harness's runner is tested on the host")
	}
	tests := []struct {
		name       string
		script     string
		stdin      string
		timeout    time.Duration
		wantStatus int
		wantStdout string
		wantErr    string
	}{
		{name: "exit 0", script: "echo hi", wantStdout: "hi\n"},
		{name: "exit 3", script: "exit 3", wantStatus: 3},
		{name: "SIGSEGV", script: "kill -SEGV $$", wantStatus: 128 + 11},
		{name: "SIGKILL", script: "kill -KILL $$", wantStatus: 128 + 9},
		{name: "stdin", script: "cat", stdin: "abc", wantStdout: "abc"},
		{name: "fixed environment", script: `echo "$RINGBOX_E2E $HOME"`, wantStdout: "1 /\n"},
		{name: "timeout", script: "sleep 10", timeout: 100 * time.Millisecond, wantErr: "timed out"},
		{name: "descendant holds stdout", script: "sleep 10 & exit 0", wantErr: "descendant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "descendant holds stdout" && testing.Short() {
				t.Skip("waits for the pipe drain timeout")
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			r := runCommand([]string{"/bin/sh", "-c", tt.script}, nil, []byte(tt.stdin), timeout)
			if tt.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", r.err, tt.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("err = %v, want nil", r.err)
			}
			if r.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", r.status, tt.wantStatus)
			}
			if string(r.stdout) != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.wantStdout)
			}
		})
	}
}

func TestDescribeStatus(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   string
	}{
		{0, "exit 0"},
		{42, "exit 42"},
		{128 + 11, "killed by SIGSEGV"},
		{128 + 5, "killed by SIGTRAP"},
	} {
		if got := describeStatus(tt.status); got != tt.want {
			t.Errorf("describeStatus(%d) = %q, want %q", tt.status, got, tt.want)
		}
	}
}

package suite

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Command
		wantErr string
	}{
		{name: "empty", in: ""},
		{name: "comments and blanks", in: "# header\n\n   \n  # indented comment\n"},
		{
			name: "commands",
			in:   "/tests/gotest/vmm/vmm.test -test.v\n\n# x\n  ringbox   run --stats -- /tests/bin/basic/hello-glibc  \r\nls\n",
			want: []Command{
				{Argv: []string{"/tests/gotest/vmm/vmm.test", "-test.v"}, Line: 1},
				{Argv: []string{"ringbox", "run", "--stats", "--", "/tests/bin/basic/hello-glibc"}, Line: 4},
				{Argv: []string{"ls"}, Line: 5},
			},
		},
		{name: "hash inside a line is an argument", in: "echo a#b # c\n", want: []Command{{Argv: []string{"echo", "a#b", "#", "c"}, Line: 1}}},
		{name: "relative program with a slash", in: "ls\nbasic/hello\n", wantErr: "suite.list:2: program \"basic/hello\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "suite.list")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse: got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	cmds := []Command{
		{Argv: []string{"/a", "-x", "1"}},
		{Argv: []string{"b"}},
	}
	got, err := Parse(strings.NewReader(string(Format(cmds))), "x")
	if err != nil {
		t.Fatalf("Parse(Format): %v", err)
	}
	for i := range got {
		got[i].Line = 0
	}
	if !reflect.DeepEqual(got, cmds) {
		t.Errorf("Parse(Format(%v)) = %v", cmds, got)
	}
}

func TestEncodeDecodeCmd(t *testing.T) {
	tests := [][]string{
		{"/bin/true"},
		{"ringbox", "run", "--stats", "--", "/tests/bin/basic/hello-glibc"},
		{"sh", "-c", "echo 'two words' \"quoted\" = ; x"},
		{"prog", ""},
	}
	for _, argv := range tests {
		enc, err := EncodeCmd(argv)
		if err != nil {
			t.Fatalf("EncodeCmd(%q): %v", argv, err)
		}
		if strings.ContainsAny(enc, " \t\n\"") {
			t.Errorf("EncodeCmd(%q) = %q contains characters the kernel command line splits or strips", argv, enc)
		}
		got, err := DecodeCmd(enc)
		if err != nil {
			t.Fatalf("DecodeCmd(%q): %v", enc, err)
		}
		if !reflect.DeepEqual(got, argv) {
			t.Errorf("DecodeCmd(EncodeCmd(%q)) = %q", argv, got)
		}
	}
}

func TestEncodeDecodeCmdErrors(t *testing.T) {
	if _, err := EncodeCmd(nil); err == nil {
		t.Errorf("EncodeCmd(nil): got nil error, want one")
	}
	if _, err := EncodeCmd([]string{"a\x00b"}); err == nil {
		t.Errorf("EncodeCmd with a NUL byte: got nil error, want one")
	}
	for _, s := range []string{"", "!!!not base64"} {
		if got, err := DecodeCmd(s); err == nil {
			t.Errorf("DecodeCmd(%q) = %q, want an error", s, got)
		}
	}
}

func TestCmdlineParam(t *testing.T) {
	const cmdline = "console=ttyS0 panic=-1 quiet ringbox.cmd=L2Jpbi90cnVl ringbox.timeout=5m ringbox.cmd=b3ZlcnJpZGU= flag\n"
	tests := []struct {
		key, want string
		ok        bool
	}{
		{key: "console", want: "ttyS0", ok: true},
		{key: ParamCmd, want: "b3ZlcnJpZGU=", ok: true},
		{key: ParamTimeout, want: "5m", ok: true},
		{key: "quiet"},
		{key: "ringbox"},
	}
	for _, tt := range tests {
		got, ok := CmdlineParam(cmdline, tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CmdlineParam(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseExitLine(t *testing.T) {
	tests := []struct {
		line string
		code int
		ok   bool
	}{
		{line: ExitMarker + "0", code: 0, ok: true},
		{line: ExitMarker + "3\r", code: 3, ok: true},
		{line: "[    5.1] kvm: something" + ExitMarker + "1", code: 1, ok: true},
		{line: Marker + "PASS /bin/true"},
		{line: ExitMarker + "x"},
		{line: ExitMarker},
		{line: "2 passed, 0 failed"},
	}
	for _, tt := range tests {
		code, ok := ParseExitLine(tt.line)
		if code != tt.code || ok != tt.ok {
			t.Errorf("ParseExitLine(%q) = %d, %v; want %d, %v", tt.line, code, ok, tt.code, tt.ok)
		}
	}
}

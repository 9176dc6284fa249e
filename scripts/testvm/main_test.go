package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-gotest", "./vmm/...,./tests/e2e", "-suite", "a.suite", "-suite", "b.suite",
		"-smp", "1", "-run", "TestX", "--", "ringbox", "run", "--", "/tests/bin/basic/hello-glibc"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	if got, want := splitPatterns(o.goTest), []string{"./vmm/...", "./tests/e2e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("patterns = %q, want %q", got, want)
	}
	if want := []string{"a.suite", "b.suite"}; !reflect.DeepEqual(o.suites, want) {
		t.Errorf("suites = %q, want %q", o.suites, want)
	}
	if want := []string{"ringbox", "run", "--", "/tests/bin/basic/hello-glibc"}; !reflect.DeepEqual(o.cmd, want) {
		t.Errorf("cmd = %q, want %q", o.cmd, want)
	}
	if o.cpu != "max" || o.smp != 1 || o.mem != 2048 || o.timeout != 25*time.Minute || o.bootTimeout != 180*time.Second || o.filesSet {
		t.Errorf("got smp %d mem %d timeout %s boot %s filesSet %v; want 1 2048 25m0s 3m0s false", o.smp, o.mem, o.timeout, o.bootTimeout, o.filesSet)
	}

	o, err = parseFlags([]string{"-files", ""}, io.Discard)
	if err != nil || !o.filesSet || o.files != "" {
		t.Errorf(`parseFlags(-files ""): got %+v, %v; want files set and empty`, o, err)
	}

	for _, bad := range [][]string{
		{"-smp", "0"},
		{"-mem", "64"},
		{"-timeout", "0s"},
		{"-run", "TestA TestB"},
		{"-nosuchflag"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): got nil error, want one", bad)
		}
	}
}

func TestSplitPatterns(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: ""},
		{in: " ./a/... , ,./b ", want: []string{"./a/...", "./b"}},
	}
	for _, tt := range tests {
		if got := splitPatterns(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitPatterns(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFindRepo(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findRepo(deep); err != nil || got != root {
		t.Errorf("findRepo(%s) = %q, %v; want %q", deep, got, err, root)
	}
	if _, err := findRepo("/"); err == nil || !strings.Contains(err.Error(), "no go.mod") {
		t.Errorf("findRepo(/): got %v, want a no go.mod error", err)
	}
}

package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTestName(t *testing.T) {
	const module = "github.com/ringbox/ringbox"
	tests := []struct{ importPath, want string }{
		{importPath: module + "/vmm/kvm", want: "vmm-kvm"},
		{importPath: module + "/platform/kvm", want: "platform-kvm"},
		{importPath: module + "/tests/e2e", want: "tests-e2e"},
		{importPath: module, want: "ringbox"},
	}
	for _, tt := range tests {
		if got := testName(module, tt.importPath); got != tt.want {
			t.Errorf("testName(%q) = %q, want %q", tt.importPath, got, tt.want)
		}
	}
}

func TestParseList(t *testing.T) {
	out := "github.com/ringbox/ringbox/vmm\t/r/vmm\ttests\t\n" +
		"github.com/ringbox/ringbox/vmm/layout\t/r/vmm/layout\t\t\n"
	got, err := parseList([]byte(out))
	if err != nil {
		t.Fatalf("parseList: %v", err)
	}
	want := []listedPackage{
		{importPath: "github.com/ringbox/ringbox/vmm", dir: "/r/vmm", hasTests: true},
		{importPath: "github.com/ringbox/ringbox/vmm/layout", dir: "/r/vmm/layout"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseList = %+v, want %+v", got, want)
	}

	for _, bad := range []string{
		"github.com/x\t/r\t\tcannot find package\n",
		"just one field\n",
	} {
		if _, err := parseList([]byte(bad)); err == nil {
			t.Errorf("parseList(%q): got nil error, want one", bad)
		}
	}
}

func TestSuiteLine(t *testing.T) {
	gt := goTest{name: "vmm-kvm"}
	tests := []struct {
		run  string
		want string
	}{
		{want: "/tests/gotest/vmm-kvm/vmm-kvm.test -test.v -test.timeout=5m0s"},
		{run: "TestRun|TestExit$", want: "/tests/gotest/vmm-kvm/vmm-kvm.test -test.v -test.timeout=5m0s -test.run=TestRun|TestExit$"},
	}
	for _, tt := range tests {
		got := gt.suiteLine(5*time.Minute, tt.run)
		if got.String() != tt.want {
			t.Errorf("suiteLine(run=%q) = %q, want %q", tt.run, got, tt.want)
		}
		if strings.Contains(strings.Join(got.Argv, ""), " ") {
			t.Errorf("suiteLine(run=%q) has an argument with a blank: %q", tt.run, got.Argv)
		}
	}
}

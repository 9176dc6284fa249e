package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
		"github.com/ringbox/ringbox/vmm/layout\t/r/vmm/layout\t\t\n" +
		"github.com/ringbox/ringbox/vmm/bad\t/r/vmm/bad\t\tvmm/bad/x.go:1:1: expected 'package'\n"
	got, err := parseList([]byte(out))
	if err != nil {
		t.Fatalf("parseList: %v", err)
	}
	want := []listedPackage{
		{importPath: "github.com/ringbox/ringbox/vmm", dir: "/r/vmm", hasTests: true},
		{importPath: "github.com/ringbox/ringbox/vmm/layout", dir: "/r/vmm/layout"},
		{importPath: "github.com/ringbox/ringbox/vmm/bad", dir: "/r/vmm/bad", loadErr: "vmm/bad/x.go:1:1: expected 'package'"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseList = %+v, want %+v", got, want)
	}

	if _, err := parseList([]byte("just one field\n")); err == nil {
		t.Errorf("parseList(one field): got nil error, want one")
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

// TestGoTests builds test binaries of a throw-away module: one package that
// builds, one whose test does not compile, one without tests.
func TestGoTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go test binaries")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	repo := t.TempDir()
	files := map[string]string{
		"go.mod":                  "module example.com/m\n\ngo 1.21\n",
		"good/good.go":            "package good\n",
		"good/good_test.go":       "package good\n\nimport \"testing\"\n\nfunc TestOK(t *testing.T) {}\n",
		"good/testdata/input.txt": "data",
		"bad/bad.go":              "package bad\n",
		"bad/bad_test.go":         "package bad\n\nfunc TestBroken(t *testing.T) { undefinedThing() }\n",
		"notests/n.go":            "package notests\n",
	}
	for name, content := range files {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &builder{repo: repo, out: t.TempDir()}
	tests, failed, err := b.goTests([]string{"./..."}, t.Logf)
	if err != nil {
		t.Fatalf("goTests: %v", err)
	}
	if len(tests) != 1 || tests[0].name != "good" || tests[0].testdata != filepath.Join(repo, "good", "testdata") {
		t.Fatalf("goTests: got %+v, want the good package with its testdata", tests)
	}
	if st, err := os.Stat(tests[0].bin); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("test binary %s: %v, mode %v", tests[0].bin, err, st)
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "undefinedThing") {
		t.Errorf("goTests failures: got %v, want one naming undefinedThing", failed)
	}

	if _, _, err := b.goTests([]string{"./notests"}, t.Logf); err == nil || !strings.Contains(err.Error(), "no package with tests") {
		t.Errorf("goTests(./notests): got %v, want a no package with tests error", err)
	}
}

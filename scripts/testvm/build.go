package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringbox/ringbox/scripts/testvm/suite"
)

// builder runs the go command for the host side of the VM. Everything it
// builds runs inside the VM, which has no C library: CGO_ENABLED=0.
type builder struct {
	// repo is the module root, where go runs.
	repo string
	// out is the directory receiving the binaries.
	out string
}

// goEnv is the environment of every go command: static binaries.
func goEnv() []string { return append(os.Environ(), "CGO_ENABLED=0") }

// goCmd runs go with args in the repository and returns its standard
// output; the error carries its standard error.
func (b *builder) goCmd(args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = b.repo
	cmd.Env = goEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// program builds the main package pkg into the output directory and returns
// the binary's path.
func (b *builder) program(pkg, name string) (string, error) {
	bin := filepath.Join(b.out, name)
	_, err := b.goCmd("build", "-o", bin, pkg)
	return bin, err
}

// goTest is one Go test binary for the VM.
type goTest struct {
	// importPath is the package's import path.
	importPath string
	// name is the package's path relative to the module with '/' turned
	// into '-' ("vmm-kvm"): unique, unlike the last element.
	name string
	// bin is the test binary on the host.
	bin string
	// testdata is the package's testdata directory on the host, or "".
	testdata string
}

// vmDir is the directory of the test inside the VM.
func (t goTest) vmDir() string { return path.Join(suite.GoTestDir, t.name) }

// vmBin is the test binary inside the VM.
func (t goTest) vmBin() string { return path.Join(t.vmDir(), t.name+".test") }

// suiteLine returns the suite command running the test binary.
func (t goTest) suiteLine(timeout time.Duration, run string) suite.Command {
	argv := []string{t.vmBin(), "-test.v", "-test.timeout=" + timeout.String()}
	if run != "" {
		argv = append(argv, "-test.run="+run)
	}
	return suite.Command{Argv: argv}
}

// testName turns an import path into a goTest name.
func testName(module, importPath string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
	if rel == "" {
		return path.Base(module)
	}
	return strings.ReplaceAll(rel, "/", "-")
}

// listedPackage is one line of listTests's go list output.
type listedPackage struct {
	importPath, dir string
	hasTests        bool
	// loadErr is go list's error for the package, if any.
	loadErr string
}

// listFormat is the go list template that parseList reads.
const listFormat = "{{.ImportPath}}\t{{.Dir}}\t{{if or .TestGoFiles .XTestGoFiles}}tests{{end}}\t{{if .Error}}{{.Error}}{{end}}"

// parseList parses go list -f listFormat output.
func parseList(out []byte) ([]listedPackage, error) {
	var pkgs []listedPackage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("go list: unexpected line %q", sc.Text())
		}
		pkgs = append(pkgs, listedPackage{importPath: f[0], dir: f[1], hasTests: f[2] == "tests", loadErr: f[3]})
	}
	return pkgs, sc.Err()
}

// goTests builds a test binary for each package matched by patterns that
// has test files. A package that does not build is reported in failed and
// skipped, so that one broken package does not hide the others' results;
// err is for failures that leave nothing to run.
func (b *builder) goTests(patterns []string, logf func(string, ...any)) (tests []goTest, failed []error, err error) {
	modOut, err := b.goCmd("list", "-m")
	if err != nil {
		return nil, nil, err
	}
	module := strings.TrimSpace(string(modOut))
	out, err := b.goCmd(append([]string{"list", "-e", "-f", listFormat}, patterns...)...)
	if err != nil {
		return nil, nil, err
	}
	pkgs, err := parseList(out)
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[string]string)
	for _, p := range pkgs {
		if p.loadErr != "" {
			failed = append(failed, fmt.Errorf("%s: %s", p.importPath, p.loadErr))
			continue
		}
		if !p.hasTests {
			continue
		}
		t := goTest{importPath: p.importPath, name: testName(module, p.importPath)}
		if prev, dup := seen[t.name]; dup {
			return nil, nil, fmt.Errorf("packages %s and %s both map to the test name %s", prev, p.importPath, t.name)
		}
		seen[t.name] = p.importPath
		t.bin = filepath.Join(b.out, "gotest", t.name+".test")
		logf("building %s", p.importPath)
		if _, err := b.goCmd("test", "-c", "-o", t.bin, p.importPath); err != nil {
			logf("%v", err)
			failed = append(failed, err)
			continue
		}
		if st, err := os.Stat(filepath.Join(p.dir, "testdata")); err == nil && st.IsDir() {
			t.testdata = filepath.Join(p.dir, "testdata")
		}
		tests = append(tests, t)
	}
	if len(tests) == 0 && len(failed) == 0 {
		return nil, nil, fmt.Errorf("no package with tests matches %s", strings.Join(patterns, ","))
	}
	return tests, failed, nil
}

package loader

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// TestLeafPackage keeps the loader a leaf, as DESIGN.md's layering wants:
// outside the standard library it may import arch only (and, through arch,
// golang.org/x/sys/unix's ABI constants), never the kernel or a platform.
func TestLeafPackage(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	out, err := exec.Command(gotool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	got := strings.Fields(string(out))
	want := []string{"golang.org/x/sys/unix", "github.com/ringbox/ringbox/arch", "github.com/ringbox/ringbox/boot/loader"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("non-standard dependencies: got %q, want %q", got, want)
	}
}

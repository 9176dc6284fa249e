package loader

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConstantsAgainstHeaders checks the constants the loader defines
// against the C headers (Linux UAPI and glibc) and x/sys/unix.
func TestConstantsAgainstHeaders(t *testing.T) {
	if maxInterpLen != unix.PathMax {
		t.Errorf("maxInterpLen: got %d, want PATH_MAX %d", maxInterpLen, unix.PathMax)
	}
	out, err := exec.Command(compile(t, "gcc", nil, "constants.c")).Output()
	if err != nil {
		t.Fatalf("constants: %v", err)
	}
	header := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, val, _ := strings.Cut(sc.Text(), " ")
		v, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			t.Fatalf("constants output %q: %v", sc.Text(), err)
		}
		header[name] = v
	}
	tests := []struct {
		name string
		got  int64
	}{
		{"ARG_MAX", argMax},
		{"PATH_MAX", maxInterpLen},
		{"MAX_ARG_STRLEN", MaxArgStrlen},
		{"ADDR_NO_RANDOMIZE", addrNoRandomize},
	}
	for _, tt := range tests {
		want, ok := header[tt.name]
		if !ok {
			t.Errorf("%s: not printed by testdata/constants.c", tt.name)
		} else if tt.got != want {
			t.Errorf("%s: got %d, header says %d", tt.name, tt.got, want)
		}
	}
}

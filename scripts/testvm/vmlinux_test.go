package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBzImage builds the parts of a bzImage that bzPayload reads.
func fakeBzImage(setupSects byte, version uint16, payload []byte) []byte {
	sects := int(setupSects)
	if sects == 0 {
		sects = 4
	}
	start := (sects + 1) * 512
	const off = 100
	img := make([]byte, start+off+len(payload)+64)
	img[setupSectsOff] = setupSects
	copy(img[headerMagicOff:], "HdrS")
	binary.LittleEndian.PutUint16(img[versionOff:], version)
	binary.LittleEndian.PutUint32(img[payloadOffsetOff:], off)
	binary.LittleEndian.PutUint32(img[payloadLengthOff:], uint32(len(payload)))
	copy(img[start+off:], payload)
	return img
}

func TestBzPayload(t *testing.T) {
	payload := []byte("compressed kernel")
	tests := []struct {
		name    string
		img     []byte
		wantErr string
	}{
		{name: "setup_sects 39", img: fakeBzImage(39, 0x020f, payload)},
		{name: "setup_sects 0 means 4", img: fakeBzImage(0, 0x0208, payload)},
		{name: "old protocol", img: fakeBzImage(39, 0x0207, payload), wantErr: "2.08+"},
		{name: "not a bzImage", img: make([]byte, 4096), wantErr: "HdrS"},
		{name: "short", img: []byte("MZ"), wantErr: "HdrS"},
		{name: "truncated", img: fakeBzImage(39, 0x020f, payload)[:40*512+50], wantErr: "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bzPayload(tt.img)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("bzPayload: got %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("bzPayload: got %q, %v; want %q", got, err, payload)
			}
		})
	}
}

func TestXzPayloadStream(t *testing.T) {
	payload := append(append([]byte{}, xzMagic...), "stream"...)
	payload = binary.LittleEndian.AppendUint32(payload, 65906612)
	stream, size, err := xzPayloadStream(payload)
	if err != nil || size != 65906612 || !bytes.Equal(stream, payload[:len(payload)-4]) {
		t.Errorf("xzPayloadStream: got %q, %d, %v", stream, size, err)
	}
	if _, _, err := xzPayloadStream([]byte("\x1f\x8b gzip")); err == nil {
		t.Errorf("xzPayloadStream(gzip): got nil error, want one")
	}
}

// note encodes one ELF note.
func note(name string, typ uint32, desc []byte) []byte {
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	n := append([]byte(name), 0)
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(n)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, pad(n)...)
	return append(b, pad(append([]byte{}, desc...))...)
}

func TestHasNote(t *testing.T) {
	le := binary.LittleEndian
	entry := []byte{0, 0, 0, 1}
	tests := []struct {
		name  string
		notes []byte
		want  bool
	}{
		{name: "PVH note after others", notes: append(note("GNU", 3, []byte("build-id-bytes")), note("Xen", 18, entry)...), want: true},
		{name: "other Xen notes only", notes: append(note("Xen", 1, entry), note("Xen", 2, entry)...)},
		{name: "type 18 of another owner", notes: note("Linux", 18, entry)},
		{name: "truncated", notes: note("Xen", 18, entry)[:14]},
		{name: "empty"},
	}
	for _, tt := range tests {
		if got := hasNote(tt.notes, le, "Xen", xenElfNotePhys32Entry); got != tt.want {
			t.Errorf("%s: hasNote = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestExtractVmlinux unpacks the cached Debian kernel when a run of testvm
// left one in the repository's cache; it is the real input of extractVmlinux.
func TestExtractVmlinux(t *testing.T) {
	if testing.Short() {
		t.Skip("unpacks a kernel")
	}
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz")
	}
	matches, _ := filepath.Glob("../../.cache/testvm/linux-image-*/" + cacheVmlinuz)
	if len(matches) == 0 {
		t.Skip("no cached kernel: run go run ./scripts/testvm once")
	}
	dst := filepath.Join(t.TempDir(), "vmlinux")
	if err := extractVmlinux(matches[0], dst); err != nil {
		t.Fatalf("extractVmlinux(%s): %v", matches[0], err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPVH(b); err != nil {
		t.Errorf("checkPVH of the written kernel: %v", err)
	}
}

func TestCheckPVHRejects(t *testing.T) {
	if err := checkPVH([]byte("not elf")); err == nil || !strings.Contains(err.Error(), "not ELF") {
		t.Errorf("checkPVH(garbage): got %v, want a not ELF error", err)
	}
	// The test binary itself is ELF without a PVH note.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skipf("reading the test binary: %v", err)
	}
	if err := checkPVH(self); err == nil {
		t.Errorf("checkPVH(test binary): got nil error, want one")
	}
}

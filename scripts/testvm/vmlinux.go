package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Booting the uncompressed kernel: QEMU loads an ELF vmlinux that carries a
// PVH entry point straight into memory and jumps to it, which skips the
// firmware's copy of the bzImage and, above all, the kernel's own xz
// decompression, slow under TCG: about 3.5 s less per boot on the
// development machine. Debian's kernel is built with CONFIG_PVH=y. When the
// extraction is impossible (no xz tool, an unexpected image) testvm boots the
// bzImage as before.

// bzImage setup header fields, from Linux: Documentation/arch/x86/boot.rst
// ("The real-mode kernel header").
const (
	// setupSectsOff is setup_sects: the size of the real-mode code in
	// 512-byte sectors, not counting the boot sector; 0 means 4.
	setupSectsOff = 0x1f1
	// headerMagicOff is header, "HdrS".
	headerMagicOff = 0x202
	// versionOff is version, the boot protocol version.
	versionOff = 0x206
	// payloadOffsetOff and payloadLengthOff are payload_offset and
	// payload_length (protocol 2.08+), locating the compressed kernel
	// relative to the start of the protected-mode code.
	payloadOffsetOff = 0x248
	payloadLengthOff = 0x24c
)

// xzMagic starts an xz stream (the .xz file format's header magic).
var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// bzPayload returns the compressed kernel inside a bzImage.
func bzPayload(img []byte) ([]byte, error) {
	if len(img) < payloadLengthOff+4 || string(img[headerMagicOff:headerMagicOff+4]) != "HdrS" {
		return nil, errors.New("not a bzImage: no HdrS setup header")
	}
	if v := binary.LittleEndian.Uint16(img[versionOff:]); v < 0x0208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields (2.08+)", v)
	}
	setupSects := int(img[setupSectsOff])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects + 1) * 512
	off := int(binary.LittleEndian.Uint32(img[payloadOffsetOff:]))
	n := int(binary.LittleEndian.Uint32(img[payloadLengthOff:]))
	if start+off+n > len(img) || n <= 0 {
		return nil, fmt.Errorf("payload [%d, +%d) lies outside the %d-byte image", start+off, n, len(img))
	}
	return img[start+off : start+off+n], nil
}

// xzPayloadStream splits an xz kernel payload into the xz stream and the
// kernel's size, which the kernel build appends as 4 little-endian bytes
// (Linux: arch/x86/boot/compressed/Makefile, the "_with_size" compressors).
func xzPayloadStream(payload []byte) ([]byte, uint32, error) {
	if !bytes.HasPrefix(payload, xzMagic) {
		return nil, 0, errors.New("the payload is not xz-compressed")
	}
	if len(payload) < len(xzMagic)+4 {
		return nil, 0, errors.New("truncated xz payload")
	}
	n := len(payload) - 4
	return payload[:n], binary.LittleEndian.Uint32(payload[n:]), nil
}

// extractVmlinux writes the uncompressed kernel of the bzImage at src to
// dst, with the xz tool, and checks that it is an ELF file QEMU can boot
// through PVH.
func extractVmlinux(src, dst string) error {
	img, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	payload, err := bzPayload(img)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	stream, size, err := xzPayloadStream(payload)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	xz, err := exec.LookPath("xz")
	if err != nil {
		return fmt.Errorf("no xz to unpack the kernel with (apt-get install xz-utils): %w", err)
	}
	cmd := exec.Command(xz, "-dc")
	cmd.Stdin = bytes.NewReader(stream)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("xz -dc of %s's payload: %w: %s", src, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if uint32(len(out)) != size {
		return fmt.Errorf("%s: unpacked %d bytes, the image says %d", src, len(out), size)
	}
	if err := checkPVH(out); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return os.WriteFile(dst, out, 0o644)
}

// xenElfNotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, the note giving the
// 32-bit PVH entry point (Linux: include/xen/interface/elfnote.h), which is
// what QEMU looks for to boot an ELF kernel.
const xenElfNotePhys32Entry = 18

// checkPVH reports an error unless vmlinux is an x86-64 ELF file with a Xen
// PHYS32_ENTRY note.
func checkPVH(vmlinux []byte) error {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("the unpacked kernel is not ELF: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("the unpacked kernel is for %v, not x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes := make([]byte, p.Filesz)
		if _, err := p.ReadAt(notes, 0); err != nil {
			return fmt.Errorf("reading the ELF notes: %w", err)
		}
		if hasNote(notes, f.ByteOrder, "Xen", xenElfNotePhys32Entry) {
			return nil
		}
	}
	return errors.New("the unpacked kernel has no PVH entry note (CONFIG_PVH is off)")
}

// hasNote reports whether an ELF note segment holds a note of the given
// owner name and type. Each note is namesz, descsz, type (4 bytes each),
// then the name and the descriptor, each padded to 4 bytes (elf(5)).
func hasNote(b []byte, bo binary.ByteOrder, name string, typ uint32) bool {
	pad4 := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, t := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
		b = b[12:]
		if uint64(pad4(namesz))+uint64(pad4(descsz)) > uint64(len(b)) {
			return false
		}
		n := b[:namesz]
		if t == typ && string(bytes.TrimRight(n, "\x00")) == name {
			return true
		}
		b = b[pad4(namesz)+pad4(descsz):]
	}
	return false
}

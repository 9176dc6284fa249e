package memfile

import (
	"errors"
	"testing"
)

func TestAllocateFreeReuse(t *testing.T) {
	f, err := New("test", 4*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Allocate(1)
	if err != nil {
		t.Fatal(err)
	}
	copy(f.Bytes(a), "dirty")
	f.DecRef(a)
	if got := f.Usage(); got != 0 {
		t.Fatalf("Usage after free = %d, want 0", got)
	}
	b, err := f.Allocate(1)
	if err != nil {
		t.Fatal(err)
	}
	if b != a {
		t.Errorf("reused page = %v, want %v", b, a)
	}
	if got := f.Bytes(b)[0]; got != 0 {
		t.Errorf("reused page not zeroed: first byte %#x", got)
	}
	if _, err := f.Allocate(3); err != nil {
		t.Fatalf("Allocate(3): %v", err)
	}
	if _, err := f.Allocate(1); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Allocate when full: err = %v, want ErrNoMemory", err)
	}
}

func TestRefCounts(t *testing.T) {
	f, err := New("test", 2*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, _ := f.Allocate(1)
	f.IncRef(a)
	if got := f.RefCount(a.Start); got != 2 {
		t.Fatalf("RefCount = %d, want 2", got)
	}
	f.DecRef(a)
	f.DecRef(a)
	if got := f.RefCount(a.Start); got != 0 {
		t.Fatalf("RefCount = %d, want 0", got)
	}
}

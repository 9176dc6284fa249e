package platformtest

import (
	"testing"
)

// TestRequireKVM checks that RequireKVM skips exactly when /dev/kvm is
// missing or unusable.
func TestRequireKVM(t *testing.T) {
	reason := kvmUnusable()
	if !hasKVMDevice() && reason == "" {
		t.Fatalf("kvmUnusable() = %q without /dev/kvm, want a reason", reason)
	}
	ran := false
	t.Run("gate", func(t *testing.T) {
		RequireKVM(t)
		ran = true
	})
	if got, want := ran, reason == ""; got != want {
		t.Errorf("RequireKVM let the test run = %v, want %v (reason %q)", got, want, reason)
	}
}

package vmm

import (
	"sync/atomic"

	"github.com/ringbox/ringbox/platform"
)

// vcpuStats are one logical CPU's counters, updated through the vCPU that
// runs on it (vcpu.stats); Stats reads them from any goroutine.
type vcpuStats struct {
	exits      [platform.NumExitReasons]atomic.Uint64
	ioctls     atomic.Uint64
	guestNanos atomic.Uint64
	// migrations counts entries of a vCPU from another OS thread than
	// the one that ran it last (each costs KVM a vcpu->pid change).
	migrations atomic.Uint64
	// fpSwitches counts loads of a context's FP state into its vCPU.
	fpSwitches atomic.Uint64
	// kicks counts signals sent to the vCPU's thread; shootdowns the TLB
	// shootdowns among them.
	kicks      atomic.Uint64
	shootdowns atomic.Uint64
}

// VCPUStats are the KVM-specific counters of one logical CPU, a superset
// of platform.CPUStats.
type VCPUStats struct {
	platform.CPUStats
	// Migrations counts entries of a vCPU from another OS thread than
	// the one that ran it last: a vCPU reused after its context was
	// released. Each makes KVM wait for an RCU grace period.
	Migrations uint64
	// FPSwitches counts loads of a context's FP state into its vCPU: on
	// its first entry and when the kernel changed the state.
	FPSwitches uint64
	// Kicks counts signals sent to take the vCPU out of the guest;
	// Shootdowns counts those made for TLB coherence.
	Kicks, Shootdowns uint64
}

// Stats implements platform.Platform.Stats.
func (p *Platform) Stats() []platform.CPUStats {
	vs := p.VCPUStats()
	out := make([]platform.CPUStats, len(vs))
	for i, s := range vs {
		out[i] = s.CPUStats
	}
	return out
}

// VCPUStats returns the counters of every logical CPU.
func (p *Platform) VCPUStats() []VCPUStats {
	out := make([]VCPUStats, len(p.cpus))
	for i, v := range p.cpus {
		s := &out[i]
		s.CPU = i
		for r := range s.Exits {
			s.Exits[r] = v.stats.exits[r].Load()
		}
		s.Ioctls = v.stats.ioctls.Load()
		s.GuestNanos = v.stats.guestNanos.Load()
		s.Migrations = v.stats.migrations.Load()
		s.FPSwitches = v.stats.fpSwitches.Load()
		s.Kicks = v.stats.kicks.Load()
		s.Shootdowns = v.stats.shootdowns.Load()
	}
	return out
}

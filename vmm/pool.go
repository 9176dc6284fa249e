package vmm

import (
	"fmt"
)

// cpu is one of the platform's logical CPUs: a context must hold one while
// its vCPU runs, so that at most NumCPUs contexts run user code at once. It
// is what Event.CPU and the statistics name.
//
// The KVM vCPUs are a separate pool: each context runs on a vCPU of its own
// (context.bindVCPU), which only it enters, always from its own OS thread.
// KVM ties a vCPU to the thread that last ran it: KVM_RUN from another
// thread makes KVM wait for an RCU grace period (Linux:
// virt/kvm/kvm_main.c:kvm_vcpu_ioctl(), KVM_RUN, synchronize_rcu() when
// vcpu->pid changes), which takes milliseconds, and more under nested
// virtualization. Handing vCPUs from thread to thread made every switch
// between the threads of a program pay it.
type cpu struct {
	id int
	// held is set while a context runs on the CPU. Protected by
	// Platform.mu.
	held bool
	// last is the context that held the CPU last, preferred when it
	// asks again. Protected by Platform.mu.
	last *context

	stats vcpuStats
}

// acquire takes a free logical CPU for c, waiting while all the CPUs c may
// run on (platform.CPUAffinity) are busy; an Interrupt ends the wait with
// errInterrupted. Among the allowed ones it prefers the CPU c held last,
// then one no context has held.
func (p *Platform) acquire(c *context) (*cpu, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if cp := p.pickLocked(c); cp != nil {
			cp.held, cp.last = true, c
			return cp, nil
		}
		if c.pending.Load() {
			return nil, errInterrupted
		}
		p.cond.Wait()
	}
}

// pickLocked returns the best free CPU c may run on, or nil.
//
// Preconditions: p.mu is held.
func (p *Platform) pickLocked(c *context) *cpu {
	var best *cpu
	bestScore := -1
	mask := c.cpus.Load()
	for i, cp := range p.cpus {
		if cp.held || mask != nil && !(*mask)[i] {
			continue
		}
		score := 0
		switch cp.last {
		case c:
			score = 2
		case nil:
			score = 1
		}
		if score > bestScore {
			best, bestScore = cp, score
		}
	}
	return best
}

// release returns cp to the pool. Every waiter wakes and picks again:
// waiters differ in the CPUs they may take.
func (p *Platform) release(cp *cpu) {
	p.mu.Lock()
	cp.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// freshVCPUs is how many vCPUs the platform creates before it reuses idle
// ones that other threads ran. Every task is a new OS thread (the kernel
// locks a goroutine to a thread for the task's life), so a reused vCPU
// costs KVM an RCU grace period on its first KVM_RUN, while a new vCPU has
// no previous thread and costs a few ioctls and cpuPages pages of the
// memory file. KVM never frees a vCPU before the VM, so the number is
// bounded; past it, tasks pay the grace period.
const freshVCPUs = 256

// vcpuFor returns an unbound vCPU for a context on OS thread tid, in order
// of preference: an idle one last run on tid, a new one (up to
// freshVCPUs), an idle one, a new one (up to maxVCPUs).
func (p *Platform) vcpuFor(tid int) (*vcpu, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	take := func(i int) *vcpu {
		v := p.idle[i]
		p.idle = append(p.idle[:i], p.idle[i+1:]...)
		return v
	}
	for i, v := range p.idle {
		if v.lastTID == tid || v.lastTID == 0 {
			return take(i), nil
		}
	}
	if len(p.idle) > 0 && len(p.allVCPUs()) >= min(freshVCPUs, p.maxVCPUs) {
		return take(len(p.idle) - 1), nil
	}
	return p.addVCPULocked()
}

// addVCPULocked creates the next vCPU.
//
// Preconditions: p.mu is held.
func (p *Platform) addVCPULocked() (*vcpu, error) {
	all := *p.vcpus.Load()
	if len(all) >= p.maxVCPUs {
		// TODO: Linux has no such bound on threads (beyond
		// threads-max); ringbox could let contexts share vCPUs past
		// it, saving the FP state on each change of owner.
		return nil, fmt.Errorf("%d threads run user code, the most this KVM supports (KVM_CAP_MAX_VCPUS)", len(all))
	}
	v, err := newVCPU(p, len(all), p.cpuid, p.runSize)
	if err != nil {
		return nil, fmt.Errorf("vCPU %d: %w", len(all), err)
	}
	grown := append(all[:len(all):len(all)], v)
	p.vcpus.Store(&grown)
	return v, nil
}

// allVCPUs returns every vCPU created so far (for TLB shootdowns).
func (p *Platform) allVCPUs() []*vcpu {
	if all := p.vcpus.Load(); all != nil {
		return *all
	}
	return nil
}

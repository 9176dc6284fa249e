package vmm

// acquire takes a free vCPU for c on OS thread tid, waiting while all the
// vCPUs c may run on (platform.CPUAffinity) are busy; an Interrupt ends
// the wait with errInterrupted. Among the allowed ones it prefers, in
// order: the vCPU last run on tid (KVM pays a synchronize_rcu() when a
// vCPU's thread changes), the vCPU that holds c's FP state, a vCPU never
// run, any free one. Before returning it saves the FP state of the vCPU's
// previous owner into that context.
func (p *Platform) acquire(c *context, tid int) (*vcpu, error) {
	p.mu.Lock()
	var v *vcpu
	for {
		if v = p.pickLocked(c, tid); v != nil {
			break
		}
		if c.pending.Load() {
			p.mu.Unlock()
			return nil, errInterrupted
		}
		p.cond.Wait()
	}
	v.held = true
	if v.lastTID != 0 && v.lastTID != tid {
		v.stats.migrations.Add(1)
	}
	v.lastTID = tid
	prev := v.fpOwner
	v.fpOwner = c
	p.mu.Unlock()

	if prev != nil && prev != c {
		prev.fpMu.Lock()
		var err error
		if prev.fpHome == v {
			err = prev.saveFPLocked()
		}
		prev.fpMu.Unlock()
		if err != nil {
			p.release(v)
			return nil, err
		}
	}
	return v, nil
}

// pickLocked returns the best free vCPU c may run on, on tid, or nil.
//
// Preconditions: p.mu is held.
func (p *Platform) pickLocked(c *context, tid int) *vcpu {
	var best *vcpu
	bestScore := -1
	mask := c.cpus.Load()
	for i, v := range p.cpus {
		if v.held || mask != nil && !(*mask)[i] {
			continue
		}
		score := 0
		switch {
		case v.lastTID == tid:
			score = 3
		case v.fpOwner == c:
			score = 2
		case v.lastTID == 0:
			score = 1
		}
		if score > bestScore {
			best, bestScore = v, score
		}
	}
	return best
}

// release returns v to the pool. Every waiter wakes and picks again:
// waiters differ in the vCPUs they may take.
func (p *Platform) release(v *vcpu) {
	p.mu.Lock()
	v.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

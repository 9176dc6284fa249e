package ptrace

import (
	"sync"
)

// cpuPool hands out vCPU indices: a context holds one for the duration of
// its Switch. A buffered channel of indices would be cheaper to write but
// cannot honour a context's CPU mask (platform.CPUAffinity), so the pool
// keeps the free set under a mutex and hands a released vCPU directly to
// the oldest waiter that may run on it.
//
// The uncontended path (a free allowed vCPU) is one mutex acquisition in
// acquire and one in release, no system call and no allocation.
type cpuPool struct {
	mu sync.Mutex
	// free[i] is set while vCPU i is not held. Protected by mu.
	free []bool
	// waiters are the contexts blocked in acquire, oldest first.
	// Protected by mu.
	waiters []*context
}

func newCPUPool(n int) *cpuPool {
	p := &cpuPool{free: make([]bool, n)}
	for i := range p.free {
		p.free[i] = true
	}
	return p
}

// acquire takes a vCPU c may run on, waiting while none is free; ok is
// false if Interrupt came first. Among the free allowed vCPUs it prefers
// the one c ran on last, so a task that is not contended for stays on one
// vCPU (what getcpu(2) shows), then the lowest.
func (p *cpuPool) acquire(c *context) (cpu int, ok bool) {
	p.mu.Lock()
	if cpu = p.pickLocked(c); cpu >= 0 {
		p.takeLocked(c, cpu)
		p.mu.Unlock()
		return cpu, true
	}
	c.waiting = true
	p.waiters = append(p.waiters, c)
	p.mu.Unlock()
	for {
		select {
		case cpu = <-c.grant:
			return cpu, true
		case <-c.kickWaiter:
			if !c.pending.Swap(false) {
				// A stale kick whose interrupt a Switch consumed.
				continue
			}
			p.mu.Lock()
			if c.waiting {
				p.dequeueLocked(c)
				p.mu.Unlock()
				return -1, false
			}
			p.mu.Unlock()
			// A release granted a vCPU at the same time: pass it on,
			// the interrupt wins.
			p.release(<-c.grant)
			return -1, false
		}
	}
}

// release returns cpu to the pool, or hands it to the oldest waiter
// allowed to run on it.
func (p *cpuPool) release(cpu int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.waiters {
		if w.allowed(cpu) {
			p.dequeueLocked(w)
			p.grantLocked(w, cpu)
			return
		}
	}
	p.free[cpu] = true
}

// recheck gives c a free vCPU if it is waiting and its new mask allows
// one (SetCPUs).
func (p *cpuPool) recheck(c *context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !c.waiting {
		return
	}
	if cpu := p.pickLocked(c); cpu >= 0 {
		p.dequeueLocked(c)
		p.grantLocked(c, cpu)
	}
}

// numFree returns the number of free vCPUs.
func (p *cpuPool) numFree() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.free {
		if f {
			n++
		}
	}
	return n
}

// pickLocked returns the free vCPU c should take, or -1.
//
// Preconditions: p.mu is held.
func (p *cpuPool) pickLocked(c *context) int {
	if l := c.lastCPU; l >= 0 && p.free[l] && c.allowed(l) {
		return l
	}
	for i, f := range p.free {
		if f && c.allowed(i) {
			return i
		}
	}
	return -1
}

// takeLocked marks cpu held by c.
//
// Preconditions: p.mu is held; cpu is free.
func (p *cpuPool) takeLocked(c *context, cpu int) {
	p.free[cpu] = false
	c.lastCPU = cpu
}

// grantLocked gives cpu to the waiter c, which has left the queue. The
// send cannot block: a context waits in one acquire at a time and
// receives every grant it is sent.
//
// Preconditions: p.mu is held.
func (p *cpuPool) grantLocked(c *context, cpu int) {
	p.takeLocked(c, cpu)
	c.grant <- cpu
}

// dequeueLocked removes the waiting context c from the queue.
//
// Preconditions: p.mu is held and c.waiting is set.
func (p *cpuPool) dequeueLocked(c *context) {
	for i, w := range p.waiters {
		if w == c {
			n := copy(p.waiters[i:], p.waiters[i+1:])
			p.waiters[i+n] = nil
			p.waiters = p.waiters[:i+n]
			break
		}
	}
	c.waiting = false
}

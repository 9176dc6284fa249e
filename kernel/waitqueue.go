package kernel

import "sync"

// Waiter is one blocked party of a WaitQueue. Its channel holds at most one
// token, so a notification that comes before the wait starts is not lost.
type Waiter struct {
	C chan struct{}
}

// NewWaiter returns a waiter with an empty channel.
func NewWaiter() *Waiter { return &Waiter{C: make(chan struct{}, 1)} }

// notify posts a token if none is pending.
func (w *Waiter) notify() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

// WaitQueue is a set of waiters woken together when something they wait
// for may have changed (Linux: wait_queue_head_t). The usual pattern:
//
//	w := NewWaiter()
//	q.Add(w)
//	defer q.Remove(w)
//	for !ready() {
//		if err := t.Block(w.C); err != nil {
//			return 0, ERESTARTSYS
//		}
//	}
type WaitQueue struct {
	mu sync.Mutex
	// waiters is protected by mu.
	waiters map[*Waiter]struct{}
}

// Add registers w.
func (q *WaitQueue) Add(w *Waiter) {
	q.mu.Lock()
	if q.waiters == nil {
		q.waiters = make(map[*Waiter]struct{})
	}
	q.waiters[w] = struct{}{}
	q.mu.Unlock()
}

// Remove unregisters w.
func (q *WaitQueue) Remove(w *Waiter) {
	q.mu.Lock()
	delete(q.waiters, w)
	q.mu.Unlock()
}

// Notify wakes every registered waiter.
func (q *WaitQueue) Notify() {
	q.mu.Lock()
	for w := range q.waiters {
		w.notify()
	}
	q.mu.Unlock()
}

// Empty reports whether no waiter is registered.
func (q *WaitQueue) Empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters) == 0
}

//! Blocking: the primitive `block`, wait queues, and the lock under `Mutex` and the command
//! context.

use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::global;
use super::machine::Instant;
use super::scheduler::{self, CoroutineId, Wake};

/// Block the running context until another one wakes it or `deadline` passes.
///
/// Delivers a pending cancellation when it returns.
pub(crate) fn block(deadline: Option<Instant>) -> Wake {
    scheduler::switch_away(|s| s.prepare_block(deadline))
}

/// One waiting coroutine.
struct Waiter {
    id: CoroutineId,
    /// Already woken for this queue and not yet back to check its condition.
    notified: bool,
}

/// Coroutines waiting for a condition, woken in arrival order.
pub(crate) struct WaitQueue {
    /// Oldest first. A `Vec`, not a `VecDeque`: waiters leave from anywhere in the queue, the
    /// queues are short, and `VecDeque::remove` costs the firmware far more code.
    waiters: RefCell<Vec<Waiter>>,
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        WaitQueue {
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// Block until `ready()` returns true (it is called once on entry and after each wake-up,
    /// and may claim what it checks), or until `deadline`. Returns whether `ready()` succeeded.
    pub(crate) fn wait_until(
        &self,
        mut ready: impl FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        if ready() {
            return true;
        }
        let me = global::with(|s| s.current());
        self.waiters.borrow_mut().push(Waiter {
            id: me,
            notified: false,
        });
        // Leaves the queue however this function is left, unwinding (cancellation) included.
        let _entry = Registered {
            queue: self,
            id: me,
        };
        loop {
            let wake = block(deadline);
            if ready() {
                self.set_notified(me, false);
                return true;
            }
            if wake == Wake::TimedOut {
                return false;
            }
            self.set_notified(me, false);
        }
    }

    fn set_notified(&self, id: CoroutineId, notified: bool) {
        if let Some(w) = self.waiters.borrow_mut().iter_mut().find(|w| w.id == id) {
            w.notified = notified;
        }
    }

    /// Wake the longest-waiting coroutine not yet woken. Returns whether one was.
    pub(crate) fn notify_one(&self) -> bool {
        loop {
            let candidate = {
                let waiters = self.waiters.borrow();
                waiters
                    .iter()
                    .position(|w| !w.notified)
                    .map(|i| (i, waiters[i].id))
            };
            let Some((i, id)) = candidate else {
                return false;
            };
            if global::with(|s| s.wake(id)) {
                self.waiters.borrow_mut()[i].notified = true;
                return true;
            }
            // A coroutine that ended without leaving the queue (cancelled without unwinding).
            self.waiters.borrow_mut().remove(i);
        }
    }

    /// Wake every waiting coroutine.
    pub(crate) fn notify_all(&self) {
        while self.notify_one() {}
    }

    /// Whether nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }
}

/// Removes its coroutine from the queue when dropped.
struct Registered<'a> {
    queue: &'a WaitQueue,
    id: CoroutineId,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut waiters = self.queue.waiters.borrow_mut();
        if let Some(i) = waiters.iter().position(|w| w.id == self.id) {
            let was_notified = waiters[i].notified;
            waiters.remove(i);
            drop(waiters);
            // A wake-up meant for us that we did not use (timeout, cancellation) goes on.
            if was_notified {
                self.queue.notify_one();
            }
        }
    }
}

/// An exclusive lock with an owner and a wait queue.
pub(crate) struct RawLock {
    owner: Cell<Option<CoroutineId>>,
    queue: WaitQueue,
}

impl RawLock {
    pub(crate) const fn new() -> Self {
        RawLock {
            owner: Cell::new(None),
            queue: WaitQueue::new(),
        }
    }

    /// Take the lock if it is free, or if its owner ended without releasing it (a coroutine
    /// cancelled on a machine without unwinding).
    pub(crate) fn try_acquire(&self) -> bool {
        let me = global::with(|s| s.current());
        match self.owner.get() {
            Some(owner) if owner == me => {
                panic!("lunbox coroutines: lock taken twice by the same coroutine (deadlock)")
            }
            Some(owner) if global::with(|s| s.is_alive(owner)) => false,
            _ => {
                self.owner.set(Some(me));
                true
            }
        }
    }

    /// Wait for the lock, up to `deadline`. Returns whether it is now ours.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> bool {
        self.queue.wait_until(|| self.try_acquire(), deadline)
    }

    pub(crate) fn release(&self) {
        self.owner.set(None);
        self.queue.notify_one();
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.owner
            .get()
            .is_some_and(|o| global::with(|s| s.is_alive(o)))
    }
}

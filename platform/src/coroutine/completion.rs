//! `Completion`: "this happened" signals, after Linux's `struct completion`.

use core::cell::Cell;
use core::time::Duration;

use super::global;
use super::wait::WaitQueue;

/// `done` value of a completion completed for everyone.
const ALL: u32 = u32::MAX;

/// Something one coroutine waits for and another signals, like Linux's `struct completion`.
///
/// Each [`Completion::complete`] lets one wait through (counted: two completes, two waits);
/// [`Completion::complete_all`] lets every present and future wait through until
/// [`Completion::reinit`]. Share it with `Rc` or a `'static`.
pub struct Completion {
    done: Cell<u32>,
    queue: WaitQueue,
}

impl Completion {
    /// A completion that has not happened.
    pub const fn new() -> Self {
        Completion {
            done: Cell::new(0),
            queue: WaitQueue::new(),
        }
    }

    /// Let one waiter (present or future) through.
    pub fn complete(&self) {
        let done = self.done.get();
        if done != ALL {
            self.done.set(done.saturating_add(1).min(ALL - 1));
        }
        self.queue.notify_one();
    }

    /// Let every waiter through, now and until [`Completion::reinit`].
    pub fn complete_all(&self) {
        self.done.set(ALL);
        self.queue.notify_all();
    }

    /// Wait until completed, consuming one [`Completion::complete`].
    pub fn wait(&self) {
        self.queue.wait_until(|| self.try_wait(), None);
    }

    /// Wait until completed or until the running coroutine is asked to stop
    /// ([`super::should_stop`]). Returns whether it was completed (and consumed).
    pub fn wait_stoppable(&self) -> bool {
        let mut completed = false;
        self.queue.wait_until(
            || {
                completed = self.try_wait();
                completed || super::should_stop()
            },
            None,
        );
        completed
    }

    /// Wait at most `timeout`. Returns `false` if it timed out.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = global::with(|s| s.now()) + timeout;
        self.queue.wait_until(|| self.try_wait(), Some(deadline))
    }

    /// Consume a completion if there is one, without waiting.
    pub fn try_wait(&self) -> bool {
        match self.done.get() {
            0 => false,
            ALL => true,
            n => {
                self.done.set(n - 1);
                true
            }
        }
    }

    /// Whether a wait would pass now (Linux's `completion_done`).
    pub fn is_done(&self) -> bool {
        self.done.get() != 0
    }

    /// Forget past completions, ready for reuse.
    pub fn reinit(&self) {
        self.done.set(0);
    }

    /// Whether a coroutine is waiting on it.
    pub fn has_waiters(&self) -> bool {
        !self.queue.is_empty()
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

//! The sandbox machine: the host's monotonic clock, and an idle hook that sleeps in poll(2)
//! on the sockets and the console until the next timer, waking whoever waits for them.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::vec::Vec;

use crate::coroutine::{Completion, Instant, Machine};

use super::os;

/// Something outside the runtime a coroutine waits for: readable file descriptors, and the
/// completion to signal when one is.
pub struct Source {
    /// Descriptors to watch (refreshed by the owner when they change).
    pub fds: RefCell<Vec<RawFd>>,
    /// Completed when one of them is readable.
    pub ready: Rc<Completion>,
    /// Set with `ready` when one of the descriptors was readable; [`Source::take_readable`]
    /// clears it. A completion can be shared with other wakers (the console's is also the
    /// USB serial port's): this says whether the descriptors were the reason, so that their
    /// owner does not try a read that would fail with `EAGAIN`.
    readable: Cell<bool>,
}

impl Source {
    /// A source watching nothing yet.
    pub fn new() -> Rc<Source> {
        Rc::new(Source {
            fds: RefCell::new(Vec::new()),
            ready: Rc::new(Completion::new()),
            readable: Cell::new(false),
        })
    }

    /// Whether one of the descriptors was found readable since the last call (or since
    /// [`Source::mark_readable`]); clears the mark. Readiness is level-triggered: a descriptor
    /// with input left is found readable again at the next idle.
    pub fn take_readable(&self) -> bool {
        self.readable.replace(false)
    }

    /// Note that a descriptor may have input without waiting for the idle hook to find it (at
    /// the start, or after a read that filled its buffer).
    pub fn mark_readable(&self) {
        self.readable.set(true);
    }
}

/// The sandbox's [`Machine`].
pub struct SandboxMachine {
    origin: std::time::Instant,
    sources: RefCell<Vec<Rc<Source>>>,
}

impl SandboxMachine {
    /// A machine with the host clock starting now.
    pub fn new() -> Self {
        SandboxMachine {
            origin: std::time::Instant::now(),
            sources: RefCell::new(Vec::new()),
        }
    }

    /// Watch `source` while idle.
    pub fn watch(&self, source: Rc<Source>) {
        self.sources.borrow_mut().push(source);
    }
}

impl Default for SandboxMachine {
    fn default() -> Self {
        Self::new()
    }
}

/// A shared machine can be installed while the board keeps a handle to add sources.
impl Machine for Rc<SandboxMachine> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn idle(&self, deadline: Option<Instant>) {
        (**self).idle(deadline)
    }
}

impl Machine for SandboxMachine {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn idle(&self, deadline: Option<Instant>) {
        let timeout = deadline.map(|d| d - self.now());
        let sources = self.sources.borrow().clone();
        let mut fds = Vec::new();
        let mut owner = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            for &fd in s.fds.borrow().iter() {
                fds.push(fd);
                owner.push(i);
            }
        }
        if fds.is_empty() {
            if let Some(t) = timeout {
                std::thread::sleep(t);
            } else {
                // Nothing can ever happen: every coroutine waits for another.
                panic!("lunbox sandbox: deadlock: every coroutine waits and nothing is watched");
            }
            return;
        }
        let ready = os::wait_readable(&fds, timeout);
        let mut signalled = vec![false; sources.len()];
        for (k, r) in ready.into_iter().enumerate() {
            if r && !signalled[owner[k]] {
                signalled[owner[k]] = true;
                let s = &sources[owner[k]];
                s.readable.set(true);
                if !s.ready.is_done() {
                    s.ready.complete();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn idle_marks_only_the_sources_with_input() {
        let machine = SandboxMachine::new();
        let (mut a_tx, a_rx) = UnixStream::pair().unwrap();
        let (_b_tx, b_rx) = UnixStream::pair().unwrap();
        let (a, b) = (Source::new(), Source::new());
        a.fds.borrow_mut().push(a_rx.as_raw_fd());
        b.fds.borrow_mut().push(b_rx.as_raw_fd());
        machine.watch(a.clone());
        machine.watch(b.clone());

        // Nothing to read: the deadline passes, nobody is marked or woken.
        machine.idle(Some(machine.now() + Duration::from_millis(5)));
        assert!(!a.take_readable() && !b.take_readable());
        assert!(!a.ready.is_done() && !b.ready.is_done());

        a_tx.write_all(b"x").unwrap();
        machine.idle(Some(machine.now() + Duration::from_secs(5)));
        assert!(a.ready.is_done() && !b.ready.is_done());
        assert!(a.take_readable(), "the source with input is marked");
        assert!(!a.take_readable(), "taking the mark clears it");
        assert!(!b.take_readable());

        // Level-triggered: the unread byte marks the source again at the next idle.
        machine.idle(Some(machine.now() + Duration::from_secs(5)));
        assert!(a.take_readable());

        b.mark_readable();
        assert!(b.take_readable() && !b.take_readable());
    }
}

//! The sandbox machine: the host's monotonic clock, and an idle hook that sleeps in poll(2)
//! on the sockets and the console until the next timer, waking whoever waits for them.

use std::cell::RefCell;
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
}

impl Source {
    /// A source watching nothing yet.
    pub fn new() -> Rc<Source> {
        Rc::new(Source {
            fds: RefCell::new(Vec::new()),
            ready: Rc::new(Completion::new()),
        })
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
                if !s.ready.is_done() {
                    s.ready.complete();
                }
            }
        }
    }
}

//! Spawning coroutines and their kthread-like handles.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::marker::PhantomData;

use super::global;
use super::scheduler::{CoroutineId, Outcome, Shared};
use super::wait::WaitQueue;

/// Stack size of a coroutine spawned without [`Builder::stack_size`].
///
/// 8 KiB on the MCU. On std hosts 64 KiB: std's formatting and panic machinery and unoptimised
/// debug builds need far more stack than the firmware does.
pub const DEFAULT_STACK_SIZE: usize = if cfg!(feature = "std") {
    64 * 1024
} else {
    8 * 1024
};

/// Configures a coroutine before it is spawned.
#[derive(Debug, Clone)]
pub struct Builder {
    name: String,
    stack_size: usize,
}

impl Builder {
    /// A coroutine called `name` with the default stack size.
    pub fn new(name: impl Into<String>) -> Self {
        Builder {
            name: name.into(),
            stack_size: DEFAULT_STACK_SIZE,
        }
    }

    /// Use a stack of `bytes` (rounded up to 16, at least [`super::MIN_STACK_SIZE`]).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Create the coroutine. It first runs when the caller yields or blocks.
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        #[cfg(all(feature = "std", panic = "unwind"))]
        install_panic_hook();
        let shared = Rc::new(Shared {
            name: self.name.clone(),
            outcome: RefCell::new(None),
            joiners: WaitQueue::new(),
        });
        let value = Rc::new(Cell::new(None));
        let slot = value.clone();
        let body = Box::new(move || slot.set(Some(f())));
        let id = global::with(|s| s.spawn(self.name, self.stack_size, body, shared.clone()));
        JoinHandle {
            id,
            shared,
            value,
            _not_send: PhantomData,
        }
    }
}

/// Spawn a coroutine called `name` with the default stack size.
pub fn spawn<T: 'static>(
    name: impl Into<String>,
    f: impl FnOnce() -> T + 'static,
) -> JoinHandle<T> {
    Builder::new(name).spawn(f)
}

/// Why [`JoinHandle::join`] has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The coroutine panicked (only on targets that unwind; elsewhere a panic halts).
    Panicked {
        /// The coroutine's name.
        name: String,
        /// The panic message.
        message: String,
    },
    /// The coroutine was cancelled.
    Cancelled {
        /// The coroutine's name.
        name: String,
    },
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked { name, message } => {
                write!(f, "coroutine '{name}' panicked: {message}")
            }
            JoinError::Cancelled { name } => write!(f, "coroutine '{name}' was cancelled"),
        }
    }
}

/// Owns a spawned coroutine: stop it, cancel it, wake it, wait for it.
///
/// Dropping the handle detaches the coroutine: it runs on, and its record goes when it ends.
pub struct JoinHandle<T> {
    id: CoroutineId,
    shared: Rc<Shared>,
    value: Rc<Cell<Option<T>>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> JoinHandle<T> {
    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        self.id
    }

    /// The coroutine's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether it has returned, panicked or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.shared.outcome.borrow().is_some()
    }

    /// Ask it to stop (kthread_stop without the wait): [`super::should_stop`] turns true in it,
    /// and it is woken from a sleep or park.
    pub fn request_stop(&self) {
        global::with(|s| s.request_stop(self.id));
    }

    /// Ask it to stop and wait until it has (kthread_stop).
    pub fn stop(self) -> Result<T, JoinError> {
        self.request_stop();
        self.join()
    }

    /// End it at its next blocking point (yield, sleep, wait, lock) without its cooperation.
    ///
    /// On hosts that unwind, the coroutine unwinds from that point and its destructors run.
    /// On the MCU (panic = abort) its frames are abandoned like barebox's `bthread_cancel`:
    /// the stack is freed without running their destructors, so what they owned leaks and a
    /// [`super::Mutex`] it held is handed to the next locker. Prefer [`JoinHandle::stop`].
    /// A coroutine that never started does not run at all.
    pub fn cancel(&self) {
        global::with(|s| s.request_cancel(self.id));
    }

    /// Wake it if it is parked (see [`super::park`]).
    pub fn unpark(&self) {
        super::unpark(self.id);
    }

    /// Wait until it has ended and return its value.
    pub fn join(self) -> Result<T, JoinError> {
        self.shared.joiners.wait_until(|| self.is_finished(), None);
        let outcome = self.shared.outcome.borrow().clone();
        let name = self.shared.name.clone();
        match outcome {
            Some(Outcome::Returned) => match self.value.take() {
                Some(value) => Ok(value),
                None => unreachable!("lunbox coroutines: returned without a value"),
            },
            Some(Outcome::Panicked(message)) => Err(JoinError::Panicked { name, message }),
            Some(Outcome::Cancelled) | None => Err(JoinError::Cancelled { name }),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let id = self.id;
        let _ = global::try_with(|s| s.release(id));
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("name", &self.name())
            .finish()
    }
}

/// Make panic messages name the coroutine they happened in (once per process).
#[cfg(all(feature = "std", panic = "unwind"))]
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = super::current_name().filter(|_| super::in_coroutine()) {
                std::eprintln!("lunbox: panic in coroutine '{name}':");
            }
            previous(info);
        }));
    });
}

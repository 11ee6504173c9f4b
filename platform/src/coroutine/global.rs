//! Where the scheduler lives: one per OS thread on std hosts, one static on the MCU.

use core::cell::RefCell;

use super::scheduler::Scheduler;

#[cfg(feature = "std")]
std::thread_local! {
    static SCHEDULER: RefCell<Option<Scheduler>> = const { RefCell::new(None) };
}

/// Run `f` with the scheduler of this thread, creating it on first use.
///
/// Never call a blocking runtime function inside `f`: the scheduler is borrowed.
#[cfg(feature = "std")]
pub(crate) fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    SCHEDULER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let sched = slot.get_or_insert_with(|| {
            Scheduler::new(alloc::rc::Rc::new(super::machine::HostMachine::new()))
        });
        f(sched)
    })
}

/// Like [`with`], but `None` instead of a panic when the scheduler is busy or gone (for the
/// panic path, which may run while the scheduler is borrowed).
#[cfg(feature = "std")]
pub(crate) fn try_with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> Option<R> {
    SCHEDULER
        .try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .and_then(|mut s| s.as_mut().map(f))
        })
        .ok()
        .flatten()
}

/// Install the scheduler with `machine`, or hand the machine to the existing one.
#[cfg(feature = "std")]
pub(crate) fn install(machine: alloc::rc::Rc<dyn super::Machine>) {
    SCHEDULER.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some(sched) => sched.set_machine(machine),
            None => *slot = Some(Scheduler::new(machine)),
        }
    })
}

/// The scheduler of a single-core machine without threads.
#[cfg(not(feature = "std"))]
struct Global(RefCell<Option<Scheduler>>);

// SAFETY: without std the runtime runs on a single core with no threads, and `init`'s contract
// forbids touching the runtime from interrupt handlers, so the cell is only ever used from one
// execution context.
#[cfg(not(feature = "std"))]
unsafe impl Sync for Global {}

#[cfg(not(feature = "std"))]
static SCHEDULER: Global = Global(RefCell::new(None));

/// Run `f` with the scheduler. Panics if [`super::init`] was not called.
#[cfg(not(feature = "std"))]
pub(crate) fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    let mut slot = SCHEDULER.0.borrow_mut();
    let sched = slot
        .as_mut()
        .expect("lunbox coroutines: runtime used before coroutine::init()");
    f(sched)
}

/// Like [`with`], but `None` when the scheduler is busy or not initialised.
#[cfg(not(feature = "std"))]
pub(crate) fn try_with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> Option<R> {
    SCHEDULER
        .0
        .try_borrow_mut()
        .ok()
        .and_then(|mut s| s.as_mut().map(f))
}

/// Install the scheduler with `machine`, or hand the machine to the existing one.
#[cfg(not(feature = "std"))]
pub(crate) fn install(machine: alloc::rc::Rc<dyn super::Machine>) {
    let mut slot = SCHEDULER.0.borrow_mut();
    match slot.as_mut() {
        Some(sched) => sched.set_machine(machine),
        None => *slot = Some(Scheduler::new(machine)),
    }
}

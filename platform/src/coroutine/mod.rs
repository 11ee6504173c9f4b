//! Stackful coroutines: the Rust counterpart of barebox's bthreads.
//!
//! Every long-running job (the USB controller poller, mass storage, DFU, the console) is a
//! coroutine on its own stack, written as plain blocking code that may give up the processor
//! at any call depth. There is no preemption: a coroutine runs until it yields, sleeps, waits
//! or returns. The program's own stack is the *main context* and takes part like any other.
//!
//! ```text
//!  spawn ─► Ready ─► Running ─┬─ yield_now ─────────────► Ready
//!                             ├─ sleep / wait / lock ───► Blocked ─ wake, timer ─► Ready
//!                             └─ return, panic, cancel ─► Finished
//! ```
//!
//! When nothing is ready the scheduler calls the [`Machine`]'s idle hook with the next timer
//! deadline: `WFI` on the MCU, `poll(2)` in the sandbox, never a busy loop.
//!
//! On std hosts each OS thread has its own scheduler (created on first use with the host
//! clock); without std, call [`init`] once before anything else.

mod arch;
mod command;
mod completion;
mod global;
#[cfg(all(feature = "std", unix))]
mod guard;
mod machine;
mod mutex;
mod scheduler;
mod selftest;
mod stack;
mod task;
mod wait;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

pub use command::{CommandGuard, command_context, in_command_context, try_command_context};
pub use completion::Completion;
#[cfg(feature = "std")]
pub use machine::HostMachine;
pub use machine::{Instant, Machine};
pub use mutex::{Mutex, MutexGuard};
pub use scheduler::{CoroutineId, CoroutineInfo, State};
pub use selftest::{SelfTestReport, raw_switch_time, self_test};
pub use stack::MIN_STACK_SIZE;
pub use task::{Builder, DEFAULT_STACK_SIZE, JoinError, JoinHandle, spawn};

use scheduler::{Scheduler, Wake};

/// Install the runtime on `machine` (on std hosts: replace this thread's machine, for example
/// with a fake clock in tests, or the sandbox's `poll(2)`-based one).
#[cfg(feature = "std")]
pub fn init(machine: impl Machine + 'static) {
    global::install(Rc::new(machine));
}

/// Install the runtime on `machine`. Call once, from thread mode, before any other function
/// of this module.
///
/// # Safety
/// The runtime keeps its state in a static without locking. The caller must run it on one
/// core and never call any function of this module from an interrupt handler.
#[cfg(not(feature = "std"))]
pub unsafe fn init(machine: impl Machine + 'static) {
    global::install(Rc::new(machine));
}

/// Let every other ready coroutine run once, then continue. Callable at any call depth.
pub fn yield_now() {
    scheduler::switch_away(Scheduler::prepare_yield);
}

/// Sleep for `duration` (other coroutines run meanwhile). Returns early only when the
/// coroutine is asked to stop (see [`should_stop`]).
pub fn sleep(duration: Duration) {
    sleep_until(now() + duration);
}

/// Sleep until `deadline` on the machine clock. Returns early only when asked to stop.
pub fn sleep_until(deadline: Instant) {
    while !should_stop() && now() < deadline {
        wait::block(Some(deadline));
    }
}

/// Block until [`unpark`] (or [`JoinHandle::unpark`], or a stop request) wakes this coroutine.
/// May also return spuriously; check your condition in a loop.
pub fn park() {
    if !should_stop() {
        wait::block(None);
    }
}

/// Like [`park`], but for at most `timeout`. Returns `false` if it timed out.
pub fn park_timeout(timeout: Duration) -> bool {
    if should_stop() {
        return true;
    }
    let deadline = now() + timeout;
    wait::block(Some(deadline)) == Wake::Woken
}

/// Wake coroutine `id` if it is parked or sleeping in [`park`]/[`park_timeout`]. Returns
/// whether `id` is still alive.
pub fn unpark(id: CoroutineId) -> bool {
    global::with(|s| s.wake(id))
}

/// Whether the running coroutine has been asked to stop ([`JoinHandle::request_stop`]) or
/// cancelled. Long-running loops check it, like Linux's `kthread_should_stop()`.
pub fn should_stop() -> bool {
    global::with(|s| s.should_stop())
}

/// Wait until every spawned coroutine has ended (call from the main context).
pub fn run() {
    let all_done = global::with(|s| s.all_done.clone());
    all_done.wait_until(|| global::with(|s| s.live() == 0), None);
}

/// The machine clock now.
pub fn now() -> Instant {
    global::with(|s| s.now())
}

/// The running coroutine ([`CoroutineId::MAIN`] for the main context).
pub fn current() -> CoroutineId {
    global::with(|s| s.current())
}

/// Whether the caller runs on a spawned coroutine rather than the main context.
pub fn in_coroutine() -> bool {
    global::try_with(|s| s.current() != CoroutineId::MAIN).unwrap_or(false)
}

/// The running coroutine's name; `None` if the runtime is busy or not set up (for panic
/// handlers, which may run anywhere).
pub fn current_name() -> Option<String> {
    global::try_with(|s| s.name_of(s.current()).map(String::from)).flatten()
}

/// A snapshot of every coroutine the runtime knows, the main context first.
pub fn coroutines() -> Vec<CoroutineInfo> {
    global::with(|s| s.info())
}

/// Bytes of stack left to the caller before the canary, or `None` on the main context.
#[inline(never)]
pub fn stack_remaining() -> Option<usize> {
    let marker = 0u8;
    let sp = core::ptr::addr_of!(marker) as usize;
    global::with(|s| s.stack_remaining(sp))
}

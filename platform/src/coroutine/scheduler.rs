//! The scheduler: coroutine records, the ready queue, timers, and the switch itself.
//!
//! The main context (the program's own stack) is coroutine 0. Every context, main included,
//! schedules by itself: when it yields or blocks it picks the next ready context and switches
//! straight to it. When nothing is ready it calls the machine's idle hook with the next timer.

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;

use super::arch;
use super::global;
use super::machine::{Instant, Machine};
use super::stack::Stack;
use super::wait::{RawLock, WaitQueue};

/// Identifies one coroutine for as long as the program runs (slots are reused, ids are not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoroutineId {
    index: u32,
    generation: u32,
}

impl CoroutineId {
    /// The main context: the program's own stack.
    pub const MAIN: CoroutineId = CoroutineId {
        index: 0,
        generation: 0,
    };
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

/// What a coroutine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting in the ready queue.
    Ready,
    /// Running now.
    Running,
    /// Sleeping or waiting for a completion, a lock, a join or a wake-up.
    Blocked,
    /// Returned, panicked or was cancelled; its stack is freed.
    Finished,
}

impl State {
    /// Lower-case name for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Running => "running",
            State::Blocked => "blocked",
            State::Finished => "finished",
        }
    }
}

/// Why a blocked coroutine runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Another context woke it.
    Woken,
    /// Its deadline passed.
    TimedOut,
}

/// How a coroutine ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Returned,
    #[cfg_attr(
        not(all(feature = "std", panic = "unwind")),
        expect(
            dead_code,
            reason = "without unwinding a panic halts instead of ending a coroutine"
        )
    )]
    Panicked(String),
    Cancelled,
}

/// Cancellation progress of one coroutine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cancel {
    No,
    Requested,
    Delivered,
}

/// What a coroutine shares with its join handle.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) outcome: core::cell::RefCell<Option<Outcome>>,
    pub(crate) joiners: WaitQueue,
}

/// One coroutine's record.
struct Task {
    name: String,
    state: State,
    /// Saved stack pointer while not running.
    sp: usize,
    /// `None` for the main context and once finished.
    stack: Option<Stack>,
    stack_size: usize,
    high_water: usize,
    body: Option<Box<dyn FnOnce()>>,
    switches: u64,
    stop: bool,
    cancel: Cancel,
    woke: Wake,
    /// Sequence number of the armed timer, 0 when none.
    timer: u64,
    shared: Option<Rc<Shared>>,
    handle_dropped: bool,
}

struct Slot {
    generation: u32,
    task: Option<Box<Task>>,
}

/// A snapshot of one coroutine, for `bthread -i`-like listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoroutineInfo {
    /// Its id.
    pub id: CoroutineId,
    /// The name given at spawn (`main` for the main context).
    pub name: String,
    /// What it is doing.
    pub state: State,
    /// How many times it has been switched to.
    pub switches: u64,
    /// Stack size in bytes (0 for the main context, whose stack is the program's).
    pub stack_size: usize,
    /// Most stack bytes ever used (from the paint left at creation).
    pub stack_high_water: usize,
}

/// What `switch_away` does next, decided while the scheduler is borrowed and done after.
/// Small and free of heap data, so it stays in registers on the hot path.
enum Step {
    Stay,
    Switch { save: *mut usize, load: usize },
    Idle,
    Overflow(CoroutineId),
}

/// The run-time state of all coroutines of one thread (or of the MCU).
pub(crate) struct Scheduler {
    machine: Rc<dyn Machine>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: VecDeque<CoroutineId>,
    timers: BinaryHeap<Reverse<(Instant, u64, CoroutineId)>>,
    timer_seq: u64,
    /// Yields left before the clock is read again (see `fire_timers`).
    round_left: usize,
    current: CoroutineId,
    /// Base of the running context's stack (null for the main context), for the canary check
    /// without a walk through the records.
    current_stack: *const u8,
    /// Why the context being resumed was woken (copied from its record at the switch).
    resumed_wake: Wake,
    /// Cancellations requested and not yet delivered; the resume path looks no further when 0.
    cancels_pending: usize,
    zombies: Vec<CoroutineId>,
    live: usize,
    pub(crate) all_done: Rc<WaitQueue>,
    pub(crate) command: Rc<RawLock>,
}

impl Scheduler {
    pub(crate) fn new(machine: Rc<dyn Machine>) -> Scheduler {
        let main = Task {
            name: String::from("main"),
            state: State::Running,
            sp: 0,
            stack: None,
            stack_size: 0,
            high_water: 0,
            body: None,
            switches: 0,
            stop: false,
            cancel: Cancel::No,
            woke: Wake::Woken,
            timer: 0,
            shared: None,
            handle_dropped: false,
        };
        Scheduler {
            machine,
            slots: alloc::vec![Slot {
                generation: 0,
                task: Some(Box::new(main))
            }],
            free: Vec::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            round_left: 0,
            current: CoroutineId::MAIN,
            current_stack: core::ptr::null(),
            resumed_wake: Wake::Woken,
            cancels_pending: 0,
            zombies: Vec::new(),
            live: 0,
            all_done: Rc::new(WaitQueue::new()),
            command: Rc::new(RawLock::new()),
        }
    }

    pub(crate) fn set_machine(&mut self, machine: Rc<dyn Machine>) {
        self.machine = machine;
    }

    pub(crate) fn now(&self) -> Instant {
        self.machine.now()
    }

    pub(crate) fn current(&self) -> CoroutineId {
        self.current
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }

    fn task(&self, id: CoroutineId) -> Option<&Task> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.task.as_deref()
    }

    fn task_mut(&mut self, id: CoroutineId) -> Option<&mut Task> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.task.as_deref_mut()
    }

    fn cur(&mut self) -> &mut Task {
        let id = self.current;
        self.task_mut(id)
            .expect("lunbox coroutines: the running coroutine has no record")
    }

    /// Whether `id` names a coroutine that has not finished.
    pub(crate) fn is_alive(&self, id: CoroutineId) -> bool {
        self.task(id).is_some_and(|t| t.state != State::Finished)
    }

    pub(crate) fn name_of(&self, id: CoroutineId) -> Option<&str> {
        self.task(id).map(|t| t.name.as_str())
    }

    /// Create a coroutine that will run `body` on a fresh stack of `stack_size` bytes.
    pub(crate) fn spawn(
        &mut self,
        name: String,
        stack_size: usize,
        body: Box<dyn FnOnce()>,
        shared: Rc<Shared>,
    ) -> CoroutineId {
        let stack = Stack::new(stack_size, &name);
        // SAFETY: `top` ends the stack's allocation, which is aligned to 16 and at least
        // MIN_STACK_SIZE bytes; the stack lives in the task record until the coroutine finished.
        let sp = unsafe { arch::init_stack(stack.top(), coroutine_entry, 0) };
        let task = Task {
            name,
            state: State::Ready,
            sp,
            stack_size: stack.size(),
            stack: Some(stack),
            high_water: 0,
            body: Some(body),
            switches: 0,
            stop: false,
            cancel: Cancel::No,
            woke: Wake::Woken,
            timer: 0,
            shared: Some(shared),
            handle_dropped: false,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).expect("lunbox coroutines: too many");
                self.slots.push(Slot {
                    generation: 0,
                    task: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.task = Some(Box::new(task));
        let id = CoroutineId {
            index,
            generation: slot.generation,
        };
        self.ready.push_back(id);
        self.live += 1;
        id
    }

    /// Move a blocked coroutine to the ready queue. Returns whether `id` is still alive.
    pub(crate) fn wake(&mut self, id: CoroutineId) -> bool {
        let Some(task) = self.task_mut(id) else {
            return false;
        };
        match task.state {
            State::Blocked => {
                task.state = State::Ready;
                task.woke = Wake::Woken;
                task.timer = 0;
                self.ready.push_back(id);
                true
            }
            State::Ready | State::Running => true,
            State::Finished => false,
        }
    }

    /// Mark the running context ready and queue it behind the others.
    pub(crate) fn prepare_yield(&mut self) {
        let id = self.current;
        self.cur().state = State::Ready;
        self.ready.push_back(id);
    }

    /// Mark the running context blocked, with a timer when `deadline` is set.
    pub(crate) fn prepare_block(&mut self, deadline: Option<Instant>) {
        let id = self.current;
        let seq = match deadline {
            Some(deadline) => {
                self.timer_seq += 1;
                self.timers.push(Reverse((deadline, self.timer_seq, id)));
                self.timer_seq
            }
            None => 0,
        };
        let task = self.cur();
        task.state = State::Blocked;
        task.woke = Wake::Woken;
        task.timer = seq;
    }

    /// Move every coroutine whose timer has expired to the ready queue.
    ///
    /// Reads the clock at most once per round of the ready queue (and whenever it is empty),
    /// so a busy round-robin of pollers does not pay for a clock read on every yield.
    fn fire_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        if self.round_left > 0 && !self.ready.is_empty() {
            self.round_left -= 1;
            return;
        }
        self.round_left = self.ready.len();
        let now = self.machine.now();
        while let Some(&Reverse((deadline, seq, id))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            if let Some(task) = self.task_mut(id)
                && task.state == State::Blocked
                && task.timer == seq
            {
                task.state = State::Ready;
                task.woke = Wake::TimedOut;
                task.timer = 0;
                self.ready.push_back(id);
            }
        }
    }

    /// The earliest armed timer, dropping stale ones.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, seq, id))) = self.timers.peek() {
            match self.task(id) {
                Some(task) if task.state == State::Blocked && task.timer == seq => {
                    return Some(deadline);
                }
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Decide what the running context, whose state is already set, does next.
    #[inline(always)]
    fn next_step(&mut self) -> Step {
        let current = self.current;
        // The running context's canary; one about to be resumed was checked when it left.
        // SAFETY: `current_stack` is the base of the running context's stack, alive while it
        // runs (a finished coroutine's stack is freed only after it has switched away).
        if !self.current_stack.is_null() && !unsafe { Stack::canary_intact_at(self.current_stack) }
        {
            return Step::Overflow(current);
        }
        self.fire_timers();
        while let Some(id) = self.ready.pop_front() {
            let Some(next) = self.task_mut(id) else {
                continue;
            };
            if next.state != State::Ready {
                continue;
            }
            next.state = State::Running;
            let wake = next.woke;
            if id == current {
                self.resumed_wake = wake;
                return Step::Stay;
            }
            next.switches += 1;
            let load = next.sp;
            let stack = next.stack.as_ref().map_or(core::ptr::null(), |s| s.base());
            let save: *mut usize = &mut self.cur().sp;
            self.current = id;
            self.current_stack = stack;
            self.resumed_wake = wake;
            return Step::Switch { save, load };
        }
        Step::Idle
    }

    /// The machine and the next timer deadline, for idling.
    fn idle_params(&mut self) -> (Rc<dyn Machine>, Option<Instant>) {
        (self.machine.clone(), self.next_deadline())
    }

    /// Free the stacks of finished coroutines (never the running one's) and forget records
    /// nobody can ask about any more.
    pub(crate) fn reap(&mut self) {
        if self.zombies.is_empty() {
            return;
        }
        while let Some(id) = self.zombies.pop() {
            let index = id.index as usize;
            let Some(task) = self.task_mut(id) else {
                continue;
            };
            if let Some(stack) = task.stack.take() {
                task.high_water = stack.high_water();
            }
            if task.handle_dropped {
                self.forget(index);
            }
        }
    }

    fn forget(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.task = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
    }

    /// The join handle of `id` is gone: forget the record once it is finished and reaped.
    pub(crate) fn release(&mut self, id: CoroutineId) {
        let Some(task) = self.task_mut(id) else {
            return;
        };
        task.handle_dropped = true;
        if task.state == State::Finished && task.stack.is_none() {
            self.forget(id.index as usize);
        }
    }

    /// Take the body of the running coroutine, or `None` if it was cancelled before it started.
    fn take_body(&mut self) -> Option<Box<dyn FnOnce()>> {
        let task = self.cur();
        let body = task.body.take();
        if task.cancel == Cancel::No {
            body
        } else {
            None
        }
    }

    /// Record the end of the running coroutine; returns who to tell.
    fn finish_current(&mut self, outcome: Outcome) -> Option<Rc<Shared>> {
        let id = self.current;
        let task = self.cur();
        task.state = State::Finished;
        task.timer = 0;
        if task.cancel == Cancel::Requested {
            task.cancel = Cancel::Delivered;
            self.cancels_pending -= 1;
        }
        let task = self.cur();
        let shared = task.shared.take();
        if let Some(shared) = &shared {
            *shared.outcome.borrow_mut() = Some(outcome);
        }
        self.zombies.push(id);
        self.live -= 1;
        shared
    }

    pub(crate) fn request_stop(&mut self, id: CoroutineId) {
        if let Some(task) = self.task_mut(id) {
            task.stop = true;
        }
        self.wake(id);
    }

    pub(crate) fn should_stop(&mut self) -> bool {
        let task = self.cur();
        task.stop || task.cancel != Cancel::No
    }

    pub(crate) fn request_cancel(&mut self, id: CoroutineId) {
        if id == CoroutineId::MAIN {
            return;
        }
        if let Some(task) = self.task_mut(id)
            && task.cancel == Cancel::No
            && task.state != State::Finished
        {
            task.cancel = Cancel::Requested;
            task.stop = true;
            self.cancels_pending += 1;
        }
        self.wake(id);
    }

    /// Whether the running coroutine must end now; marks the cancellation delivered.
    fn take_cancel(&mut self) -> bool {
        if self.cancels_pending == 0 {
            return false;
        }
        let task = self.cur();
        if task.cancel == Cancel::Requested && task.stack.is_some() {
            task.cancel = Cancel::Delivered;
            self.cancels_pending -= 1;
            return true;
        }
        false
    }

    pub(crate) fn info(&self) -> Vec<CoroutineInfo> {
        let mut out = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(task) = &slot.task else { continue };
            out.push(CoroutineInfo {
                id: CoroutineId {
                    index: index as u32,
                    generation: slot.generation,
                },
                name: task.name.clone(),
                state: task.state,
                switches: task.switches,
                stack_size: task.stack_size,
                stack_high_water: task
                    .stack
                    .as_ref()
                    .map_or(task.high_water, Stack::high_water),
            });
        }
        out
    }

    /// Bytes left below the caller's stack frame on the running coroutine's stack (above the
    /// canary); `None` on the main context.
    pub(crate) fn stack_remaining(&mut self, sp: usize) -> Option<usize> {
        let (base, _top) = self.cur().stack.as_ref()?.bounds();
        Some(sp.saturating_sub(base + super::stack::CANARY_BYTES))
    }
}

/// Give up the processor: `prepare` sets the running context's state (ready, blocked or
/// finished), then other contexts run until this one is picked again. Delivers a pending
/// cancellation on return, and returns why a blocked context was woken.
///
/// The hot path of every yield: one scheduler borrow before the switch and one after.
pub(crate) fn switch_away(prepare: impl FnOnce(&mut Scheduler)) -> Wake {
    let mut step = global::with(|s| {
        prepare(s);
        s.next_step()
    });
    loop {
        match step {
            Step::Stay => break,
            Step::Switch { save, load } => {
                // SAFETY: `save` points into the running context's boxed record, which outlives
                // this call; `load` is the saved stack pointer of a ready context that is not
                // running, whose stack (in its record) is alive because it has not finished.
                unsafe { arch::switch(save, load) };
                break;
            }
            Step::Idle => {
                let (machine, deadline) = global::with(Scheduler::idle_params);
                machine.idle(deadline);
                step = global::with(Scheduler::next_step);
            }
            Step::Overflow(id) => {
                let name = global::with(|s| String::from(s.name_of(id).unwrap_or("?")));
                stack_overflow(&name)
            }
        }
    }
    let (cancel, wake) = global::with(|s| {
        s.reap();
        (s.take_cancel(), s.resumed_wake)
    });
    if cancel {
        deliver_cancel();
    }
    wake
}

/// A canary was found overwritten: report and halt, never run on a corrupted stack.
#[cold]
fn stack_overflow(name: &str) -> ! {
    #[cfg(feature = "std")]
    {
        std::eprintln!(
            "lunbox: stack overflow in coroutine '{name}': its stack canary was overwritten; halting"
        );
        std::process::abort();
    }
    #[cfg(not(feature = "std"))]
    panic!("lunbox: stack overflow in coroutine '{name}': its stack canary was overwritten");
}

/// End the running coroutine now: its cancellation was requested.
#[cold]
fn deliver_cancel() {
    #[cfg(all(feature = "std", panic = "unwind"))]
    std::panic::resume_unwind(Box::new(CancelUnwind));
    #[cfg(not(all(feature = "std", panic = "unwind")))]
    {
        // Without unwinding the coroutine's frames are abandoned: its stack is freed without
        // running their destructors (see `JoinHandle::cancel`).
        finish(Outcome::Cancelled);
        exit_current();
    }
}

/// Payload of the unwind that delivers a cancellation.
#[cfg(all(feature = "std", panic = "unwind"))]
struct CancelUnwind;

/// First Rust code on a fresh coroutine stack.
///
/// # Safety
/// Only `arch::switch` enters it, on a stack prepared by `Scheduler::spawn`.
unsafe extern "C" fn coroutine_entry(_arg: usize) -> ! {
    global::with(Scheduler::reap);
    run_body();
    exit_current()
}

/// Run the running coroutine's body and record how it ended. Every value it owns is dropped
/// before it returns, so that `exit_current` abandons nothing.
fn run_body() {
    let outcome = match global::with(Scheduler::take_body) {
        None => Outcome::Cancelled,
        Some(body) => run_catching(body),
    };
    finish(outcome);
}

#[cfg(all(feature = "std", panic = "unwind"))]
fn run_catching(body: Box<dyn FnOnce()>) -> Outcome {
    match std::panic::catch_unwind(core::panic::AssertUnwindSafe(body)) {
        Ok(()) => Outcome::Returned,
        Err(payload) if payload.is::<CancelUnwind>() => Outcome::Cancelled,
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                String::from(*s)
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                String::from("(non-string panic payload)")
            };
            Outcome::Panicked(message)
        }
    }
}

#[cfg(not(all(feature = "std", panic = "unwind")))]
fn run_catching(body: Box<dyn FnOnce()>) -> Outcome {
    body();
    Outcome::Returned
}

/// Record the running coroutine's end and wake whoever waits for it.
fn finish(outcome: Outcome) {
    if let Some(shared) = global::with(|s| s.finish_current(outcome)) {
        shared.joiners.notify_all();
    }
    let all_done = global::with(|s| (s.live() == 0).then(|| s.all_done.clone()));
    if let Some(all_done) = all_done {
        all_done.notify_all();
    }
}

/// Leave a finished coroutine for good.
fn exit_current() -> ! {
    switch_away(|_| {});
    unreachable!("lunbox coroutines: a finished coroutine was resumed")
}

//! Context-switch and poller-tax benchmark of the lunbox coroutine runtime.
//!
//! 1. Switch round trip A→B→A, in ns, for lunbox's context switch alone and through
//!    `yield_now()` (the scheduler), corosensei 0.3.4
//!    (`resume` + `Yielder::suspend`), glibc `swapcontext` and an OS-thread hand-off.
//! 2. The poller tax (after barebox's "pollers as proper coroutines" measurement): N trivial
//!    pollers called from a plain loop through `dyn` versus each poller in its own coroutine.
//!
//! Every row is calibrated to about 40 ms per repetition, warmed up, repeated [`REPS`] times;
//! it prints the best repetition and the median. Ratios use the best. Nothing is asserted
//! about time: this is a benchmark, not a test. Run it with
//!
//! ```text
//! cargo bench -p lunbox-platform --bench coroutine
//! ```

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use lunbox_platform::coroutine::{Builder, JoinHandle, raw_switch_time, yield_now};

/// Timed repetitions per row.
const REPS: usize = 9;
/// Wall time one repetition should take after calibration.
const TARGET_REP: Duration = Duration::from_millis(40);
/// Calibration stops growing the iteration count once a run takes this long.
const CALIBRATE_MIN: Duration = Duration::from_millis(10);
/// Number of pollers in the poller-tax measurement.
const POLLERS: usize = 16;
/// Target of the switch round trip: ours / corosensei.
const SWITCH_TARGET: f64 = 1.0;
/// Target of the poller tax: coroutine polls/s / plain polls/s.
const POLLER_TARGET: f64 = 0.90;
/// What barebox reported for its pollers turned into bthreads.
const POLLER_BAREBOX: f64 = 0.70;

/// Nanoseconds per iteration of one row.
#[derive(Clone, Copy, Debug)]
struct Stats {
    best: f64,
    median: f64,
}

/// Calibrate `run` (which performs `iters` iterations and returns the time they took, set-up
/// excluded) to about [`TARGET_REP`]; the calibration runs double as warm-up. Then run it
/// [`REPS`] times and return ns per iteration.
fn measure(mut run: impl FnMut(u64) -> Duration) -> Stats {
    let mut iters: u64 = 64;
    let per_iter = loop {
        let elapsed = run(iters);
        if elapsed >= CALIBRATE_MIN {
            break elapsed.as_secs_f64() / iters as f64;
        }
        iters *= 4;
    };
    let iters = ((TARGET_REP.as_secs_f64() / per_iter) as u64).max(1);
    let mut samples: Vec<f64> = (0..REPS)
        .map(|_| run(iters).as_nanos() as f64 / iters as f64)
        .collect();
    samples.sort_by(f64::total_cmp);
    Stats {
        best: samples[0],
        median: samples[REPS / 2],
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Switch round trips
// ---------------------------------------------------------------------------------------------

/// Ours, main context ⇄ one coroutine: each `yield_now()` of the main context switches to the
/// only other ready context, which returns from its own `yield_now()`, checks a flag and calls
/// `yield_now()` again, switching back. One iteration = one round trip = two full `yield_now()`
/// paths (scheduler bookkeeping included) and two `arch::switch`es.
fn ours_main_coroutine(iters: u64) -> Duration {
    let stop = Rc::new(Cell::new(false));
    let partner_stop = stop.clone();
    let partner = Builder::new("pong").spawn(move || {
        while !partner_stop.get() {
            yield_now();
        }
    });
    // The first switch enters the fresh stack; keep it out of the timing.
    yield_now();
    let start = Instant::now();
    for _ in 0..iters {
        yield_now();
    }
    let elapsed = start.elapsed();
    stop.set(true);
    partner.join().expect("pong coroutine failed");
    elapsed
}

/// Ours, coroutine ⇄ coroutine: the main context blocks in `join`, so A and B are the only
/// ready contexts. Timed inside A: one iteration = one `yield_now()` of A = A→B→A.
fn ours_two_coroutines(iters: u64) -> Duration {
    let stop = Rc::new(Cell::new(false));
    let b_stop = stop.clone();
    let b = Builder::new("b").spawn(move || {
        while !b_stop.get() {
            yield_now();
        }
    });
    let a = Builder::new("a").spawn(move || {
        // B has started once we get here; one more round trip to warm both paths.
        yield_now();
        let start = Instant::now();
        for _ in 0..iters {
            yield_now();
        }
        let elapsed = start.elapsed();
        stop.set(true);
        elapsed
    });
    let elapsed = a.join().expect("coroutine a failed");
    b.join().expect("coroutine b failed");
    elapsed
}

/// corosensei 0.3.4: one iteration = `resume(true)` into the coroutine, which returns from
/// `Yielder::suspend` and suspends again at once.
fn corosensei_round_trips(iters: u64) -> Duration {
    let mut co = Coroutine::new(|yielder: &Yielder<bool, ()>, mut go: bool| {
        while go {
            go = yielder.suspend(());
        }
    });
    // Enter the fresh stack outside the timing.
    black_box(co.resume(true));
    let start = Instant::now();
    for _ in 0..iters {
        black_box(co.resume(true));
    }
    let elapsed = start.elapsed();
    let finished = co.resume(false);
    assert!(matches!(finished, CoroutineResult::Return(())));
    elapsed
}

/// glibc `getcontext`/`makecontext`/`swapcontext`; `None` where the libc crate lacks them.
#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod ucontext {
    use std::ptr;
    use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
    use std::time::{Duration, Instant};

    /// Stack of the swapcontext coroutine.
    const STACK_SIZE: usize = 64 * 1024;

    /// The main side's saved context while the coroutine runs.
    static MAIN: AtomicPtr<libc::ucontext_t> = AtomicPtr::new(ptr::null_mut());
    /// The coroutine's saved context while the main side runs.
    static CO: AtomicPtr<libc::ucontext_t> = AtomicPtr::new(ptr::null_mut());
    /// Tells the coroutine to return (which resumes `uc_link`, the main side).
    static STOP: AtomicBool = AtomicBool::new(false);

    /// A zeroed context on the heap, as a raw pointer (freed with `free_context`).
    fn new_context() -> *mut libc::ucontext_t {
        // SAFETY: `ucontext_t` is plain data (integers, pointers and arrays of them), for which
        // all-zero bytes are a valid value.
        let ctx: libc::ucontext_t = unsafe { std::mem::zeroed() };
        Box::into_raw(Box::new(ctx))
    }

    /// Free a context made by `new_context` that no one will switch to again.
    fn free_context(ctx: *mut libc::ucontext_t) {
        // SAFETY: `ctx` came from `Box::into_raw` in `new_context` and is freed once.
        drop(unsafe { Box::from_raw(ctx) });
    }

    /// Switch from the context saved into `save` to `load`; returns when switched back.
    fn swap(save: *mut libc::ucontext_t, load: *const libc::ucontext_t) {
        // SAFETY: callers pass two live contexts from `new_context`; `load` was initialised by
        // `getcontext`+`makecontext` or saved by an earlier `swapcontext`, and its stack (the
        // main thread's, or the one `round_trips` keeps alive) is still allocated.
        let rc = unsafe { libc::swapcontext(save, load) };
        assert_eq!(rc, 0, "swapcontext failed");
    }

    extern "C" fn entry() {
        let main = MAIN.load(Ordering::Relaxed);
        let co = CO.load(Ordering::Relaxed);
        while !STOP.load(Ordering::Relaxed) {
            swap(co, main);
        }
    }

    /// One iteration = `swapcontext` main→co, then `swapcontext` co→main. Each `swapcontext`
    /// saves and restores the signal mask with an `rt_sigprocmask` system call.
    pub(super) fn round_trips(iters: u64) -> Option<Duration> {
        let mut stack = vec![0u8; STACK_SIZE];
        let main = new_context();
        let co = new_context();
        // SAFETY: `co` points at a live, writable `ucontext_t`.
        let rc = unsafe { libc::getcontext(co) };
        assert_eq!(rc, 0, "getcontext failed");
        {
            // SAFETY: `co` is live and nothing else refers to it until `makecontext` below.
            let co = unsafe { &mut *co };
            co.uc_stack.ss_sp = stack.as_mut_ptr().cast();
            co.uc_stack.ss_size = stack.len();
            co.uc_stack.ss_flags = 0;
            co.uc_link = main;
        }
        // SAFETY: `co` was initialised by `getcontext` and given a stack that outlives every
        // switch to it; `entry` takes no arguments, matching `argc` 0.
        unsafe { libc::makecontext(co, entry, 0) };
        MAIN.store(main, Ordering::Relaxed);
        CO.store(co, Ordering::Relaxed);
        STOP.store(false, Ordering::Relaxed);
        // Enter the fresh stack outside the timing.
        swap(main, co);
        let start = Instant::now();
        for _ in 0..iters {
            swap(main, co);
        }
        let elapsed = start.elapsed();
        // `entry` returns, and glibc resumes `uc_link`: back here.
        STOP.store(true, Ordering::Relaxed);
        swap(main, co);
        free_context(co);
        free_context(main);
        drop(stack);
        Some(elapsed)
    }
}

#[cfg(not(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod ucontext {
    use std::time::Duration;

    pub(super) fn round_trips(_iters: u64) -> Option<Duration> {
        None
    }
}

/// Whose turn it is in [`thread_park_round_trips`].
const TURN_MAIN: u32 = 0;
const TURN_PARTNER: u32 = 1;
const TURN_STOP: u32 = 2;

/// Two OS threads handing a turn flag back and forth, each waking the other with
/// `Thread::unpark` and sleeping in `thread::park` (a futex on Linux). One iteration = main
/// hands the turn over and waits until it comes back.
fn thread_park_round_trips(iters: u64) -> Duration {
    let turn = Arc::new(AtomicU32::new(TURN_MAIN));
    let main = thread::current();
    let partner_turn = turn.clone();
    let partner = thread::spawn(move || {
        loop {
            match partner_turn.load(Ordering::Acquire) {
                TURN_PARTNER => {
                    partner_turn.store(TURN_MAIN, Ordering::Release);
                    main.unpark();
                }
                TURN_STOP => break,
                _ => thread::park(),
            }
        }
    });
    let partner_thread = partner.thread().clone();
    let hand_off = |n: u64| {
        for _ in 0..n {
            turn.store(TURN_PARTNER, Ordering::Release);
            partner_thread.unpark();
            while turn.load(Ordering::Acquire) != TURN_MAIN {
                thread::park();
            }
        }
    };
    hand_off(100);
    let start = Instant::now();
    hand_off(iters);
    let elapsed = start.elapsed();
    turn.store(TURN_STOP, Ordering::Release);
    partner_thread.unpark();
    partner.join().expect("partner thread panicked");
    elapsed
}

/// Two OS threads echoing a value over a pair of `std::sync::mpsc::channel`s. One iteration =
/// send to the partner, receive its echo.
fn thread_mpsc_round_trips(iters: u64) -> Duration {
    let (to_partner, partner_rx) = mpsc::channel::<u64>();
    let (partner_tx, from_partner) = mpsc::channel::<u64>();
    let partner = thread::spawn(move || {
        for v in partner_rx {
            if partner_tx.send(v).is_err() {
                break;
            }
        }
    });
    let ping = |n: u64| {
        for i in 0..n {
            to_partner.send(i).expect("partner gone");
            black_box(from_partner.recv().expect("partner gone"));
        }
    };
    ping(100);
    let start = Instant::now();
    ping(iters);
    let elapsed = start.elapsed();
    drop(to_partner);
    partner.join().expect("partner thread panicked");
    elapsed
}

// ---------------------------------------------------------------------------------------------
// 2. The poller tax
// ---------------------------------------------------------------------------------------------

/// A poller, as a poller list would hold it (barebox's `struct poller_struct` with its `func`).
trait Poller {
    fn poll(&mut self);
    fn count(&self) -> u64;
}

/// The trivial poller: counts its polls.
///
/// A *poll* is one call of `Poller::poll` on one poller: a dynamic (vtable) call whose body
/// loads the poller's own counter through `black_box`, adds one and stores it back. The
/// plain loop and the coroutines call exactly this, through `dyn Poller`, so the only
/// difference between the two rows is how control gets from one poller to the next: a loop
/// over the list versus a coroutine switch.
struct CountingPoller {
    count: u64,
}

impl Poller for CountingPoller {
    #[inline(never)]
    fn poll(&mut self) {
        self.count = black_box(self.count) + 1;
    }

    fn count(&self) -> u64 {
        self.count
    }
}

/// `POLLERS` trivial pollers behind `dyn`, hidden from the optimiser so that the calls are
/// not devirtualised or inlined (a real poller list is only known at run time).
fn poller_list() -> Vec<Box<dyn Poller>> {
    let list: Vec<Box<dyn Poller>> = (0..POLLERS)
        .map(|_| Box::new(CountingPoller { count: 0 }) as Box<dyn Poller>)
        .collect();
    black_box(list)
}

/// Plain: one iteration = one pass over the list, calling every poller once through `dyn`.
fn pollers_plain(passes: u64) -> Duration {
    let mut list = poller_list();
    let start = Instant::now();
    for _ in 0..passes {
        for poller in list.iter_mut() {
            poller.poll();
        }
    }
    let elapsed = start.elapsed();
    let polls: u64 = list.iter().map(|p| p.count()).sum();
    assert_eq!(polls, passes * POLLERS as u64);
    elapsed
}

/// Coroutines: each poller runs in its own coroutine, `loop { poll(); yield_now(); }`. One
/// iteration = one `yield_now()` of the main context = every poller coroutine polls once and
/// yields (`POLLERS + 1` switches).
fn pollers_coroutines(passes: u64) -> Duration {
    let stop = Rc::new(Cell::new(false));
    let handles: Vec<JoinHandle<u64>> = poller_list()
        .into_iter()
        .enumerate()
        .map(|(i, mut poller)| {
            let stop = stop.clone();
            Builder::new(format!("poller{i}")).spawn(move || {
                while !stop.get() {
                    poller.poll();
                    yield_now();
                }
                poller.count()
            })
        })
        .collect();
    // First pass enters every fresh stack: keep it out of the timing (one poll each).
    yield_now();
    let start = Instant::now();
    for _ in 0..passes {
        yield_now();
    }
    let elapsed = start.elapsed();
    stop.set(true);
    let polls: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("poller coroutine failed"))
        .sum();
    assert_eq!(polls, (passes + 1) * POLLERS as u64);
    elapsed
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn row(label: &str, stats: Stats) {
    println!("  {label:<62} {:>10.1} {:>10.1}", stats.best, stats.median);
}

fn main() {
    println!(
        "lunbox coroutine benchmark ({} {}, {} repetitions of ~{} ms per row; best and median)",
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        REPS,
        TARGET_REP.as_millis()
    );
    println!();
    println!("1. Switch round trip A→B→A");
    println!(
        "  {:<62} {:>10} {:>10}",
        "mechanism", "best ns", "median ns"
    );

    let raw = measure(|n| {
        let start = Instant::now();
        raw_switch_time(n);
        start.elapsed()
    });
    row("ours: arch::switch ×2 (the context switch alone)", raw);
    let ours = measure(ours_main_coroutine);
    row("ours: main ⇄ 1 coroutine, yield_now() on both sides", ours);
    let ours_cc = measure(ours_two_coroutines);
    row(
        "ours: coroutine ⇄ coroutine, yield_now() (main in join)",
        ours_cc,
    );
    let coro = measure(corosensei_round_trips);
    row("corosensei 0.3.4: resume() + Yielder::suspend()", coro);
    if ucontext::round_trips(1).is_some() {
        let uctx = measure(|n| ucontext::round_trips(n).expect("checked above"));
        row(
            "glibc swapcontext ×2 (each does a rt_sigprocmask syscall)",
            uctx,
        );
    } else {
        println!("  {:<62} {:>10}", "glibc swapcontext", "n/a");
    }
    let park = measure(thread_park_round_trips);
    row(
        "OS threads: std thread::park / Thread::unpark (futex)",
        park,
    );
    let chan = measure(thread_mpsc_round_trips);
    row("OS threads: std::sync::mpsc::channel pair", chan);

    let ratio = raw.best / coro.best;
    println!();
    println!(
        "  ours (context switch) / corosensei = {ratio:.2}×   target ≤ {SWITCH_TARGET:.1}×: {}",
        met(ratio <= SWITCH_TARGET)
    );
    println!(
        "  ours (yield_now, main ⇄ coroutine) / corosensei = {:.2}×; coroutine ⇄ coroutine {:.2}×",
        ours.best / coro.best,
        ours_cc.best / coro.best
    );
    let (thread_name, thread_best) = if park.best <= chan.best {
        ("park/unpark", park.best)
    } else {
        ("mpsc", chan.best)
    };
    println!(
        "  fastest OS-thread hand-off ({thread_name}) / ours = {:.0}×",
        thread_best / ours.best
    );
    println!(
        "  A round trip is two context switches, A→B and B→A. The target compares like with like:"
    );
    println!("  our context switch (callee-saved registers, MXCSR and x87 control word) against");
    println!(
        "  corosensei's resume/suspend pair, neither with a scheduler. The yield_now rows add the"
    );
    println!("  scheduler: ready queue, stack-canary check, timers, cancellation.");

    println!();
    println!(
        "2. Poller tax: {POLLERS} trivial pollers (dyn call, +1 on own counter), plain loop vs coroutines"
    );
    println!(
        "  {:<42} {:>10} {:>14} {:>12}",
        "", "ns/pass", "polls/s", "ns/poll"
    );
    let plain = measure(pollers_plain);
    let coros = measure(pollers_coroutines);
    let report = |label: &str, s: Stats| {
        println!(
            "  {label:<42} {:>10.1} {:>14.3e} {:>12.2}",
            s.best,
            POLLERS as f64 * 1e9 / s.best,
            s.best / POLLERS as f64
        );
    };
    report("plain: for p in list { p.poll() }", plain);
    report("coroutines: poll(); yield_now() each", coros);
    let ratio = plain.best / coros.best;
    println!();
    println!(
        "  coroutine / plain polls/s = {ratio:.3}   target ≥ {POLLER_TARGET:.2} (barebox reported \
         {POLLER_BAREBOX:.2}): {}",
        met(ratio >= POLLER_TARGET)
    );
    // ratio = (w + p) / (w + c) with w the work of a poll, p and c the plain and coroutine
    // cost per poll of a trivial poller: reaching the target T needs w ≥ (T·c − p) / (1 − T).
    let p = plain.best / POLLERS as f64;
    let c = coros.best / POLLERS as f64;
    let work = ((POLLER_TARGET * c - p) / (1.0 - POLLER_TARGET)).max(0.0);
    println!(
        "  switch overhead per poll ≈ {:.1} ns; a poller needs ≥ {work:.0} ns of work per poll for \
         the ratio to reach {POLLER_TARGET:.2}",
        c - p
    );
}

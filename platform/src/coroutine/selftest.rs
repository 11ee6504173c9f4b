//! The runtime self-test behind the console's `coroutine -t` (barebox `bthread -t`).

use core::cell::Cell;
use core::fmt;
use core::time::Duration;

use alloc::rc::Rc;

use super::arch;
use super::stack::{MIN_STACK_SIZE, Stack};
use super::{Builder, now, yield_now};

/// What [`self_test`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfTestReport {
    /// Context switches made between two ping-ponging coroutines.
    pub switches: u64,
    /// Time the switches took.
    pub switch_time: Duration,
    /// `yield_now` calls made by a lone coroutine (no switch: nobody else is ready).
    pub yields: u64,
    /// Time the yields took.
    pub yield_time: Duration,
}

impl SelfTestReport {
    /// Switches per second (0 when the clock did not advance).
    pub fn switches_per_sec(&self) -> u64 {
        per_sec(self.switches, self.switch_time)
    }

    /// Yields per second (0 when the clock did not advance).
    pub fn yields_per_sec(&self) -> u64 {
        per_sec(self.yields, self.yield_time)
    }
}

fn per_sec(count: u64, time: Duration) -> u64 {
    (count as u128 * 1_000_000_000)
        .checked_div(time.as_nanos())
        .map_or(0, |rate| u64::try_from(rate).unwrap_or(u64::MAX))
}

impl fmt::Display for SelfTestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} switches in {} us: {} switches/s; {} yields in {} us: {} yields/s",
            self.switches,
            self.switch_time.as_micros(),
            self.switches_per_sec(),
            self.yields,
            self.yield_time.as_micros(),
            self.yields_per_sec()
        )
    }
}

/// Check the runtime and measure it: two coroutines hand the processor to each other
/// `rounds` times (each round is two switches, and both sides count to prove it), then one
/// coroutine yields `rounds` times alone. Runs on the caller's scheduler; other coroutines
/// ready at the same time get their turns too and slow the figures down.
///
/// Returns an error naming what went wrong if the switches did not interleave as they must.
pub fn self_test(rounds: u32) -> Result<SelfTestReport, &'static str> {
    const STACK: usize = 4096;
    let turn = Rc::new(Cell::new(0u64));
    let broken = Rc::new(Cell::new(false));
    let start = now();
    let (t1, b1) = (turn.clone(), broken.clone());
    let ping = Builder::new("selftest-ping")
        .stack_size(STACK)
        .spawn(move || {
            for i in 0..rounds as u64 {
                // Each side sees the other's step between two of its own.
                if t1.get() != 2 * i {
                    b1.set(true);
                }
                t1.set(2 * i + 1);
                yield_now();
            }
        });
    let (t2, b2) = (turn.clone(), broken.clone());
    let pong = Builder::new("selftest-pong")
        .stack_size(STACK)
        .spawn(move || {
            for i in 0..rounds as u64 {
                if t2.get() != 2 * i + 1 {
                    b2.set(true);
                }
                t2.set(2 * i + 2);
                yield_now();
            }
        });
    if ping.join().is_err() || pong.join().is_err() {
        return Err("a self-test coroutine did not return");
    }
    let switch_time = now() - start;
    if broken.get() || turn.get() != 2 * rounds as u64 {
        return Err("coroutines did not alternate: round-robin order broken");
    }

    let lone = Builder::new("selftest-yield")
        .stack_size(STACK)
        .spawn(move || {
            let begin = now();
            for _ in 0..rounds {
                yield_now();
            }
            now() - begin
        });
    let yield_time = lone
        .join()
        .map_err(|_| "the yield coroutine did not return")?;
    Ok(SelfTestReport {
        switches: 2 * rounds as u64,
        switch_time,
        yields: rounds as u64,
        yield_time,
    })
}

/// Time `round_trips` round trips of the bare context switch (no scheduler): the main context
/// and a scratch context on its own stack switch back and forth with `arch::switch`. This is
/// the primitive corosensei's `resume`/`suspend` pair compares with; [`self_test`] measures
/// the full `yield_now` path. Returns the elapsed time on the machine clock.
pub fn raw_switch_time(round_trips: u64) -> Duration {
    /// The two saved stack pointers.
    struct Pair {
        main: usize,
        other: usize,
    }

    /// The other context: switches back to `main` forever.
    ///
    /// # Safety
    /// Entered only through `arch::switch`, with `arg` pointing at the caller's live `Pair`.
    unsafe extern "C" fn bounce(arg: usize) -> ! {
        let pair = arg as *mut Pair;
        let save = pair
            .wrapping_byte_add(core::mem::offset_of!(Pair, other))
            .cast::<usize>();
        let main = pair
            .wrapping_byte_add(core::mem::offset_of!(Pair, main))
            .cast::<usize>();
        loop {
            // SAFETY: `pair` outlives every switch to this context (see below): reading the main
            // context's saved stack pointer from it is fine whenever this context runs.
            let load = unsafe { main.read() };
            // SAFETY: `save` points into the live `pair`; `load` is the main context's saved
            // stack pointer, stored by its switch to here.
            unsafe { arch::switch(save, load) };
        }
    }

    let stack = Stack::new(MIN_STACK_SIZE * 4, "selftest-switch");
    let mut pair = Pair { main: 0, other: 0 };
    let arg = &raw mut pair as usize;
    // SAFETY: the stack is ours, aligned and big enough, and lives until after the last switch.
    pair.other = unsafe { arch::init_stack(stack.top(), bounce, arg) };
    let start = now();
    for _ in 0..round_trips {
        // SAFETY: `pair.other` is the scratch context's saved stack pointer (fresh or saved by
        // its last switch back here); `pair` lives on this frame across the loop.
        unsafe { arch::switch(&raw mut pair.main, pair.other) };
    }
    let elapsed = now() - start;
    // The scratch context stays suspended inside `bounce` and owns nothing: freeing its stack
    // abandons no value.
    drop(stack);
    elapsed
}

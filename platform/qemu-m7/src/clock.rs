//! The test machine under the coroutine runtime: a SysTick clock and a spinning idle hook.
//!
//! Clock: SysTick runs free on the processor clock (QEMU's MPS2 boards clock it at SYSCLK,
//! 25 MHz, so one tick is 40 ns) and wraps every 2^24 ticks (0.67 s). Its exception counts the
//! wraps; [`ticks`] combines that count with the down-counter into a 64-bit tick count. QEMU
//! does not model the DWT cycle counter (0xE000_1000 is unimplemented on mps2-an500), so
//! SysTick is the only cycle-accurate-ish clock there.
//!
//! Idle: [`SysTickMachine::idle`] spins on the clock until the deadline. The firmware would
//! `WFI` until a timer interrupt; here the only interrupt is the wrap every 0.67 s, far too
//! coarse for the millisecond sleeps under test, and spinning keeps the test independent of an
//! alarm timer. With no deadline nothing could ever wake a coroutine (this board has no
//! outside event source), so idling without one is reported as a deadlock instead of hanging.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use lunbox_platform::coroutine::{Instant, Machine};

/// SysTick's clock when it runs on the processor clock: SYSCLK of QEMU's MPS2 boards.
pub(crate) const CLOCK_HZ: u64 = 25_000_000;
/// Nanoseconds per SysTick tick.
const NANOS_PER_TICK: u64 = 1_000_000_000 / CLOCK_HZ;
const _: () = assert!(
    1_000_000_000 % CLOCK_HZ == 0,
    "a tick must be whole nanoseconds"
);
/// SysTick counts down from `RELOAD` to 0, then reloads: its full 24-bit range.
const RELOAD: u32 = 0x00FF_FFFF;
/// Ticks between two wraps.
const PERIOD: u64 = RELOAD as u64 + 1;

/// Wraps counted by the SysTick exception (a `u32` lasts 91 years at 0.67 s a wrap).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// SysTick wraps counted so far (for the clock test).
pub(crate) fn wraps() -> u32 {
    WRAPS.load(Ordering::Relaxed)
}

/// SysTick ticks since [`SysTickMachine::start`].
pub(crate) fn ticks() -> u64 {
    cortex_m::interrupt::free(|_| {
        let mut wraps = u64::from(WRAPS.load(Ordering::Relaxed));
        let mut current = SYST::get_current();
        // Interrupts are masked: a wrap since the exception last ran is pending, not counted.
        // The counter may have been read just before that wrap, so read it again: now it is
        // certainly after it (the next wrap is 0.67 s away).
        if SCB::is_pendst_pending() {
            current = SYST::get_current();
            wraps += 1;
        }
        wraps * PERIOD + u64::from(RELOAD - current)
    })
}

/// The test board's [`Machine`]: SysTick clock, spinning idle (see the module docs).
#[derive(Debug)]
pub(crate) struct SysTickMachine {
    _started: (),
}

impl SysTickMachine {
    /// Start SysTick as a free-running counter with its wrap exception enabled.
    pub(crate) fn start(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickMachine { _started: () }
    }
}

impl Machine for SysTickMachine {
    fn now(&self) -> Instant {
        Instant::from_nanos(ticks() * NANOS_PER_TICK)
    }

    fn idle(&self, deadline: Option<Instant>) {
        match deadline {
            Some(deadline) => {
                while self.now() < deadline {
                    core::hint::spin_loop();
                }
            }
            None => panic!(
                "deadlock: every coroutine is waiting, no timer is pending and this board has \
                 no outside event source"
            ),
        }
    }
}

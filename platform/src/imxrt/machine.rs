//! The board under the coroutine runtime: a GPT clock, WFI in the idle hook, and interrupts
//! turned into wake-ups.
//!
//! Clock: GPT1 counts PERCLK (1 MHz, from the 24 MHz crystal) free-running; its rollover
//! interrupt counts the 32-bit counter's wraps (one every 71.6 minutes), extending it to a
//! 64-bit microsecond count. [`Teensy41Machine::now`] reads it with interrupts masked and
//! counts a wrap whose interrupt is still pending (see [`logic::extend_ticks`]).
//!
//! Idle: with interrupts masked (PRIMASK), the hook looks for pending events, sets GPT1's
//! compare register 1 to the next timer deadline, unmasks the event sources' interrupt lines
//! and executes `WFI`. A pending interrupt ends `WFI` even while PRIMASK is set, so an event
//! that arrives between the check and `WFI` cannot be lost; the handlers run when PRIMASK is
//! cleared. The board runs in "remain in run" low-power mode, so `WFI` stops only the core's
//! clock: peripherals, the GPT and USB keep running.
//!
//! Events: an interrupt handler never touches the runtime (it is not reentrant). It masks its
//! own interrupt line in the NVIC (the USB controller's interrupt is level-triggered: it stays
//! asserted until the poller has handled the controller) and sets a bit in [`PENDING`]. The
//! idle hook completes the [`Completion`] registered for that event with
//! [`Teensy41Machine::watch`]; the waiting coroutine (the USB poller, the console) then runs.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::NVIC;
use imxrt_ral as ral;
use ral::Interrupt;

use super::logic;
use crate::coroutine::{Completion, Instant, Machine};

/// Something outside the runtime that wakes a coroutine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The USB controller wants attention (USB_OTG1 interrupt).
    Usb,
    /// The console UART received bytes (LPUART6 interrupt).
    Uart,
}

impl Event {
    const ALL: [Event; 2] = [Event::Usb, Event::Uart];

    const fn bit(self) -> u32 {
        match self {
            Event::Usb => 1 << 0,
            Event::Uart => 1 << 1,
        }
    }

    const fn interrupt(self) -> Interrupt {
        match self {
            Event::Usb => Interrupt::USB_OTG1,
            Event::Uart => Interrupt::LPUART6,
        }
    }
}

/// Events signalled by interrupt handlers and not yet handed to the runtime.
static PENDING: AtomicU32 = AtomicU32::new(0);
/// GPT1 counter wraps counted by its rollover interrupt.
static EPOCHS: AtomicU32 = AtomicU32::new(0);
/// Event interrupt lines the idle hook unmasks (sources that were set up).
static ENABLED: AtomicU32 = AtomicU32::new(0);

/// Called by an event source's interrupt handler: mask the line and note the event.
pub(crate) fn signal_from_interrupt(event: Event) {
    NVIC::mask(event.interrupt());
    PENDING.fetch_or(event.bit(), Ordering::Release);
}

/// Called by an interrupt handler that has dealt with its hardware (the line is not masked):
/// note the event.
pub(crate) fn note_from_interrupt(event: Event) {
    PENDING.fetch_or(event.bit(), Ordering::Release);
}

/// Let the idle hook unmask `event`'s interrupt line (the source is set up).
pub(crate) fn enable_event(event: Event) {
    ENABLED.fetch_or(event.bit(), Ordering::Release);
    // SAFETY: the handler for this line is defined by this board module and only masks the
    // line and sets an atomic bit; unmasking cannot break a critical section, which masks
    // with PRIMASK, not the NVIC.
    unsafe { NVIC::unmask(event.interrupt()) };
}

/// Compare-register margin in ticks (µs): a deadline closer than this is waited for by
/// returning at once (the scheduler calls again), never by a compare that might be passed
/// while it is being set.
const MARGIN: u32 = 2;

/// GPT1 status register bits (write 1 to clear).
const SR_OF1: u32 = 1 << 0;
const SR_ROV: u32 = 1 << 5;
/// GPT1 interrupt register bits.
const IR_OF1IE: u32 = 1 << 0;
const IR_ROVIE: u32 = 1 << 5;

fn gpt1() -> ral::gpt::GPT1 {
    // SAFETY: GPT1 belongs to this module once `Teensy41Machine::start` took it; the
    // thread-mode code touches it with interrupts masked, the handler only writes the status
    // and interrupt registers' bits this module owns.
    unsafe { ral::gpt::GPT1::instance() }
}

/// GPT1: count a wrap, or end a compare wake-up (the `WFI` has already returned).
// SAFETY: the vector table names this handler by its symbol; no other item in the image
// exports `GPT1`.
#[unsafe(no_mangle)]
extern "C" fn GPT1() {
    let gpt = gpt1();
    let sr = ral::read_reg!(ral::gpt, gpt, SR);
    if sr & SR_ROV != 0 {
        ral::write_reg!(ral::gpt, gpt, SR, SR_ROV);
        EPOCHS.fetch_add(1, Ordering::Relaxed);
    }
    if sr & SR_OF1 != 0 {
        ral::write_reg!(ral::gpt, gpt, SR, SR_OF1);
        ral::modify_reg!(ral::gpt, gpt, IR, |ir| ir & !IR_OF1IE);
    }
}

/// The Teensy 4.1's [`Machine`]: GPT1 clock, `WFI` idle, interrupt events.
pub struct Teensy41Machine {
    watchers: RefCell<Vec<(Event, Rc<Completion>)>>,
}

impl core::fmt::Debug for Teensy41Machine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Teensy41Machine").finish_non_exhaustive()
    }
}

impl Teensy41Machine {
    /// Start GPT1 as the clock (PERCLK must run at 1 MHz: the BSP's clock policy) and enable
    /// its interrupt.
    pub(crate) fn start(gpt: imxrt_hal::gpt::Gpt) -> Self {
        // The HAL driver is the proof of ownership; this module drives the registers itself
        // (the handler must clear status bits one by one, the HAL clears them read-modify-write).
        let _owned = gpt;
        let gpt = gpt1();
        // Disable, software reset, clear the status.
        ral::write_reg!(ral::gpt, gpt, CR, 0);
        ral::modify_reg!(ral::gpt, gpt, CR, SWR: 1);
        while ral::read_reg!(ral::gpt, gpt, CR, SWR == 1) {}
        ral::write_reg!(ral::gpt, gpt, SR, 0x3F);
        ral::write_reg!(ral::gpt, gpt, PR, 0); // divide by 1
        // Free-running, clocked by PERCLK (CLKSRC "peripheral clock", as teensy4-bsp's GPT
        // example), running in wait and debug modes, counter zeroed when enabled.
        ral::write_reg!(ral::gpt, gpt, CR, FRR: 1, CLKSRC: 1, WAITEN: 1, DBGEN: 1, ENMOD: 1);
        ral::write_reg!(ral::gpt, gpt, IR, IR_ROVIE);
        ral::modify_reg!(ral::gpt, gpt, CR, EN: 1);
        // SAFETY: the GPT1 handler above only touches GPT1's status and interrupt registers
        // and an atomic counter.
        unsafe { NVIC::unmask(Interrupt::GPT1) };
        Teensy41Machine {
            watchers: RefCell::new(Vec::new()),
        }
    }

    /// Complete `completion` whenever `event` happens (once per idle pass that sees it).
    pub fn watch(&self, event: Event, completion: Rc<Completion>) {
        self.watchers.borrow_mut().push((event, completion));
    }

    /// Microsecond ticks since the clock started.
    pub fn ticks() -> u64 {
        let gpt = gpt1();
        cortex_m::interrupt::free(|_| {
            let epochs = EPOCHS.load(Ordering::Relaxed);
            let count = ral::read_reg!(ral::gpt, gpt, CNT);
            let pending = ral::read_reg!(ral::gpt, gpt, SR) & SR_ROV != 0;
            let after = if pending {
                ral::read_reg!(ral::gpt, gpt, CNT)
            } else {
                count
            };
            logic::extend_ticks(epochs, count, pending, after)
        })
    }

    /// Hand pending events to their watchers; whether there were any.
    fn deliver(&self) -> bool {
        let pending = PENDING.swap(0, Ordering::Acquire);
        if pending == 0 {
            return false;
        }
        for (event, completion) in self.watchers.borrow().iter() {
            if pending & event.bit() != 0 && !completion.is_done() {
                completion.complete();
            }
        }
        true
    }

    /// Set the compare for `deadline`; false when it is too close to wait for.
    fn arm(&self, deadline: Instant) -> bool {
        let gpt = gpt1();
        let now = Self::ticks();
        let Some(ahead) = logic::ticks_until(now, deadline.as_nanos()) else {
            return false;
        };
        let count = ral::read_reg!(ral::gpt, gpt, CNT);
        match logic::compare_for(count, ahead, MARGIN) {
            Some(target) => {
                ral::write_reg!(ral::gpt, gpt, OCR[0], target);
                ral::write_reg!(ral::gpt, gpt, SR, SR_OF1);
                ral::modify_reg!(ral::gpt, gpt, IR, |ir| ir | IR_OF1IE);
                // Passed while being written (the core was held up, the compare may have been
                // missed): do not sleep. Otherwise the compare interrupt ends the WFI.
                let now = ral::read_reg!(ral::gpt, gpt, CNT);
                !logic::reached(count, target, now)
            }
            // Too close: return and let the scheduler ask again.
            None if ahead < u64::from(MARGIN) => false,
            // Beyond the next wrap: the rollover interrupt wakes the core first.
            None => true,
        }
    }
}

impl Machine for Teensy41Machine {
    fn now(&self) -> Instant {
        Instant::from_nanos(Self::ticks() * logic::NANOS_PER_TICK)
    }

    fn idle(&self, deadline: Option<Instant>) {
        cortex_m::interrupt::disable();
        let sleep = PENDING.load(Ordering::Acquire) == 0
            && match deadline {
                Some(deadline) => self.arm(deadline),
                None => true,
            };
        if sleep {
            let enabled = ENABLED.load(Ordering::Acquire);
            for event in Event::ALL {
                if enabled & event.bit() != 0 {
                    // SAFETY: as in `enable_event`.
                    unsafe { NVIC::unmask(event.interrupt()) };
                }
            }
            cortex_m::asm::dsb();
            cortex_m::asm::wfi();
        }
        // SAFETY: paired with the `disable` above; nothing here relies on interrupts being
        // masked any longer. Pending handlers run now.
        unsafe { cortex_m::interrupt::enable() };
        let gpt = gpt1();
        cortex_m::interrupt::free(|_| {
            ral::modify_reg!(ral::gpt, gpt, IR, |ir| ir & !IR_OF1IE);
        });
        self.deliver();
    }
}

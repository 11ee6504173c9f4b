//! Panics and faults: the message goes out on the console UART (written directly, without the
//! interrupt-driven queue, which may be what broke), then the board resets after two seconds,
//! so the host sees the device go away and come back instead of a device that stopped
//! answering.

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::peripheral::SCB;
use cortex_m_rt::{ExceptionFrame, exception};

use super::uart;
use crate::coroutine;

/// The console UART, written a byte at a time with interrupts masked.
struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                uart::write_blocking(b'\r');
            }
            uart::write_blocking(b);
        }
        Ok(())
    }
}

/// Set by the first panic: a panic in the handler resets at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Busy-wait about `ms` milliseconds at 600 MHz (the clock may be what failed).
fn spin_ms(ms: u32) {
    cortex_m::asm::delay(ms.saturating_mul(600_000));
}

fn reset_after_delay() -> ! {
    spin_ms(2_000);
    SCB::sys_reset()
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    if PANICKING.swap(true, Ordering::Relaxed) {
        SCB::sys_reset();
    }
    let mut out = Raw;
    // `current_name` is `None` when the panic hit inside the scheduler (it is borrowed).
    let _ = match coroutine::current_name() {
        Some(name) => write!(out, "\nPANIC in coroutine '{name}': {}", info.message()),
        None => write!(
            out,
            "\nPANIC (inside the coroutine runtime): {}",
            info.message()
        ),
    };
    // The size-optimised firmware is built without panic locations (`-Zlocation-detail=none`
    // gives line 0): print one only when there is one.
    if let Some(at) = info.location().filter(|l| l.line() != 0) {
        let _ = write!(out, " (at {at})");
    }
    let _ = writeln!(out, "\nlunbox: resetting in 2 s");
    reset_after_delay()
}

/// The HardFault handler: the fault's registers to the UART, then a reset.
///
/// # Safety
///
/// Called only by the hardware, as cortex-m-rt's `#[exception]` requires of a HardFault
/// handler (`unsafe fn`): with `frame` pointing at the stacked exception frame.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    cortex_m::interrupt::disable();
    // SAFETY: SCB::PTR is the System Control Block, always mapped; reading its fault status
    // registers has no side effect.
    let scb = unsafe { &*SCB::PTR };
    let _ = writeln!(
        Raw,
        "\nHARDFAULT: pc={:#010x} lr={:#010x} xpsr={:#010x} cfsr={:#010x} hfsr={:#010x} \
         mmfar={:#010x} bfar={:#010x}\nlunbox: resetting in 2 s",
        frame.pc(),
        frame.lr(),
        frame.xpsr(),
        scb.cfsr.read(),
        scb.hfsr.read(),
        scb.mmfar.read(),
        scb.bfar.read(),
    );
    reset_after_delay()
}

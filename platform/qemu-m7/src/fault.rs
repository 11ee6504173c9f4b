//! Ending the run: the exit status through semihosting, the panic handler and the fault
//! handlers. Every way out but a clean pass exits with a failure status.

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::peripheral::SCB;
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::{debug, hio};
use lunbox_platform::coroutine;

/// Tell QEMU to exit: status 0 if `success`, 1 otherwise.
pub(crate) fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached if the host ignored the exit request (no semihosting): hang, and let the
    // runner's timeout report it.
    loop {
        core::hint::spin_loop();
    }
}

/// The host's standard output, opened afresh: never the `hprintln!` stream, whose lock a
/// panic or fault may have interrupted.
struct Console(Option<hio::HostStream>);

impl Console {
    fn open() -> Self {
        Console(hio::hstdout().ok())
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.0 {
            Some(stream) => stream.write_str(s),
            None => Err(fmt::Error),
        }
    }
}

/// Set by the first panic: a second one (in the handler itself) exits at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    let mut out = Console::open();
    if PANICKING.swap(true, Ordering::Relaxed) {
        let _ = writeln!(out, "PANIC while panicking: {}", info.message());
        exit(false);
    }
    // `current_name` is `None` when the panic hit inside the scheduler (it is borrowed).
    let _ = match coroutine::current_name() {
        Some(name) => writeln!(out, "PANIC in coroutine '{name}': {info}"),
        None => writeln!(out, "PANIC (inside the coroutine runtime): {info}"),
    };
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let mut out = Console::open();
    // SAFETY: SCB::PTR is the System Control Block, always mapped; reading its fault status
    // registers has no side effect.
    let scb = unsafe { &*SCB::PTR };
    let _ = writeln!(
        out,
        "HARDFAULT: pc={:#010x} lr={:#010x} sp={:#010x} xpsr={:#010x} cfsr={:#010x} \
         hfsr={:#010x} mmfar={:#010x} bfar={:#010x}",
        frame.pc(),
        frame.lr(),
        frame as *const ExceptionFrame as usize,
        frame.xpsr(),
        scb.cfsr.read(),
        scb.hfsr.read(),
        scb.mmfar.read(),
        scb.bfar.read(),
    );
    // Best effort after the registers are out: this allocates, and the heap may be what broke.
    if let Some(name) = coroutine::current_name() {
        let _ = writeln!(out, "HARDFAULT in coroutine '{name}'");
    }
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    let _ = writeln!(Console::open(), "unexpected exception or interrupt {irqn}");
    exit(false)
}

//! lunbox's coroutine runtime on a Cortex-M7 under QEMU (`mps2-an500`): the context switch
//! keeps r4–r11, s16–s31/d8–d15 and FPSCR per coroutine, and the scheduler works on the MCU
//! build (no std, no unwinding, SysTick clock); with the `ed25519` feature (default),
//! firmware-image signature verification works there too (`ed25519`).
//!
//! Prints one line per test and a closing `qemu-m7: N passed, M failed`, then exits QEMU
//! through semihosting: status 0 only if every test passed. A panic, a HardFault or any other
//! unexpected exception prints what happened and exits with status 1.

#![no_std]
#![no_main]

#[cfg(not(all(target_arch = "arm", target_os = "none")))]
compile_error!(
    "lunbox-qemu-m7 only builds for thumbv7em-none-eabihf. Run cargo inside platform/qemu-m7: \
     cargo reads .cargo/config.toml from the current directory upwards, not from the \
     --manifest-path (or pass `--target thumbv7em-none-eabihf`)."
);

extern crate alloc;

mod clock;
#[cfg(feature = "ed25519")]
mod ed25519;
mod fault;
mod regs;
mod sched;

use alloc::string::String;
use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use embedded_alloc::LlffHeap;
use lunbox_platform::coroutine;

use regs::View;

/// Heap for coroutine stacks and records: 100 coroutines of 4 KiB at once need 400 KiB, and
/// the board has 4 MiB of RAM.
const HEAP_SIZE: usize = 1024 * 1024;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// One test: a name and a function returning a note on success or what went wrong.
struct Test {
    name: &'static str,
    run: fn() -> Result<String, String>,
}

const TESTS: &[Test] = &[
    Test {
        name: "core registers r4-r11 survive switches",
        run: || regs::survive_switches(&[View::Core, View::Core, View::Core]),
    },
    Test {
        name: "fpu s16-s31 (f32 bits) survive switches",
        run: || regs::survive_switches(&[View::Single, View::Single, View::Single]),
    },
    Test {
        name: "fpu d8-d15 (f64) survive switches",
        run: || regs::survive_switches(&[View::Double, View::Double, View::Double]),
    },
    Test {
        name: "mixed views: d8-d15, s16-s31 and r4-r11 interleaved",
        run: || regs::survive_switches(&[View::Double, View::Single, View::Core, View::Single]),
    },
    Test {
        name: "fpscr rounding mode is per coroutine",
        run: regs::fpscr_per_coroutine,
    },
    Test {
        name: "round-robin yield order",
        run: sched::round_robin,
    },
    Test {
        name: "systick clock monotonic across wraps",
        run: sched::clock_monotonic,
    },
    Test {
        name: "sleep wakes in deadline order",
        run: sched::sleep_order,
    },
    Test {
        name: "completion handoff",
        run: sched::completion,
    },
    Test {
        name: "join returns the value",
        run: sched::join_value,
    },
    Test {
        name: "100 coroutines spawned and joined",
        run: sched::hundred,
    },
    Test {
        name: "cancel without unwinding, stop",
        run: sched::cancel_and_stop,
    },
    Test {
        name: "coroutine::self_test(10_000)",
        run: sched::self_test,
    },
    #[cfg(feature = "ed25519")]
    Test {
        name: "sha-256 (sha2 0.10, no std) of FIPS 180-2 examples",
        run: ed25519::sha256_vectors,
    },
    #[cfg(feature = "ed25519")]
    Test {
        name: "ed25519 verify_strict: RFC 8032 tests 2, 3; flipped bits refused",
        run: ed25519::verify_strict,
    },
];

#[entry]
fn main() -> ! {
    {
        static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
        let start = &raw mut HEAP_MEMORY as usize;
        // SAFETY: called once, first thing, before anything allocates; HEAP_MEMORY is used by
        // nothing but the heap.
        unsafe { HEAP.init(start, HEAP_SIZE) };
    }
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        panic!("the core peripherals were already taken");
    };
    let machine = clock::SysTickMachine::start(peripherals.SYST);
    // SAFETY: single core; the only interrupt handler (SysTick) never touches the runtime.
    unsafe { coroutine::init(machine) };

    hprintln!(
        "lunbox qemu-m7: coroutine runtime on a Cortex-M7 (QEMU mps2-an500), {} tests",
        TESTS.len()
    );
    let mut failed = 0;
    for test in TESTS {
        match (test.run)() {
            Ok(note) if note.is_empty() => hprintln!("test {} ... ok", test.name),
            Ok(note) => hprintln!("test {} ... ok ({note})", test.name),
            Err(why) => {
                failed += 1;
                hprintln!("test {} ... FAILED: {why}", test.name);
            }
        }
    }
    hprintln!("qemu-m7: {} passed, {failed} failed", TESTS.len() - failed);
    fault::exit(failed == 0)
}

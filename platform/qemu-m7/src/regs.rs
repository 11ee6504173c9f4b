//! Register preservation across coroutine switches: the callee-saved core registers r4–r11,
//! the callee-saved FPU registers s16–s31 (seen as d8–d15 too) and the FPSCR rounding mode.
//!
//! Every test has three or four participants: the main context and coroutines. Each loads its
//! own values into the registers under test in an `asm!` block, calls (`blx`) an `extern "C"`
//! function that yields several times, so that every other participant loads its values in
//! between, and stores what the registers hold after the call for Rust to compare. The asm
//! blocks declare the registers they load as outputs or clobbers, so the compiler keeps its
//! own values elsewhere; only the context switch can carry a participant's values across.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use lunbox_platform::coroutine::{self, Builder};

/// Stack of every coroutine of these tests: the runtime's MCU default.
const STACK: usize = 8 * 1024;

/// `asm!` around a `blx` to an AAPCS function, adding what such a call may change besides
/// r0–r3 (which every block names itself, as outputs or clobbers): r12, lr and s0–s15. `clobber_abi("C")` would say the same, but it also lists d16–d31, which the
/// FPv4-SP-D16 register file of this target lacks, and LLVM warns about every such block.
macro_rules! asm_calling {
    ($($body:tt)*) => {
        core::arch::asm!(
            $($body)*
            lateout("r12") _, lateout("lr") _,
            lateout("s0") _, lateout("s1") _, lateout("s2") _, lateout("s3") _,
            lateout("s4") _, lateout("s5") _, lateout("s6") _, lateout("s7") _,
            lateout("s8") _, lateout("s9") _, lateout("s10") _, lateout("s11") _,
            lateout("s12") _, lateout("s13") _, lateout("s14") _, lateout("s15") _,
        )
    };
}

/// What the asm blocks call between loading and storing the registers under test.
extern "C" fn yield_a_few_times() {
    for _ in 0..3 {
        coroutine::yield_now();
    }
}

/// Which registers a participant loads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum View {
    /// r4–r11 as `u32`.
    Core,
    /// s16–s31 as `f32` bit patterns.
    Single,
    /// d8–d15 as `f64` values (the same register file as s16–s31).
    Double,
}

/// Distinct bit patterns: participant `p`, register `i`.
fn pattern(p: u32, i: usize) -> u32 {
    let i = i as u32;
    0x5A00_0000 | (p << 16) | (i << 8) | ((p * 16 + i) ^ 0xA5)
}

/// Distinct `f64` values with both 32-bit halves non-trivial: participant `p`, register `i`.
fn double_pattern(p: u32, i: usize) -> f64 {
    f64::from(p) * core::f64::consts::PI + i as f64 * core::f64::consts::E / 7.0
}

/// Load `values` into r4–r11, call `yielder`, and return what r4–r11 hold after the call.
///
/// r4, r5 and r8–r11 are operands. r6 (LLVM's base pointer) and r7 (the Thumb frame pointer)
/// cannot be, so the block saves the compiler's values of those two on the stack itself.
#[inline(never)]
fn core_regs_across(values: &[u32; 8], yielder: extern "C" fn()) -> [u32; 8] {
    let mut after = [0u32; 8];
    // SAFETY: `yielder` follows the AAPCS: it preserves r4–r11 and sp, and may change only
    // what the block declares changed (r0–r3, r12, lr, s0–s15, the flags; memory is not
    // `nomem`). The block restores r6 and r7 from the stack before it ends; the 8 bytes it
    // pushes keep sp 8-byte aligned at the call. `values` points to 8 readable words.
    unsafe {
        asm_calling!(
            "push {{r6, r7}}",
            "ldr r6, [{values}, #8]",
            "ldr r7, [{values}, #12]",
            "blx {yielder}",
            "mov r0, r6",
            "mov r1, r7",
            "pop {{r6, r7}}",
            values = in(reg) values.as_ptr(),
            yielder = in(reg) yielder,
            inout("r4") values[0] => after[0],
            inout("r5") values[1] => after[1],
            inout("r8") values[4] => after[4],
            inout("r9") values[5] => after[5],
            inout("r10") values[6] => after[6],
            inout("r11") values[7] => after[7],
            lateout("r0") after[2],
            lateout("r1") after[3],
            lateout("r2") _,
            lateout("r3") _,
        );
    }
    after
}

/// Load `values` into s16–s31, call `yielder`, and return what s16–s31 hold after the call.
#[inline(never)]
fn single_regs_across(values: &[u32; 16], yielder: extern "C" fn()) -> [u32; 16] {
    let mut after = [0u32; 16];
    // SAFETY: as in `core_regs_across`; s16–s31 are declared clobbered, so the compiler keeps
    // nothing there. `after` outlives the call, so its address is kept on the stack (r0–r3
    // belong to the callee); the 8 bytes reserved keep sp aligned. `values` and `after` point
    // to 16 words, readable and writable respectively.
    unsafe {
        asm_calling!(
            "vldmia {values}, {{s16-s31}}",
            "sub sp, sp, #8",
            "str {after}, [sp]",
            "blx {yielder}",
            "ldr r0, [sp]",
            "add sp, sp, #8",
            "vstmia r0, {{s16-s31}}",
            values = in(reg) values.as_ptr(),
            after = in(reg) after.as_mut_ptr(),
            yielder = in(reg) yielder,
            lateout("r0") _, lateout("r1") _, lateout("r2") _, lateout("r3") _,
            lateout("s16") _, lateout("s17") _, lateout("s18") _, lateout("s19") _,
            lateout("s20") _, lateout("s21") _, lateout("s22") _, lateout("s23") _,
            lateout("s24") _, lateout("s25") _, lateout("s26") _, lateout("s27") _,
            lateout("s28") _, lateout("s29") _, lateout("s30") _, lateout("s31") _,
        );
    }
    after
}

/// Load `values` into d8–d15, call `yielder`, and return what d8–d15 hold after the call.
#[inline(never)]
fn double_regs_across(values: &[f64; 8], yielder: extern "C" fn()) -> [f64; 8] {
    let mut after = [0f64; 8];
    // SAFETY: as in `single_regs_across`, with d8–d15 (the same registers) declared clobbered
    // and 8 doublewords behind `values` and `after`.
    unsafe {
        asm_calling!(
            "vldmia {values}, {{d8-d15}}",
            "sub sp, sp, #8",
            "str {after}, [sp]",
            "blx {yielder}",
            "ldr r0, [sp]",
            "add sp, sp, #8",
            "vstmia r0, {{d8-d15}}",
            values = in(reg) values.as_ptr(),
            after = in(reg) after.as_mut_ptr(),
            yielder = in(reg) yielder,
            lateout("r0") _, lateout("r1") _, lateout("r2") _, lateout("r3") _,
            lateout("d8") _, lateout("d9") _, lateout("d10") _, lateout("d11") _,
            lateout("d12") _, lateout("d13") _, lateout("d14") _, lateout("d15") _,
        );
    }
    after
}

/// The registers that differ, as "name=got (expected want)"; the first few of them.
fn differences(
    names: impl Fn(usize) -> String,
    want: &[u64],
    got: &[u64],
    width: usize,
) -> Result<(), String> {
    const SHOWN: usize = 3;
    let bad: Vec<String> = want
        .iter()
        .zip(got)
        .enumerate()
        .filter(|(_, (w, g))| w != g)
        .map(|(i, (w, g))| format!("{}={g:#0width$x} (expected {w:#0width$x})", names(i)))
        .collect();
    match bad.len() {
        0 => Ok(()),
        n if n <= SHOWN => Err(bad.join(", ")),
        n => Err(format!(
            "{} and {} more of {} registers",
            bad[..SHOWN].join(", "),
            n - SHOWN,
            want.len()
        )),
    }
}

/// Participant `p`: load its values into the registers of `view`, yield, compare.
fn participate(view: View, p: u32) -> Result<(), String> {
    match view {
        View::Core => {
            let values: [u32; 8] = core::array::from_fn(|i| pattern(p, i));
            let after = core_regs_across(&values, yield_a_few_times);
            differences(
                |i| format!("r{}", i + 4),
                &values.map(u64::from),
                &after.map(u64::from),
                10,
            )
        }
        View::Single => {
            let values: [u32; 16] = core::array::from_fn(|i| pattern(p, i) ^ 0x0F00_0000);
            let after = single_regs_across(&values, yield_a_few_times);
            differences(
                |i| format!("s{}", i + 16),
                &values.map(u64::from),
                &after.map(u64::from),
                10,
            )
        }
        View::Double => {
            let values: [f64; 8] = core::array::from_fn(|i| double_pattern(p, i));
            let after = double_regs_across(&values, yield_a_few_times);
            differences(
                |i| format!("d{}", i + 8),
                &values.map(f64::to_bits),
                &after.map(f64::to_bits),
                18,
            )
        }
    }
}

/// The main context takes part with `views[0]`, one coroutine each with the others, all at
/// the same time.
pub(crate) fn survive_switches(views: &[View]) -> Result<String, String> {
    let (main_view, others) = views.split_first().expect("at least the main context");
    let handles: Vec<_> = others
        .iter()
        .enumerate()
        .map(|(i, &view)| {
            let p = i as u32 + 2;
            Builder::new(format!("regs-{p}-{view:?}"))
                .stack_size(STACK)
                .spawn(move || participate(view, p))
        })
        .collect();
    let mut errors = Vec::new();
    if let Err(e) = participate(*main_view, 1) {
        errors.push(format!("main ({main_view:?}): {e}"));
    }
    for handle in handles {
        let name = handle.name().to_string();
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("{name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(format!("{} participants", views.len()))
    } else {
        Err(errors.join("; "))
    }
}

/// FPSCR rounding modes (bits 23:22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Rounding {
    Nearest = 0,
    PlusInfinity = 1,
    MinusInfinity = 2,
    Zero = 3,
}

impl Rounding {
    fn from_fpscr(fpscr: u32) -> u32 {
        (fpscr >> 22) & 0b11
    }

    /// The bits of `1.0 + 0.75 ulp` and `-1.0 - 0.75 ulp` in this mode.
    fn expected_sums(self) -> (u32, u32) {
        const ONE_UP: u32 = 0x3F80_0001;
        const ONE: u32 = 0x3F80_0000;
        const MINUS_ONE_DOWN: u32 = 0xBF80_0001;
        const MINUS_ONE: u32 = 0xBF80_0000;
        match self {
            Rounding::Nearest => (ONE_UP, MINUS_ONE_DOWN),
            Rounding::PlusInfinity => (ONE_UP, MINUS_ONE),
            Rounding::MinusInfinity => (ONE, MINUS_ONE_DOWN),
            Rounding::Zero => (ONE, MINUS_ONE),
        }
    }
}

/// The FPSCR of the running context.
fn fpscr() -> u32 {
    let value: u32;
    // SAFETY: reading FPSCR has no side effect.
    unsafe {
        core::arch::asm!("vmrs {}, fpscr", out(reg) value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// What a rounding participant saw after its yields.
struct RoundingSeen {
    /// The FPSCR rounding mode field.
    mode: u32,
    /// `1.0 + 0.75 ulp` and `-1.0 - 0.75 ulp`, computed by the FPU in that mode.
    sums: (u32, u32),
}

/// Set `mode`, call `yielder`, then read the rounding mode and let the FPU round two sums in
/// it; FPSCR is back to its value on entry (flags included) when the block ends.
#[inline(never)]
fn rounding_across(mode: Rounding, yielder: extern "C" fn()) -> RoundingSeen {
    let (seen, up, down): (u32, u32, u32);
    // SAFETY: as in `core_regs_across` for the call. The FPSCR on entry is kept on the stack
    // (8 bytes, alignment kept) and restored before the block ends, so Rust code after the
    // block runs in the floating-point environment it had; during the call only the
    // runtime's scheduling path runs in `mode` on this context, and it does no floating-point
    // arithmetic. r0 is written before the inputs are used, hence `out` rather than `lateout`.
    unsafe {
        asm_calling!(
            "vmrs r0, fpscr",
            "sub sp, sp, #8",
            "str r0, [sp]",
            "bic r0, r0, #0x00C00000",
            "orr r0, r0, {mode}, lsl #22",
            "vmsr fpscr, r0",
            "blx {yielder}",
            "vmrs r1, fpscr",
            "movw r0, #0x0000",
            "movt r0, #0x3F80", // 1.0
            "vmov s0, r0",
            "movw r0, #0x0000",
            "movt r0, #0x33C0", // 1.5 * 2^-24: three quarters of an ulp of 1.0
            "vmov s1, r0",
            "vadd.f32 s2, s0, s1",
            "vmov r2, s2",
            "vneg.f32 s0, s0",
            "vneg.f32 s1, s1",
            "vadd.f32 s2, s0, s1",
            "vmov r3, s2",
            "ldr r0, [sp]",
            "add sp, sp, #8",
            "vmsr fpscr, r0",
            mode = in(reg) mode as u32,
            yielder = in(reg) yielder,
            out("r0") _,
            lateout("r1") seen,
            lateout("r2") up,
            lateout("r3") down,
        );
    }
    RoundingSeen {
        mode: Rounding::from_fpscr(seen),
        sums: (up, down),
    }
}

/// Rounding mode a fresh coroutine spawned by the round-toward-zero participant saw.
static CHILD_MODE: AtomicU32 = AtomicU32::new(u32::MAX);

/// The round-toward-zero participant's callee: also spawns a coroutine from within that mode
/// and records the mode the fresh coroutine starts with.
extern "C" fn spawn_child_then_yield() {
    let child = Builder::new("fpscr-child")
        .stack_size(STACK)
        .spawn(|| Rounding::from_fpscr(fpscr()));
    CHILD_MODE.store(child.join().unwrap_or(u32::MAX - 1), Ordering::Relaxed);
    yield_a_few_times();
}

fn check_rounding(mode: Rounding, yielder: extern "C" fn()) -> Result<(), String> {
    let seen = rounding_across(mode, yielder);
    let mut errors = Vec::new();
    if seen.mode != mode as u32 {
        errors.push(format!(
            "FPSCR rounding mode {} after the switches (set {})",
            seen.mode, mode as u32
        ));
    }
    let want = mode.expected_sums();
    if seen.sums != want {
        errors.push(format!(
            "sums rounded to {:#010x}, {:#010x} (expected {:#010x}, {:#010x})",
            seen.sums.0, seen.sums.1, want.0, want.1
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join(", "))
    }
}

/// Each context keeps its own FPSCR rounding mode across switches; a fresh coroutine starts
/// in round-to-nearest whatever its spawner's mode (the switch frame of a new stack holds
/// FPSCR = 0).
pub(crate) fn fpscr_per_coroutine() -> Result<String, String> {
    let main_before = fpscr();
    let handles: Vec<_> = [
        (Rounding::Zero, spawn_child_then_yield as extern "C" fn()),
        (Rounding::PlusInfinity, yield_a_few_times),
        (Rounding::MinusInfinity, yield_a_few_times),
    ]
    .into_iter()
    .map(|(mode, yielder)| {
        Builder::new(format!("fpscr-{mode:?}"))
            .stack_size(STACK)
            .spawn(move || check_rounding(mode, yielder))
    })
    .collect();
    let mut errors = Vec::new();
    if let Err(e) = check_rounding(Rounding::Nearest, yield_a_few_times) {
        errors.push(format!("main (Nearest): {e}"));
    }
    for handle in handles {
        let name = handle.name().to_string();
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("{name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let child = CHILD_MODE.load(Ordering::Relaxed);
    if child != Rounding::Nearest as u32 {
        errors.push(format!(
            "a coroutine spawned in round-toward-zero started in mode {child}, not nearest"
        ));
    }
    let main_after = fpscr();
    if main_after != main_before {
        errors.push(format!(
            "main FPSCR {main_after:#010x} after the test, {main_before:#010x} before"
        ));
    }
    if errors.is_empty() {
        Ok(format!("main FPSCR {main_before:#010x}"))
    } else {
        Err(errors.join("; "))
    }
}

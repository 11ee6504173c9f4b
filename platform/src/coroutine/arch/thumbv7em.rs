//! ARMv7E-M (Cortex-M4/M7, Thumb-2) context switch, with the FPU of the `eabihf` targets.
//!
//! Register contract (AAPCS, VFP variant): `r4`–`r11` and `sp` are callee-saved, `lr` holds the
//! return address; with a hardware FPU `s16`–`s31` (`d8`–`d15`) are callee-saved too and the
//! `FPSCR` control bits (rounding, flush-to-zero, default NaN) must be preserved. corosensei 0.3.4
//! misses `s16`–`s31` on `thumbv7em-none-eabihf`; this switch saves them.
//!
//! Saved frame, as [`switch`] leaves it (addresses grow upwards, `sp` is what `*save` receives):
//!
//! ```text
//!  sp + 100  lr            (fresh stack: `trampoline` | 1, a Thumb address)
//!  sp + 68   r4 .. r11     (fresh stack: r4 = arg, r5 = entry, r7 = 0 ends frame walks)
//!  sp + 64   FPSCR         (fresh stack: 0, round to nearest; only with an FPU)
//!  sp + 0    s16 .. s31    (only with an FPU)
//! ```
//!
//! With an FPU the frame is 104 bytes, without one 40; both keep the 8-byte alignment AAPCS
//! requires at calls.

use core::arch::naked_asm;

use super::Entry;

/// Stack pointer alignment at a call (AAPCS: 8 bytes).
pub(crate) const STACK_ALIGN: usize = 8;

/// Whether this build saves the VFP registers.
const HAS_FPU: bool = cfg!(target_abi = "eabihf");

/// Bytes of the saved frame described in the module documentation.
const FRAME: usize = if HAS_FPU { 104 } else { 40 };

/// Prepare a fresh stack whose first [`switch`] calls `entry(arg)`. Returns the stack pointer
/// to pass as `load`.
///
/// # Safety
/// `top` must be the one-past-the-end address of a writable region of at least 128 bytes,
/// aligned to [`STACK_ALIGN`], that stays allocated until the context has finished running.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: Entry, arg: usize) -> usize {
    debug_assert_eq!(top as usize % STACK_ALIGN, 0);
    let mut words = [0usize; FRAME / 4];
    let gpr = if HAS_FPU { 17 } else { 1 }; // index of r4
    words[gpr] = arg; // r4
    words[gpr + 1] = entry as *const () as usize; // r5
    words[gpr + 8] = trampoline as *const () as usize; // lr; a Rust fn pointer already has the Thumb bit
    let sp = top.wrapping_sub(FRAME).cast::<usize>();
    // SAFETY: the caller guarantees `top` ends a writable region of at least 128 bytes, so the
    // FRAME bytes below it are ours to write; `usize` writes are aligned because `top` is.
    unsafe { sp.copy_from_nonoverlapping(words.as_ptr(), words.len()) };
    sp as usize
}

/// First code a fresh context runs: `entry(arg)` with the arguments `init_stack` stored in
/// callee-saved registers. `entry` never returns; `udf` traps if it ever did.
///
/// # Safety
/// Never called as a function: `switch` enters it by returning into it, on a stack that
/// [`init_stack`] prepared.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!("mov r0, r4", "blx r5", "udf #0")
}

/// Save the running context (its stack pointer goes to `*save`) and resume the one whose
/// stack pointer is `load`. Returns when another context switches back to the saved one.
///
/// # Safety
/// `save` must be valid for a write of a `usize`; `load` must be a stack pointer produced by
/// [`init_stack`] or stored by an earlier `switch`, whose context has not been resumed since,
/// and whose stack is still allocated.
#[cfg(target_abi = "eabihf")]
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch(save: *mut usize, load: usize) {
    naked_asm!(
        // LLVM assembles naked functions without the target's FPU features under LTO
        // (rust-lang/rust#80608); name the FPU so `vpush`/`vmrs` assemble everywhere.
        ".fpu fpv4-sp-d16",
        "vmrs r2, fpscr",
        "push {{r2, r4-r11, lr}}",
        "vpush {{s16-s31}}",
        "mov r2, sp",
        "str r2, [r0]",
        "mov sp, r1",
        "vpop {{s16-s31}}",
        "pop {{r2, r4-r11, lr}}",
        "vmsr fpscr, r2",
        "bx lr",
    )
}

/// Save the running context (its stack pointer goes to `*save`) and resume the one whose
/// stack pointer is `load`. Returns when another context switches back to the saved one.
///
/// # Safety
/// As for the FPU variant: `save` valid for a write, `load` a live saved or fresh context.
#[cfg(not(target_abi = "eabihf"))]
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch(save: *mut usize, load: usize) {
    naked_asm!(
        "push {{r2, r4-r11, lr}}",
        "mov r2, sp",
        "str r2, [r0]",
        "mov sp, r1",
        "pop {{r2, r4-r11, lr}}",
        "bx lr",
    )
}

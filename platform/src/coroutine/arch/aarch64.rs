//! AArch64 (AAPCS64) context switch.
//!
//! Register contract (AAPCS64): `x19`–`x28`, the frame pointer `x29`, the link register `x30`,
//! `sp` and the low 64 bits of `v8`–`v15` (`d8`–`d15`) are callee-saved; `FPCR` (rounding mode,
//! flush-to-zero) must be preserved across calls.
//!
//! Saved frame, as [`switch`] leaves it (addresses grow upwards, `sp` is what `*save` receives):
//!
//! ```text
//!  sp + 168  padding
//!  sp + 160  FPCR
//!  sp + 96   d8  d9  d10 d11 d12 d13 d14 d15
//!  sp + 88   x30 (lr)   (fresh stack: `trampoline`)
//!  sp + 80   x29 (fp)   (fresh stack: 0, ends frame-pointer walks)
//!  sp + 8    x20 .. x28 (fresh stack: x20 = entry)
//!  sp + 0    x19        (fresh stack: arg)
//! ```
//!
//! The frame is 176 bytes, so `sp` stays 16-byte aligned as AAPCS64 requires at all times.

use core::arch::naked_asm;

use super::Entry;

/// Stack pointer alignment (AAPCS64: 16 bytes, always).
pub(crate) const STACK_ALIGN: usize = 16;

/// Bytes of the saved frame described in the module documentation.
const FRAME: usize = 176;

/// Prepare a fresh stack whose first [`switch`] calls `entry(arg)`. Returns the stack pointer
/// to pass as `load`.
///
/// # Safety
/// `top` must be the one-past-the-end address of a writable region of at least 256 bytes,
/// aligned to [`STACK_ALIGN`], that stays allocated until the context has finished running.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: Entry, arg: usize) -> usize {
    debug_assert_eq!(top as usize % STACK_ALIGN, 0);
    let mut words = [0usize; FRAME / 8];
    words[0] = arg; // x19
    words[1] = entry as *const () as usize; // x20
    words[11] = trampoline as *const () as usize; // x30
    // x29, d8-d15 and FPCR (round to nearest, no flush-to-zero) start at zero.
    let sp = top.wrapping_sub(FRAME).cast::<usize>();
    // SAFETY: the caller guarantees `top` ends a writable region of at least 256 bytes, so the
    // FRAME bytes below it are ours to write; `usize` writes are aligned because `top` is.
    unsafe { sp.copy_from_nonoverlapping(words.as_ptr(), words.len()) };
    sp as usize
}

/// First code a fresh context runs: `entry(arg)` with the arguments `init_stack` stored in
/// callee-saved registers. `entry` never returns; `brk` traps if it ever did.
///
/// # Safety
/// Never called as a function: `switch` enters it by returning into it, on a stack that
/// [`init_stack`] prepared.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined x30",
        "mov x0, x19",
        "blr x20",
        "brk #1",
        ".cfi_endproc",
    )
}

/// Save the running context (its stack pointer goes to `*save`) and resume the one whose
/// stack pointer is `load`. Returns when another context switches back to the saved one.
///
/// # Safety
/// `save` must be valid for a write of a `usize`; `load` must be a stack pointer produced by
/// [`init_stack`] or stored by an earlier `switch`, whose context has not been resumed since,
/// and whose stack is still allocated.
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch(save: *mut usize, load: usize) {
    naked_asm!(
        "sub sp, sp, #176",
        "stp x19, x20, [sp, #0]",
        "stp x21, x22, [sp, #16]",
        "stp x23, x24, [sp, #32]",
        "stp x25, x26, [sp, #48]",
        "stp x27, x28, [sp, #64]",
        "stp x29, x30, [sp, #80]",
        "stp d8, d9, [sp, #96]",
        "stp d10, d11, [sp, #112]",
        "stp d12, d13, [sp, #128]",
        "stp d14, d15, [sp, #144]",
        "mrs x9, fpcr",
        "str x9, [sp, #160]",
        "mov x9, sp",
        "str x9, [x0]",
        "mov sp, x1",
        "ldr x9, [sp, #160]",
        "msr fpcr, x9",
        "ldp d14, d15, [sp, #144]",
        "ldp d12, d13, [sp, #128]",
        "ldp d10, d11, [sp, #112]",
        "ldp d8, d9, [sp, #96]",
        "ldp x29, x30, [sp, #80]",
        "ldp x27, x28, [sp, #64]",
        "ldp x25, x26, [sp, #48]",
        "ldp x23, x24, [sp, #32]",
        "ldp x21, x22, [sp, #16]",
        "ldp x19, x20, [sp, #0]",
        "add sp, sp, #176",
        "ret",
    )
}

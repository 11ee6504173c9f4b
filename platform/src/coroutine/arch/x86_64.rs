//! x86_64 System V context switch.
//!
//! Register contract (System V AMD64 ABI): `rbx`, `rbp`, `r12`–`r15` and `rsp` are callee-saved,
//! as are the control bits of `MXCSR` and the x87 control word. All `xmm`/`ymm` registers are
//! caller-saved, so the compiler has already spilled any it needs before calling [`switch`].
//!
//! Saved frame, as [`switch`] leaves it (addresses grow upwards, `sp` is what `*save` receives):
//!
//! ```text
//!  sp + 56  return address      (fresh stack: `trampoline`)
//!  sp + 48  rbp                 (fresh stack: 0, ends frame-pointer walks)
//!  sp + 40  rbx                 (fresh stack: arg)
//!  sp + 32  r12                 (fresh stack: entry)
//!  sp + 24  r13
//!  sp + 16  r14
//!  sp +  8  r15
//!  sp +  4  x87 control word
//!  sp +  0  MXCSR
//! ```
//!
//! A fresh stack keeps 16 zero bytes above the return address (a null return address for
//! unwinders), which leaves `rsp` 16-byte aligned when `trampoline` is entered by `ret`, exactly
//! as after a `call`'s return; `trampoline` then `call`s `entry`, which sees the ABI's `rsp % 16 == 8`.

use core::arch::naked_asm;

use super::Entry;

/// Stack pointer alignment at a call (System V: 16 bytes).
pub(crate) const STACK_ALIGN: usize = 16;

/// Default MXCSR: all exceptions masked, round to nearest.
const MXCSR_DEFAULT: u32 = 0x1F80;
/// Default x87 control word: all exceptions masked, 64-bit precision, round to nearest.
const FCW_DEFAULT: u32 = 0x037F;

/// Prepare a fresh stack whose first [`switch`] calls `entry(arg)`. Returns the stack pointer
/// to pass as `load`.
///
/// # Safety
/// `top` must be the one-past-the-end address of a writable region of at least 128 bytes,
/// aligned to [`STACK_ALIGN`], that stays allocated until the context has finished running.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: Entry, arg: usize) -> usize {
    debug_assert_eq!(top as usize % STACK_ALIGN, 0);
    let words: [usize; 10] = [
        MXCSR_DEFAULT as usize | (FCW_DEFAULT as usize) << 32,
        0,                                // r15
        0,                                // r14
        0,                                // r13
        entry as *const () as usize,      // r12
        arg,                              // rbx
        0,                                // rbp
        trampoline as *const () as usize, // return address
        0,                                // null return address for unwinders
        0,                                // padding to 16 bytes
    ];
    let sp = top.wrapping_sub(words.len() * 8).cast::<usize>();
    // SAFETY: the caller guarantees `top` ends a writable region of at least 128 bytes, so the
    // 80 bytes below it are ours to write; `usize` writes are aligned because `top` is.
    unsafe { sp.copy_from_nonoverlapping(words.as_ptr(), words.len()) };
    sp as usize
}

/// First code a fresh context runs: `entry(arg)` with the arguments `init_stack` stored in
/// callee-saved registers. `entry` never returns; `ud2` traps if it ever did.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined rip",
        "mov rdi, rbx",
        "call r12",
        "ud2",
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
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "sub rsp, 8",
        "stmxcsr [rsp]",
        "fnstcw [rsp + 4]",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "ldmxcsr [rsp]",
        "fldcw [rsp + 4]",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    )
}

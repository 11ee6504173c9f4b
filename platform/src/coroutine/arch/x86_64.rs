//! x86_64 System V context switch.
//!
//! Register contract (System V AMD64 ABI): `rbx`, `rbp`, `r12`–`r15` and `rsp` are callee-saved.
//! All `xmm`/`ymm` registers are caller-saved.
//!
//! [`switch`] is inline assembly, not a call: `r12`–`r15` and every caller-saved register are
//! declared clobbered, so the compiler keeps whatever it needs of them on the stack around the
//! switch (and nothing when nothing is live). The registers the compiler cannot be told about
//! (`rbx`, `rbp`) are saved by the switch itself, in this frame:
//!
//! ```text
//!  sp + 16  rbp                 (fresh stack: entry)
//!  sp +  8  rbx                 (fresh stack: arg)
//!  sp +  0  resume address      (fresh stack: `trampoline`)
//! ```
//!
//! A context is resumed with `pop` + `jmp`, not `ret`: the indirect-branch predictor learns a
//! ping-pong of two contexts, where a `ret` would always miss in the return-stack buffer. A
//! fresh stack starts 32 bytes below a 16-byte aligned top (the top word is padding), so
//! `trampoline` pops the frame, leaving `rsp` aligned, and `call`s `entry(arg)` as the ABI wants.
//!
//! The ABI also makes the control bits of `MXCSR` and the x87 control word callee-saved. They
//! are not switched: Rust code runs in the default floating-point environment (changing it is
//! undefined behaviour in Rust, which is why `_mm_setcsr` is deprecated), so at every switch —
//! always a call from Rust — both hold their defaults, and foreign code must restore them before
//! returning to Rust. Switching them anyway quadruples the cost of a switch (measured on AMD
//! EPYC: 10.4 ns instead of 2.6 ns per round trip; `ldmxcsr`/`stmxcsr`/`fnstcw` are slow).

use core::arch::{asm, naked_asm};

use super::Entry;

/// Stack pointer alignment at a call (System V: 16 bytes).
pub(crate) const STACK_ALIGN: usize = 16;

/// Prepare a fresh stack whose first [`switch`] calls `entry(arg)`. Returns the stack pointer
/// to pass as `load`.
///
/// # Safety
/// `top` must be the one-past-the-end address of a writable region of at least 128 bytes,
/// aligned to [`STACK_ALIGN`], that stays allocated until the context has finished running.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: Entry, arg: usize) -> usize {
    debug_assert_eq!(top as usize % STACK_ALIGN, 0);
    let words: [usize; 4] = [
        trampoline as *const () as usize,
        arg,
        entry as *const () as usize,
        0,
    ];
    let sp = top.wrapping_sub(words.len() * 8).cast::<usize>();
    // SAFETY: the caller guarantees `top` ends a writable region of at least 128 bytes, so the
    // 32 bytes below it are ours to write; `usize` writes are aligned because `top` is.
    unsafe { sp.copy_from_nonoverlapping(words.as_ptr(), words.len()) };
    sp as usize
}

/// First code a fresh context runs: pops the frame `init_stack` built, then calls
/// `entry(arg)`. `entry` never returns; `ud2` traps if it ever did.
///
/// # Safety
/// Never called as a function: `switch` enters it by returning into it, on a stack that
/// [`init_stack`] prepared.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined rip",
        "pop rdi",
        "pop rax",
        "add rsp, 8",
        "xor ebp, ebp",
        "call rax",
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
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut usize, load: usize) {
    // SAFETY: the caller guarantees `save` and `load` (see above). The block leaves `rsp`, `rbx`
    // and `rbp` as it found them when this context is resumed, and declares everything else it
    // may change (the resumed context's code runs in between) clobbered.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "pop rax",
            "jmp rax",
            "2:",
            "pop rbx",
            "pop rbp",
            in("rdi") save,
            in("rsi") load,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
}

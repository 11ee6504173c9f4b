//! Architecture back ends of the coroutine runtime: the only place with inline assembly.
//!
//! Every back end exports the same items:
//!
//! - [`STACK_ALIGN`]: the alignment the ABI requires of a stack pointer at a call;
//! - `init_stack(top, entry, arg) -> sp`: prepare a fresh stack so that the first [`switch`] to
//!   `sp` calls `entry(arg)` (barebox's `initjmp`);
//! - `switch(save, load)`: save every callee-saved register of the running context on its own
//!   stack, store its stack pointer to `*save`, and resume the context whose stack pointer is
//!   `load` (barebox's `setjmp` + `longjmp` in one call).
//!
//! A saved context is nothing but a stack pointer: the registers sit on the stack it points to.

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod imp;

#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod imp;

// ARMv7-M/ARMv7E-M (ARMv6-M has no 32-bit atomics and lacks the Thumb-2 instructions used).
#[cfg(all(target_arch = "arm", target_os = "none", target_has_atomic = "32"))]
#[path = "thumbv7em.rs"]
mod imp;

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    all(target_arch = "arm", target_os = "none", target_has_atomic = "32")
)))]
compile_error!(
    "lunbox coroutines: no context switch for this architecture (x86_64, aarch64, ARMv7E-M thumb)"
);

pub(crate) use imp::{STACK_ALIGN, init_stack, switch};

/// Entry function of a fresh context: receives the `arg` given to `init_stack` and never returns.
pub(crate) type Entry = unsafe extern "C" fn(arg: usize) -> !;

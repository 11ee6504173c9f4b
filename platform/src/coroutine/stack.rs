//! Coroutine stacks: allocation, painting for the high-water mark, and the limit canary.
//!
//! ```text
//!  top  ─┬─────────────────────────┐  initial stack pointer (16-byte aligned)
//!        │ used by the coroutine ↓ │
//!        │ painted with PAINT      │  the lowest unpainted byte is the high-water mark
//!        ├─────────────────────────┤
//!        │ canary (CANARY_BYTES)   │  checked on every switch
//!  base ─┴─────────────────────────┘
//! ```
//!
//! The memory is a raw allocation touched only through raw pointers: while a coroutine runs,
//! its frames live in it, so no Rust reference to it may exist.

use alloc::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use core::ptr::NonNull;

/// Byte pattern of the unused stack.
const PAINT: u8 = 0xA5;
/// Word pattern of the canary at the stack's limit (the bytes "!lun" in memory).
const CANARY: u32 = 0x6E75_6C21;
/// Bytes of canary at the low end of every stack.
pub(crate) const CANARY_BYTES: usize = 64;
/// Smallest stack the runtime accepts: the canary, the initial frame and a little work room.
pub const MIN_STACK_SIZE: usize = 1024;
/// Alignment of stack memory; at least every architecture's `STACK_ALIGN`.
const ALIGN: usize = 16;
const _: () = assert!(ALIGN.is_multiple_of(super::arch::STACK_ALIGN));

/// One coroutine's stack.
pub(crate) struct Stack {
    base: NonNull<u8>,
    layout: Layout,
}

impl Stack {
    /// Allocate and paint a stack of `size` bytes (rounded up to 16, at least [`MIN_STACK_SIZE`]).
    pub(crate) fn new(size: usize) -> Stack {
        let size = size.max(MIN_STACK_SIZE).next_multiple_of(ALIGN);
        let Ok(layout) = Layout::from_size_align(size, ALIGN) else {
            panic!("lunbox coroutines: stack size {size} is too large");
        };
        // SAFETY: `layout` has a non-zero size (at least MIN_STACK_SIZE).
        let ptr = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation is `size` bytes long and exclusively ours.
        unsafe { base.as_ptr().write_bytes(PAINT, size) };
        let canary = base.as_ptr().cast::<u32>();
        for i in 0..CANARY_BYTES / 4 {
            // SAFETY: CANARY_BYTES < size and the base is 16-byte aligned, so every word is in
            // bounds and aligned.
            unsafe { canary.wrapping_add(i).write(CANARY) };
        }
        Stack { base, layout }
    }

    /// Size in bytes (canary included).
    pub(crate) fn size(&self) -> usize {
        self.layout.size()
    }

    /// One past the highest byte: the initial stack pointer, aligned to 16.
    pub(crate) fn top(&self) -> *mut u8 {
        self.base.as_ptr().wrapping_add(self.size())
    }

    /// Address range `[base, top)` of the stack memory.
    pub(crate) fn bounds(&self) -> (usize, usize) {
        (self.base.as_ptr() as usize, self.top() as usize)
    }

    /// Whether the canary at the stack's limit is intact.
    pub(crate) fn canary_intact(&self) -> bool {
        let canary = self.base.as_ptr().cast::<u32>();
        // SAFETY: the canary words are in bounds and aligned (see `new`); they are never part of
        // a live frame unless the stack overflowed, and a racy read cannot happen: one thread.
        (0..CANARY_BYTES / 4).all(|i| unsafe { canary.wrapping_add(i).read_volatile() } == CANARY)
    }

    /// Most bytes ever used: everything above the lowest byte that is no longer paint.
    pub(crate) fn high_water(&self) -> usize {
        let start = CANARY_BYTES;
        let untouched = (start..self.size())
            // SAFETY: `i` is within the allocation; the bytes read are plain data and the owner
            // of a live frame there is suspended or is the caller itself (one thread).
            .take_while(|&i| unsafe { self.base.as_ptr().wrapping_add(i).read_volatile() } == PAINT)
            .count();
        self.size() - start - untouched
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the runtime drops a stack only once its
        // coroutine can never run again.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

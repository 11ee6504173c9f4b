//! Coroutine stacks: allocation, painting for the high-water mark, and the limit canary.
//!
//! ```text
//!  top  ─┬─────────────────────────┐  initial stack pointer (16-byte aligned)
//!        │ used by the coroutine ↓ │
//!        │ painted with PAINT      │  the lowest unpainted byte is the high-water mark
//!        ├─────────────────────────┤
//!        │ canary (CANARY_BYTES)   │  checked on every pass through the scheduler
//!  base ─┼─────────────────────────┤
//!        │ guard page (std + unix) │  no access: an overflow past the canary faults
//!        └─────────────────────────┘
//! ```
//!
//! The memory is touched only through raw pointers: while a coroutine runs, its frames live in
//! it, so no Rust reference to it may exist.

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
    size: usize,
    /// The guard page's entry in the fault reporter (std unix hosts), released before the
    /// memory is.
    guard: Option<memory::Guard>,
}

impl Stack {
    /// Allocate and paint a stack of `size` bytes (rounded up to 16, or to whole pages where
    /// there is a guard page; at least [`MIN_STACK_SIZE`]) for coroutine `name` (named when
    /// an overflow hits the guard page).
    pub(crate) fn new(size: usize, name: &str) -> Stack {
        let (base, size, guard) = memory::allocate(size.max(MIN_STACK_SIZE), name);
        // SAFETY: the allocation is `size` bytes long and exclusively ours.
        unsafe { base.as_ptr().write_bytes(PAINT, size) };
        let canary = base.as_ptr().cast::<u32>();
        for i in 0..CANARY_BYTES / 4 {
            // SAFETY: CANARY_BYTES < size and the base is 16-byte aligned, so every word is in
            // bounds and aligned.
            unsafe { canary.wrapping_add(i).write(CANARY) };
        }
        Stack {
            base,
            size,
            guard: Some(guard),
        }
    }

    /// Size in bytes (canary included).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// One past the highest byte: the initial stack pointer, aligned to 16.
    pub(crate) fn top(&self) -> *mut u8 {
        self.base.as_ptr().wrapping_add(self.size)
    }

    /// Address range `[base, top)` of the stack memory.
    pub(crate) fn bounds(&self) -> (usize, usize) {
        (self.base.as_ptr() as usize, self.top() as usize)
    }

    /// Lowest address of the stack, for [`Stack::canary_intact_at`].
    pub(crate) fn base(&self) -> *const u8 {
        self.base.as_ptr()
    }

    /// Whether the canary at the limit of the stack whose [`Stack::base`] is `base` is intact.
    /// Checks the two topmost words (an overflow creeping down hits them first) and the lowest
    /// one: cheap enough for every pass through the scheduler.
    ///
    /// # Safety
    /// `base` must come from a `Stack` that is still alive (the scheduler passes the running
    /// context's, which lives while it runs).
    pub(crate) unsafe fn canary_intact_at(base: *const u8) -> bool {
        let canary = base.cast::<u32>();
        const WORDS: usize = CANARY_BYTES / 4;
        [WORDS - 1, WORDS - 2, 0].into_iter().all(|i| {
            // SAFETY: `base` is the base of a live stack (the caller's contract), whose first
            // CANARY_BYTES are the aligned canary words; one thread, so no race.
            unsafe { canary.wrapping_add(i).read_volatile() == CANARY }
        })
    }

    /// Most bytes ever used: everything above the lowest byte that is no longer paint.
    pub(crate) fn high_water(&self) -> usize {
        let start = CANARY_BYTES;
        let untouched = (start..self.size)
            // SAFETY: `i` is within the allocation; the bytes read are plain data and the owner
            // of a live frame there is suspended or is the caller itself (one thread).
            .take_while(|&i| unsafe { self.base.as_ptr().wrapping_add(i).read_volatile() } == PAINT)
            .count();
        self.size - start - untouched
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Unregister the guard page first: once unmapped, its addresses may be reused.
        let _ = self.guard.take();
        // SAFETY: `base` and `size` come from `memory::allocate`; the runtime drops a stack only
        // once its coroutine can never run again.
        unsafe { memory::free(self.base, self.size) };
    }
}

/// Stack memory from the heap (the MCU, non-unix hosts).
#[cfg(not(all(feature = "std", unix)))]
mod memory {
    use alloc::alloc::{Layout, alloc, dealloc, handle_alloc_error};
    use core::ptr::NonNull;

    use super::ALIGN;

    /// No guard page here.
    pub(super) type Guard = ();

    fn layout(size: usize) -> Layout {
        match Layout::from_size_align(size, ALIGN) {
            Ok(layout) => layout,
            Err(_) => panic!("lunbox coroutines: stack size {size} is too large"),
        }
    }

    /// `(base, size, guard)` of a fresh, 16-byte aligned allocation of at least `size` bytes.
    pub(super) fn allocate(size: usize, _name: &str) -> (NonNull<u8>, usize, Guard) {
        let layout = layout(size.next_multiple_of(ALIGN));
        // SAFETY: `layout` has a non-zero size (the caller asks for at least MIN_STACK_SIZE).
        let ptr = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        (base, layout.size(), ())
    }

    /// Release memory from [`allocate`].
    ///
    /// # Safety
    /// `base` and `size` must come from one [`allocate`] call, freed once.
    pub(super) unsafe fn free(base: NonNull<u8>, size: usize) {
        // SAFETY: allocated in `allocate` with this layout (the caller's contract).
        unsafe { dealloc(base.as_ptr(), layout(size)) };
    }
}

/// Stack memory from `mmap` with a `PROT_NONE` guard page below it (std unix hosts).
#[cfg(all(feature = "std", unix))]
mod memory {
    use core::ptr::{NonNull, null_mut};

    /// The guard page's registration with the fault reporter.
    pub(super) type Guard = crate::coroutine::guard::Registration;

    fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(page).unwrap_or(4096)
    }

    /// `(base, size, guard)` of fresh page-aligned memory of at least `size` bytes, with an
    /// inaccessible guard page right below `base`, registered under `name`.
    pub(super) fn allocate(size: usize, name: &str) -> (NonNull<u8>, usize, Guard) {
        let page = page_size();
        let size = size.next_multiple_of(page);
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let map = unsafe {
            libc::mmap(
                null_mut(),
                size + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            panic!("lunbox coroutines: cannot map a {size}-byte stack: out of memory");
        }
        // SAFETY: the first page of the mapping just made is ours to protect.
        let rc = unsafe { libc::mprotect(map, page, libc::PROT_NONE) };
        assert_eq!(
            rc, 0,
            "lunbox coroutines: cannot protect a stack guard page"
        );
        let base = map.cast::<u8>().wrapping_add(page);
        let guard = crate::coroutine::guard::register(map as usize, page, name);
        (NonNull::new(base).expect("mmap returned null"), size, guard)
    }

    /// Release memory from [`allocate`].
    ///
    /// # Safety
    /// `base` and `size` must come from one [`allocate`] call, freed once.
    pub(super) unsafe fn free(base: NonNull<u8>, size: usize) {
        let page = page_size();
        let map = base.as_ptr().wrapping_sub(page).cast::<libc::c_void>();
        // SAFETY: `map .. map + size + page` is exactly the mapping made by `allocate`.
        unsafe { libc::munmap(map, size + page) };
    }
}

//! The heap: coroutine stacks, the USB functions' buffers, device records. It fills the
//! `.heap` region the memory map reserves in DTCM (imxrt-rt's `__sheap`..`__eheap`; its size
//! is set in app/build.rs).

use embedded_alloc::LlffHeap;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

// SAFETY: imxrt-rt's linker script defines both symbols, the bounds of the `.heap` region; only
// their addresses are taken.
unsafe extern "C" {
    static mut __sheap: u8;
    static mut __eheap: u8;
}

/// Hand the heap region to the allocator. Called once, by `Board::take`, before anything
/// allocates.
pub(crate) fn init() {
    let start = &raw mut __sheap as usize;
    let end = &raw mut __eheap as usize;
    // SAFETY: called once before the first allocation (Board::take is guarded); the region
    // between the linker's `__sheap` and `__eheap` is reserved for the heap and used by
    // nothing else.
    unsafe { HEAP.init(start, end - start) };
}

/// Bytes of the heap in use and free.
pub fn usage() -> (usize, usize) {
    (HEAP.used(), HEAP.free())
}

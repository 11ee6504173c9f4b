//! `lunbox-teensy41-boot`: the Teensy 4.1's boot stage for A/B firmware updates. It sits at
//! the start of the flash (FlexSPI configuration block, image vector table, this code: at most
//! 64 KiB, never updated by DFU), finishes or reverts a firmware swap with
//! [`lunbox_update::boot`] (power-cut safe: it resumes where a cut stopped it), and starts the
//! image in the primary slot, a `lunbox-teensy41` built with feature `teensy41-ab` (linked at
//! 0x6001_1000, after the slot's trailer sector). docs/firmware-update.md describes the layout and the state machine.
//!
//! It brings up nothing but the flash controller's command interface: the boot ROM has set up
//! the clocks and FlexSPI from the configuration block. It verifies no signature: the
//! firmware target verified the image before it asked for the swap.
//!
//! Not run on a board (QEMU has no i.MX RT machine): see docs/firmware-update.md.

#![no_std]
#![no_main]

use lunbox_platform::imxrt::flash::{FLASH_BASE, Flash};
use lunbox_platform::imxrt::{self, entry};
use lunbox_update::Layout;

/// The layout this boot stage manages.
const LAYOUT: Layout = Layout::TEENSY41;

#[entry]
fn main() -> ! {
    // Everything the swap writes: the slots, the scratch sector and the state sectors.
    let writable = LAYOUT.primary.offset..LAYOUT.state[1] + LAYOUT.sector_size;
    if let Ok(mut flash) = Flash::take(writable) {
        // An error (a flash that does not answer, a layout the flash does not fit) leaves the
        // primary slot as it is: starting it is the best this stage can do.
        let _ = lunbox_update::boot(&mut flash, &LAYOUT);
    }
    let table = LAYOUT.primary.offset + LAYOUT.sector_size;
    // SAFETY: the primary slot holds an image built with `teensy41-ab`, its vector table after
    // the slot's trailer sector (after a swap: the image the firmware target verified); this
    // stage uses nothing of its own afterwards.
    unsafe { imxrt::start_image(FLASH_BASE + table as usize) }
}

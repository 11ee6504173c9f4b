//! lunbox firmware update on flash: A/B slots that survive a power cut anywhere.
//!
//! The board's flash holds a boot stage that is never updated, a *primary* slot (the image
//! that always runs, linked for that address), a *secondary* slot (where a download goes), a
//! *scratch* sector and two *state* sectors ([`Layout`], [`Layout::TEENSY41`]). The scheme is
//! MCUboot's "swap with scratch, revert unless confirmed":
//!
//! 1. the application writes a new image to the secondary slot, verifies it (signature,
//!    board, version: `sink::FlashSlotSink` does the whole step) and calls [`request_test`];
//! 2. at the next start the boot stage's [`boot`] swaps the slots sector by sector through
//!    the scratch sector, recording its progress in the state record, and the new image runs
//!    from the primary slot, on trial;
//! 3. the new image calls [`confirm`] once it is healthy; if it restarts without confirming,
//!    [`boot`] swaps the slots back and the previous image runs, confirmed.
//!
//! A power cut at any point (download, request, swap, confirm, revert) leaves the primary
//! slot holding exactly the previous or the new image once [`boot`] has run to completion,
//! as the state says: see [`swap`] for the state machine and the swap's steps, [`state`] for
//! the record and how it is kept.
//!
//! The images themselves are [`image`]'s signed format (the sandbox checks them with the
//! same code), verified with the public key of [`keys`]; [`sink`] (feature `dfu`, on by
//! default) is the board's `firmware` DFU target, which writes a downloaded image to the
//! secondary slot, verifies it there and calls [`request_test`].
//!
//! The crate is `no_std` without allocation (signing, feature `sign`, needs `alloc`): it
//! works on any [`NorFlash`](embedded_storage::nor_flash::NorFlash) with page-sized buffers
//! on the stack.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "sign"))]
extern crate alloc;

pub mod image;
pub mod keys;
pub mod layout;
#[cfg(feature = "dfu")]
pub mod sink;
pub mod state;
pub mod swap;

pub use layout::{Area, Layout, LayoutError, Region};
pub use state::{DecodeError, Phase, Record, State, Stored};
pub use swap::{BootOutcome, BootReason, Error, boot, cancel_test, confirm, request_test, status};

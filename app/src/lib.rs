//! lunbox's application: the composition every board shares. The gadget manager and its USB
//! controller poller ([`gadget`]), what starts at boot ([`boot`]), card slots whose cards come
//! and go ([`card_slot`]), the console shell ([`shell`]) and the console serving it on
//! the board's terminal and the USB serial port ([`console`]). A board plugs in through
//! [`board::Board`] and [`board::Terminal`]; the binaries are wiring: `lunbox` (the sandbox,
//! `src/main.rs`) and `lunbox-teensy41` (`src/bin/teensy41/`).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod board;
pub mod boot;
pub mod card_slot;
pub mod console;
pub mod gadget;
pub mod shell;

#[cfg(test)]
mod tests;

// A configuration that validates must be one the functions can build: the limits agree.
const _: () = assert!(lunbox_config::MAX_LUNS == lunbox_gadget::ums::MAX_LUNS);
const _: () = assert!(lunbox_config::MAX_DFU_TARGETS == lunbox_gadget::dfu::MAX_TARGETS);

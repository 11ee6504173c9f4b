//! lunbox's machine layer: the stackful coroutine runtime every job runs on, and the boards.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
#[macro_use]
extern crate std;

pub mod coroutine;

#[cfg(feature = "sandbox")]
pub mod sandbox;

#[cfg(feature = "teensy41")]
pub mod imxrt;

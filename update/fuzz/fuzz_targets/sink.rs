//! Fuzz the board's firmware DFU target: signed images with edits, or any bytes, downloaded
//! in chunks of any size from any update state. It accepts exactly what `verify` and its policy
//! accept, and a refused download never leaves a test requested for a changed slot.
//! The properties are `update/tests/hostile`, which the property tests run too.
#![no_main]

// Shared with update's tests, which use more of both.
#[allow(dead_code)]
#[path = "../../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../tests/hostile/mod.rs"]
mod hostile;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hostile::sink::fuzz(data));

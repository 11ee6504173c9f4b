//! Fuzz update state: any bytes through `Record::decode` (a decoded record encodes back to
//! its bytes), a record's bit flips, and state sectors of records, torn records and garbage
//! through `status` and `boot` (no panic or flash error; the boot does what the record says).
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

fuzz_target!(|data: &[u8]| hostile::state::fuzz(data));

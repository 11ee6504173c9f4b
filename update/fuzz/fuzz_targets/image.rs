//! Fuzz firmware images: any bytes through `Header::parse`, `verify` and the streamed
//! `Verifier` (they agree; a parsed header encodes back to its bytes), the version, board and
//! key-file parsers, and a signed image with edits, which verifies only when unchanged.
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

fuzz_target!(|data: &[u8]| hostile::image::fuzz(data));

//! Properties of hostile input, shared by the property tests (`tests/hostile_images.rs`) and
//! the fuzz targets (`update/fuzz`, which include this module by path): each `fuzz` function
//! is a fuzz target's body, taking any bytes.
//!
//! - [`image`]: image headers, verification and the streamed check, on arbitrary bytes and on
//!   signed images with edits; [`text`]: the version, board id and key-file parsers.
//! - [`state`]: state records; [`log`]: the state sectors through `status` and `boot`.
//! - [`sink`]: downloads through the board's DFU target (`FlashSlotSink`).

pub(crate) mod image;
pub(crate) mod input;
pub(crate) mod log;
pub(crate) mod sink;
pub(crate) mod state;
pub(crate) mod text;

use lunbox_update::{Layout, Region};

use crate::common::ERASE;

/// The secret key the signed images are signed with (not the development key).
pub(crate) const SECRET: [u8; 32] = [0x42; 32];

/// A boot sector, 8-sector slots, scratch, two state sectors (as `tests/sink.rs`).
pub(crate) const L: Layout = Layout {
    sector_size: ERASE as u32,
    primary: Region::new(0x400, 0x2000),
    secondary: Region::new(0x2400, 0x2000),
    scratch: 0x4400,
    state: [0x4800, 0x4C00],
};

/// The flash [`L`] is laid out in.
pub(crate) const CAPACITY: usize = 0x5000;

/// `len` pseudo-random bytes from `seed` (xorshift).
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// The bytes of `region` in `mem`.
pub(crate) fn region(mem: &[u8], r: Region) -> &[u8] {
    &mem[r.offset as usize..r.end() as usize]
}

//! Helpers shared by the storage tests: fixtures and table surgery.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Read;

use lunbox_storage::{DeviceRef, RamDisk, share};

/// The decompressed bytes of fixture `name` (in tests/fixtures, made by make-fixtures.sh).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A RAM disk holding `image`.
pub(crate) fn disk(image: Vec<u8>) -> RamDisk {
    RamDisk::from_image(image).unwrap()
}

/// A shared RAM disk holding `image`.
pub(crate) fn shared(image: Vec<u8>) -> DeviceRef {
    share(disk(image))
}

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub(crate) fn get64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Recompute the CRCs of the GPT header at block `lba` of `image` (entry array CRC first).
pub(crate) fn fix_gpt_crcs(image: &mut [u8], lba: u64) {
    let h = lba as usize * 512;
    let entries = get64(image, h + 72) as usize * 512;
    let count = get32(image, h + 80) as usize;
    let size = get32(image, h + 84) as usize;
    let crc = crc32(&image[entries..entries + count * size]);
    put32(image, h + 88, crc);
    let hsize = get32(image, h + 12) as usize;
    put32(image, h + 16, 0);
    let crc = crc32(&image[h..h + hsize]);
    put32(image, h + 16, crc);
}

/// Byte offset of GPT entry `slot` of the primary table in `image`.
pub(crate) fn gpt_entry(image: &[u8], slot: usize) -> usize {
    get64(image, 512 + 72) as usize * 512 + slot * get32(image, 512 + 84) as usize
}

/// Byte offset of MBR entry `slot` in a boot record at byte `at`.
pub(crate) fn mbr_entry(at: usize, slot: usize) -> usize {
    at + 446 + 16 * slot
}

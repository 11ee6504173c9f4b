//! GUID partition tables: the primary header at block 1, the backup at the last block, each
//! with a CRC32 over the header and one over the entry array.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::{
    Partition, PartitionError, PartitionKind, PartitionTable, Scheme, check_layout, le32, le64,
    read_block,
};
use crate::crc32::crc32;
use crate::device::BlockDevice;

/// Largest entry array we read (128 entries of 128 bytes is the norm: 16 KiB).
const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// A GUID as stored in a GPT (the first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The unused-entry type.
    pub const ZERO: Guid = Guid([0; 16]);

    /// Parse the canonical text form (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B`).
    pub fn parse(text: &str) -> Option<Guid> {
        let hex: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
        if hex.len() != 32 || text.len() != 36 {
            return None;
        }
        let mut raw = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let s = core::str::from_utf8(pair).ok()?;
            raw[i] = u8::from_str_radix(s, 16).ok()?;
        }
        // Text order to on-disk order: the first three fields are little-endian.
        raw[0..4].reverse();
        raw[4..6].reverse();
        raw[6..8].reverse();
        Some(Guid(raw))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02X}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The fields of a header we use.
struct Header {
    entries_lba: u64,
    entry_count: u32,
    entry_size: u32,
    entries_crc: u32,
    first_usable: u64,
    last_usable: u64,
}

/// Check the header in `block` that claims to sit at `lba` on a disk of `blocks` blocks.
fn parse_header(block: &[u8], lba: u64, blocks: u64) -> Result<Header, &'static str> {
    if &block[0..8] != b"EFI PART" {
        return Err("has no \"EFI PART\" signature");
    }
    let size = le32(block, 12) as usize;
    if size < 92 || size > block.len() {
        return Err("has an invalid size");
    }
    let mut copy = block[..size].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != le32(block, 16) {
        return Err("fails its CRC32 check");
    }
    if le64(block, 24) != lba {
        return Err("names another block as its own");
    }
    let h = Header {
        first_usable: le64(block, 40),
        last_usable: le64(block, 48),
        entries_lba: le64(block, 72),
        entry_count: le32(block, 80),
        entry_size: le32(block, 84),
        entries_crc: le32(block, 88),
    };
    if h.first_usable > h.last_usable || h.last_usable >= blocks || h.first_usable < 2 {
        return Err("has a usable area outside the disk");
    }
    if h.entry_size < 128 || !h.entry_size.is_power_of_two() {
        return Err("has an invalid entry size");
    }
    let bytes = u64::from(h.entry_count) * u64::from(h.entry_size);
    if bytes > MAX_ENTRY_BYTES {
        return Err("has an implausibly large entry array");
    }
    let array_blocks = bytes.div_ceil(block.len() as u64);
    let array_end = h.entries_lba.checked_add(array_blocks);
    if h.entries_lba < 2 || array_end.is_none_or(|end| end > blocks) {
        return Err("has its entry array outside the disk");
    }
    Ok(h)
}

/// Read and check the entry array of header `h`; returns it on a good CRC.
fn read_entries(disk: &mut dyn BlockDevice, h: &Header) -> Result<Vec<u8>, PartitionError> {
    let bs = disk.block_size() as u64;
    let bytes = u64::from(h.entry_count) * u64::from(h.entry_size);
    let blocks = bytes.div_ceil(bs);
    let mut buf = vec![0u8; (blocks * bs) as usize];
    disk.read(h.entries_lba, &mut buf)?;
    buf.truncate(bytes as usize);
    Ok(buf)
}

/// One header and its entries, or why not.
fn try_table(
    disk: &mut dyn BlockDevice,
    lba: u64,
) -> Result<Result<(Header, Vec<u8>), &'static str>, PartitionError> {
    let blocks = disk.num_blocks();
    let block = read_block(disk, lba)?;
    let header = match parse_header(&block, lba, blocks) {
        Ok(h) => h,
        Err(why) => return Ok(Err(why)),
    };
    let entries = read_entries(disk, &header)?;
    if crc32(&entries) != header.entries_crc {
        return Ok(Err("has an entry array that fails its CRC32 check"));
    }
    Ok(Ok((header, entries)))
}

/// Read the GPT of `disk`, falling back to the backup when the primary is bad.
pub(super) fn read_gpt(disk: &mut dyn BlockDevice) -> Result<PartitionTable, PartitionError> {
    let last = disk.num_blocks() - 1;
    let (header, entries, used_backup) = match try_table(disk, 1)? {
        Ok((h, e)) => (h, e, false),
        Err(primary) => {
            let backup = if last < 2 {
                Err("is missing: the disk is too small")
            } else {
                try_table(disk, last)?
            };
            match backup {
                Ok((h, e)) => (h, e, true),
                Err(backup) => return Err(PartitionError::BadGptHeader { primary, backup }),
            }
        }
    };
    let mut parts = Vec::new();
    for (slot, raw) in entries.chunks_exact(header.entry_size as usize).enumerate() {
        let type_guid = Guid(raw[0..16].try_into().expect("16 bytes"));
        if type_guid == Guid::ZERO {
            continue;
        }
        let first = le64(raw, 32);
        let end = le64(raw, 40);
        let index = slot as u32;
        if end < first {
            return Err(PartitionError::ZeroSize { index });
        }
        let name_units: Vec<u16> = raw[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name: String = char::decode_utf16(name_units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        parts.push(Partition {
            index,
            start: first,
            blocks: end - first + 1,
            kind: PartitionKind::Gpt {
                type_guid,
                unique_guid: Guid(raw[16..32].try_into().expect("16 bytes")),
                name,
                attributes: le64(raw, 48),
            },
        });
    }
    check_layout(&parts, header.first_usable, header.last_usable)?;
    Ok(PartitionTable {
        scheme: Scheme::Gpt,
        partitions: parts,
        used_backup,
    })
}

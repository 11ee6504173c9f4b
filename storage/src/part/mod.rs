//! Partition tables: MBR (primary, extended, logical) and GPT (with its backup).
//!
//! [`read_table`] finds and checks a disk's table; a corrupted table gives a
//! [`PartitionError`] that says what is wrong, never a panic and never a partition that
//! reaches outside the disk or overlaps another.

mod gpt;
mod mbr;
mod types;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::device::BlockDevice;
use crate::error::StorageError;

pub use gpt::Guid;
pub use types::type_label;

/// Which kind of table a disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// DOS/MBR partition table.
    Mbr,
    /// GUID partition table.
    Gpt,
}

/// One partition found in a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its number in the device name (`sd0.<index>`): MBR primaries 0–3 by slot, logicals from 4
    /// in chain order; GPT entries by slot.
    pub index: u32,
    /// First block.
    pub start: u64,
    /// Length in blocks (never 0).
    pub blocks: u64,
    /// What the table says about it.
    pub kind: PartitionKind,
}

/// Table-specific facts about a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKind {
    /// An MBR partition.
    Mbr {
        /// The system ID byte (0x0C FAT32 LBA, 0x83 Linux, …).
        type_id: u8,
        /// The boot flag.
        bootable: bool,
        /// Inside the extended partition.
        logical: bool,
    },
    /// A GPT partition.
    Gpt {
        /// Partition type GUID.
        type_guid: Guid,
        /// Unique partition GUID.
        unique_guid: Guid,
        /// The partition name (UTF-16 in the table).
        name: String,
        /// Attribute bits.
        attributes: u64,
    },
}

/// A disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    /// MBR or GPT.
    pub scheme: Scheme,
    /// The partitions, by index.
    pub partitions: Vec<Partition>,
    /// GPT only: the primary header or entries were bad and the backup was used.
    pub used_backup: bool,
}

/// Why a partition table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionError {
    /// Reading the disk failed.
    Io(StorageError),
    /// The disk's block size is not one tables can live on.
    BlockSize(u32),
    /// An MBR/EBR signature is wrong.
    BadSignature {
        /// Where the bad sector is.
        lba: u64,
        /// What was expected there.
        what: &'static str,
    },
    /// A GPT header is invalid (both the primary and the backup when this is returned).
    BadGptHeader {
        /// Why the primary was refused.
        primary: &'static str,
        /// Why the backup was refused.
        backup: &'static str,
    },
    /// A partition has no blocks.
    ZeroSize {
        /// Its index.
        index: u32,
    },
    /// A partition reaches past the disk (or past the GPT usable area, or outside its
    /// extended partition).
    OutsideDisk {
        /// Its index.
        index: u32,
        /// Its first block.
        start: u64,
        /// Its length.
        blocks: u64,
        /// Blocks available.
        limit: u64,
    },
    /// Two partitions share blocks.
    Overlap {
        /// One index.
        a: u32,
        /// The other index.
        b: u32,
    },
    /// The extended partition chain is corrupt (a loop, or too many logical partitions).
    BadExtended(&'static str),
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionError::Io(e) => write!(f, "cannot read the partition table: {e}"),
            PartitionError::BlockSize(bs) => write!(f, "unsupported block size {bs}"),
            PartitionError::BadSignature { lba, what } => {
                write!(f, "bad {what} signature in block {lba}")
            }
            PartitionError::BadGptHeader { primary, backup } => {
                write!(
                    f,
                    "GPT unusable: primary header {primary}; backup header {backup}"
                )
            }
            PartitionError::ZeroSize { index } => write!(f, "partition {index} has zero size"),
            PartitionError::OutsideDisk {
                index,
                start,
                blocks,
                limit,
            } => write!(
                f,
                "partition {index} (blocks {start}..{}) lies outside the {limit} usable blocks",
                start.saturating_add(*blocks)
            ),
            PartitionError::Overlap { a, b } => write!(f, "partitions {a} and {b} overlap"),
            PartitionError::BadExtended(why) => write!(f, "extended partition chain: {why}"),
        }
    }
}

impl core::error::Error for PartitionError {}

impl From<StorageError> for PartitionError {
    fn from(e: StorageError) -> Self {
        PartitionError::Io(e)
    }
}

/// Read and check the partition table of `disk`. `Ok(None)`: the disk has no table (blank,
/// or a filesystem starting at block 0).
pub fn read_table(disk: &mut dyn BlockDevice) -> Result<Option<PartitionTable>, PartitionError> {
    let bs = disk.block_size();
    if !(512..=4096).contains(&bs) || !bs.is_power_of_two() {
        return Err(PartitionError::BlockSize(bs));
    }
    if disk.num_blocks() == 0 {
        return Ok(None);
    }
    let sector0 = read_block(disk, 0)?;
    match mbr::parse_mbr(&sector0) {
        mbr::Mbr::None => Ok(None),
        mbr::Mbr::Protective => gpt::read_gpt(disk).map(Some),
        mbr::Mbr::Entries(primaries) => mbr::read_mbr(disk, &primaries).map(Some),
    }
}

/// One block of `disk`.
fn read_block(disk: &mut dyn BlockDevice, lba: u64) -> Result<Vec<u8>, StorageError> {
    let mut buf = vec![0u8; disk.block_size() as usize];
    disk.read(lba, &mut buf)?;
    Ok(buf)
}

/// Check that partitions are non-empty, inside `first..=last` and disjoint.
fn check_layout(parts: &[Partition], first: u64, last: u64) -> Result<(), PartitionError> {
    for p in parts {
        if p.blocks == 0 {
            return Err(PartitionError::ZeroSize { index: p.index });
        }
        let inside =
            p.start >= first && p.start.checked_add(p.blocks - 1).is_some_and(|e| e <= last);
        if !inside {
            return Err(PartitionError::OutsideDisk {
                index: p.index,
                start: p.start,
                blocks: p.blocks,
                limit: last.saturating_add(1),
            });
        }
    }
    let mut sorted: Vec<&Partition> = parts.iter().collect();
    sorted.sort_unstable_by_key(|p| p.start);
    for pair in sorted.windows(2) {
        if pair[0].start + pair[0].blocks > pair[1].start {
            let (a, b) = (
                pair[0].index.min(pair[1].index),
                pair[0].index.max(pair[1].index),
            );
            return Err(PartitionError::Overlap { a, b });
        }
    }
    Ok(())
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

//! DOS/MBR partition tables: four primary slots, and logical partitions in a chain of
//! extended boot records (EBRs) inside an extended partition.

use alloc::vec::Vec;

use super::{
    Partition, PartitionError, PartitionKind, PartitionTable, Scheme, check_layout, le16, le32,
    read_block,
};
use crate::device::BlockDevice;

/// Offset of the first of the four 16-byte partition entries.
const TABLE: usize = 446;
/// Most logical partitions followed in one chain (Linux allows about as many).
const MAX_LOGICAL: u32 = 128;

/// One raw 16-byte entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    slot: u32,
    bootable: bool,
    type_id: u8,
    start: u32,
    blocks: u32,
}

/// What block 0 holds.
pub(super) enum Mbr {
    /// No partition table.
    None,
    /// A protective MBR: the real table is a GPT.
    Protective,
    /// The four primary entries (empty ones left out).
    Entries(Vec<Entry>),
}

fn entries(sector: &[u8]) -> Option<[Entry; 4]> {
    if sector.len() < 512 || sector[510] != 0x55 || sector[511] != 0xAA {
        return None;
    }
    let mut out = [Entry {
        slot: 0,
        bootable: false,
        type_id: 0,
        start: 0,
        blocks: 0,
    }; 4];
    for (slot, e) in out.iter_mut().enumerate() {
        let raw = &sector[TABLE + 16 * slot..TABLE + 16 * slot + 16];
        // Only 0x00 and 0x80 are boot flags; anything else means this is not a table
        // (a filesystem boot sector has code here).
        if raw[0] & 0x7F != 0 {
            return None;
        }
        *e = Entry {
            slot: slot as u32,
            bootable: raw[0] == 0x80,
            type_id: raw[4],
            start: le32(raw, 8),
            blocks: le32(raw, 12),
        };
    }
    Some(out)
}

fn is_extended(type_id: u8) -> bool {
    matches!(type_id, 0x05 | 0x0F | 0x85)
}

/// Classify block 0.
pub(super) fn parse_mbr(sector0: &[u8]) -> Mbr {
    let Some(all) = entries(sector0) else {
        return Mbr::None;
    };
    let used: Vec<Entry> = all.into_iter().filter(|e| e.type_id != 0).collect();
    if used.is_empty() {
        return Mbr::None;
    }
    if used.iter().any(|e| e.type_id == 0xEE) {
        return Mbr::Protective;
    }
    Mbr::Entries(used)
}

/// Build the table from the primary entries, following the extended chain.
pub(super) fn read_mbr(
    disk: &mut dyn BlockDevice,
    primaries: &[Entry],
) -> Result<PartitionTable, PartitionError> {
    let disk_blocks = disk.num_blocks();
    let mut parts = Vec::new();
    let mut containers = Vec::new();
    for e in primaries {
        let p = Partition {
            index: e.slot,
            start: u64::from(e.start),
            blocks: u64::from(e.blocks),
            kind: PartitionKind::Mbr {
                type_id: e.type_id,
                bootable: e.bootable,
                logical: false,
            },
        };
        if is_extended(e.type_id) {
            containers.push(p);
        } else {
            parts.push(p);
        }
    }
    if containers.len() > 1 {
        return Err(PartitionError::BadExtended(
            "more than one extended partition",
        ));
    }
    // Block 0 holds the table itself; every partition and container starts after it.
    let mut all: Vec<Partition> = parts.iter().chain(&containers).cloned().collect();
    check_layout(&all, 1, disk_blocks - 1)?;
    if let Some(ext) = containers.first() {
        let logicals = read_logicals(disk, ext)?;
        all.retain(|p| p.index != ext.index);
        all.extend(logicals.iter().cloned());
        check_layout(&all, 1, disk_blocks - 1)?;
        parts.extend(logicals);
    }
    parts.sort_unstable_by_key(|p| p.index);
    Ok(PartitionTable {
        scheme: Scheme::Mbr,
        partitions: parts,
        used_backup: false,
    })
}

/// Walk the EBR chain of extended partition `ext`.
fn read_logicals(
    disk: &mut dyn BlockDevice,
    ext: &Partition,
) -> Result<Vec<Partition>, PartitionError> {
    let mut out = Vec::new();
    let mut ebr_offset = 0u64; // relative to the extended partition's start
    let mut seen = Vec::new();
    loop {
        if ebr_offset >= ext.blocks {
            return Err(PartitionError::BadExtended(
                "a link points outside the extended partition",
            ));
        }
        if seen.contains(&ebr_offset) {
            return Err(PartitionError::BadExtended(
                "the chain of logical partitions loops",
            ));
        }
        seen.push(ebr_offset);
        let lba = ext.start + ebr_offset;
        let sector = read_block(disk, lba)?;
        if le16(&sector, 510) != 0xAA55 {
            return Err(PartitionError::BadSignature {
                lba,
                what: "extended boot record",
            });
        }
        let Some([logical, link, ..]) = entries(&sector) else {
            return Err(PartitionError::BadExtended(
                "an extended boot record has bad boot flags",
            ));
        };
        if logical.type_id != 0 {
            let index = 4 + out.len() as u32;
            if index - 4 >= MAX_LOGICAL {
                return Err(PartitionError::BadExtended("too many logical partitions"));
            }
            let start = lba + u64::from(logical.start);
            let p = Partition {
                index,
                start,
                blocks: u64::from(logical.blocks),
                kind: PartitionKind::Mbr {
                    type_id: logical.type_id,
                    bootable: logical.bootable,
                    logical: true,
                },
            };
            // Inside the extended partition and after this EBR.
            let limit = ext.start + ext.blocks - 1;
            check_layout(core::slice::from_ref(&p), lba + 1, limit)?;
            out.push(p);
        }
        if link.type_id == 0 || link.blocks == 0 {
            return Ok(out);
        }
        ebr_offset = u64::from(link.start);
    }
}

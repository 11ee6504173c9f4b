//! SCSI (SPC/SBC) for direct-access block devices: decoding command blocks, sense data, and
//! the fixed-format responses. Pure functions: the engine decides, this module encodes.

use alloc::vec;
use alloc::vec::Vec;

/// Operation codes.
pub mod op {
    #![allow(missing_docs, reason = "the names are the SCSI command names")]
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const READ_6: u8 = 0x08;
    pub const WRITE_6: u8 = 0x0A;
    pub const INQUIRY: u8 = 0x12;
    pub const MODE_SELECT_6: u8 = 0x15;
    pub const MODE_SENSE_6: u8 = 0x1A;
    pub const START_STOP_UNIT: u8 = 0x1B;
    pub const PREVENT_ALLOW: u8 = 0x1E;
    pub const READ_FORMAT_CAPACITIES: u8 = 0x23;
    pub const READ_CAPACITY_10: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const WRITE_10: u8 = 0x2A;
    pub const VERIFY_10: u8 = 0x2F;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const MODE_SELECT_10: u8 = 0x55;
    pub const MODE_SENSE_10: u8 = 0x5A;
    pub const READ_16: u8 = 0x88;
    pub const WRITE_16: u8 = 0x8A;
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    pub const REPORT_LUNS: u8 = 0xA0;
    pub const READ_12: u8 = 0xA8;
    pub const WRITE_12: u8 = 0xAA;
    /// SERVICE ACTION IN(16) service action: READ CAPACITY(16).
    pub const SA_READ_CAPACITY_16: u8 = 0x10;
}

/// A decoded command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// TEST UNIT READY.
    TestUnitReady,
    /// REQUEST SENSE.
    RequestSense {
        /// Descriptor-format sense wanted.
        desc: bool,
        /// Allocation length.
        alloc: u16,
    },
    /// INQUIRY.
    Inquiry {
        /// A VPD page is asked for.
        evpd: bool,
        /// The VPD page.
        page: u8,
        /// Allocation length.
        alloc: u16,
    },
    /// MODE SENSE (6) or (10).
    ModeSense {
        /// The 10-byte variant.
        ten: bool,
        /// Page control (0 current, 1 changeable, 2 default, 3 saved).
        pc: u8,
        /// Page code.
        page: u8,
        /// Subpage code.
        subpage: u8,
        /// Allocation length.
        alloc: u16,
    },
    /// MODE SELECT (6) or (10).
    ModeSelect {
        /// The 10-byte variant.
        ten: bool,
        /// Save pages.
        save: bool,
        /// Parameter list length.
        len: u16,
    },
    /// START STOP UNIT.
    StartStop {
        /// Load or eject.
        loej: bool,
        /// Start (load) rather than stop (eject).
        start: bool,
    },
    /// PREVENT ALLOW MEDIUM REMOVAL.
    PreventAllow {
        /// Prevent removal.
        prevent: bool,
    },
    /// READ FORMAT CAPACITIES.
    ReadFormatCapacities {
        /// Allocation length.
        alloc: u16,
    },
    /// READ CAPACITY (10).
    ReadCapacity10,
    /// READ CAPACITY (16).
    ReadCapacity16 {
        /// Allocation length.
        alloc: u32,
    },
    /// READ (6/10/12/16).
    Read {
        /// First block.
        lba: u64,
        /// Number of blocks.
        blocks: u32,
    },
    /// WRITE (6/10/12/16).
    Write {
        /// First block.
        lba: u64,
        /// Number of blocks.
        blocks: u32,
        /// Force unit access: the data is durable before the status.
        fua: bool,
    },
    /// VERIFY (10).
    Verify {
        /// First block.
        lba: u64,
        /// Number of blocks.
        blocks: u32,
        /// The host sends the data to compare (BYTCHK 1).
        compare: bool,
    },
    /// SYNCHRONIZE CACHE (10/16).
    SyncCache,
    /// REPORT LUNS.
    ReportLuns {
        /// Allocation length.
        alloc: u32,
    },
}

/// Why a command block cannot be run (turned into CHECK CONDITION or a phase error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// INVALID COMMAND OPERATION CODE.
    InvalidOpcode,
    /// INVALID FIELD IN CDB.
    InvalidField,
    /// The command block is shorter than the command (a phase error for BOT).
    TooShort,
}

/// The length of the command block an operation code needs, if we know the code.
pub fn cdb_len(opcode: u8) -> Option<usize> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from(be32(b, at)) << 32 | u64::from(be32(b, at + 4))
}

/// Decode a command block (`cb` holds at least the bytes the host sent).
pub fn decode(cb: &[u8]) -> Result<Command, DecodeError> {
    let Some(&opcode) = cb.first() else {
        return Err(DecodeError::TooShort);
    };
    let need = cdb_len(opcode).ok_or(DecodeError::InvalidOpcode)?;
    if cb.len() < need {
        // An unknown opcode is reported as such even when short.
        return match known(opcode) {
            true => Err(DecodeError::TooShort),
            false => Err(DecodeError::InvalidOpcode),
        };
    }
    use Command::*;
    let cmd = match opcode {
        op::TEST_UNIT_READY => TestUnitReady,
        op::REQUEST_SENSE => RequestSense {
            desc: cb[1] & 1 != 0,
            alloc: u16::from(cb[4]),
        },
        op::INQUIRY => {
            let evpd = cb[1] & 1 != 0;
            // CMDDT (obsolete) or a page code without EVPD are invalid.
            if cb[1] & 0x02 != 0 || (!evpd && cb[2] != 0) {
                return Err(DecodeError::InvalidField);
            }
            Inquiry {
                evpd,
                page: cb[2],
                alloc: be16(cb, 3),
            }
        }
        op::MODE_SENSE_6 | op::MODE_SENSE_10 => ModeSense {
            ten: opcode == op::MODE_SENSE_10,
            pc: cb[2] >> 6,
            page: cb[2] & 0x3F,
            subpage: cb[3],
            alloc: if opcode == op::MODE_SENSE_10 {
                be16(cb, 7)
            } else {
                u16::from(cb[4])
            },
        },
        op::MODE_SELECT_6 | op::MODE_SELECT_10 => ModeSelect {
            ten: opcode == op::MODE_SELECT_10,
            save: cb[1] & 1 != 0,
            len: if opcode == op::MODE_SELECT_10 {
                be16(cb, 7)
            } else {
                u16::from(cb[4])
            },
        },
        op::START_STOP_UNIT => {
            // Power conditions other than START_VALID (0) are not supported.
            if cb[4] & 0xF0 != 0 {
                return Err(DecodeError::InvalidField);
            }
            StartStop {
                loej: cb[4] & 2 != 0,
                start: cb[4] & 1 != 0,
            }
        }
        op::PREVENT_ALLOW => {
            if cb[4] & 0x02 != 0 {
                return Err(DecodeError::InvalidField); // medium changer prevention
            }
            PreventAllow {
                prevent: cb[4] & 1 != 0,
            }
        }
        op::READ_FORMAT_CAPACITIES => ReadFormatCapacities { alloc: be16(cb, 7) },
        op::READ_CAPACITY_10 => {
            // PMI (obsolete) with a nonzero LBA is not supported.
            if cb[8] & 1 == 0 && be32(cb, 2) != 0 {
                return Err(DecodeError::InvalidField);
            }
            ReadCapacity10
        }
        op::SERVICE_ACTION_IN_16 => match cb[1] & 0x1F {
            op::SA_READ_CAPACITY_16 => ReadCapacity16 {
                alloc: be32(cb, 10),
            },
            _ => return Err(DecodeError::InvalidField),
        },
        op::READ_6 | op::WRITE_6 => {
            let lba = u64::from(be32(cb, 0) & 0x001F_FFFF);
            // A transfer length of 0 means 256 blocks in the 6-byte commands.
            let blocks = match cb[4] {
                0 => 256,
                n => u32::from(n),
            };
            if opcode == op::READ_6 {
                Read { lba, blocks }
            } else {
                Write {
                    lba,
                    blocks,
                    fua: false,
                }
            }
        }
        op::READ_10 | op::READ_12 | op::READ_16 | op::WRITE_10 | op::WRITE_12 | op::WRITE_16 => {
            // RDPROTECT/WRPROTECT: no protection information here.
            if cb[1] & 0xE0 != 0 {
                return Err(DecodeError::InvalidField);
            }
            let (lba, blocks) = match opcode {
                op::READ_10 | op::WRITE_10 => (u64::from(be32(cb, 2)), u32::from(be16(cb, 7))),
                op::READ_12 | op::WRITE_12 => (u64::from(be32(cb, 2)), be32(cb, 6)),
                _ => (be64(cb, 2), be32(cb, 10)),
            };
            let fua = cb[1] & 0x08 != 0;
            match opcode {
                op::READ_10 | op::READ_12 | op::READ_16 => Read { lba, blocks },
                _ => Write { lba, blocks, fua },
            }
        }
        op::VERIFY_10 => {
            let bytchk = (cb[1] >> 1) & 3;
            if cb[1] & 0xE0 != 0 || bytchk > 1 {
                return Err(DecodeError::InvalidField);
            }
            Verify {
                lba: u64::from(be32(cb, 2)),
                blocks: u32::from(be16(cb, 7)),
                compare: bytchk == 1,
            }
        }
        op::SYNCHRONIZE_CACHE_10 | op::SYNCHRONIZE_CACHE_16 => SyncCache,
        op::REPORT_LUNS => ReportLuns { alloc: be32(cb, 6) },
        _ => return Err(DecodeError::InvalidOpcode),
    };
    Ok(cmd)
}

fn known(opcode: u8) -> bool {
    matches!(
        opcode,
        op::TEST_UNIT_READY
            | op::REQUEST_SENSE
            | op::READ_6
            | op::WRITE_6
            | op::INQUIRY
            | op::MODE_SELECT_6
            | op::MODE_SENSE_6
            | op::START_STOP_UNIT
            | op::PREVENT_ALLOW
            | op::READ_FORMAT_CAPACITIES
            | op::READ_CAPACITY_10
            | op::READ_10
            | op::WRITE_10
            | op::VERIFY_10
            | op::SYNCHRONIZE_CACHE_10
            | op::MODE_SELECT_10
            | op::MODE_SENSE_10
            | op::READ_16
            | op::WRITE_16
            | op::SYNCHRONIZE_CACHE_16
            | op::SERVICE_ACTION_IN_16
            | op::REPORT_LUNS
            | op::READ_12
            | op::WRITE_12
    )
}

/// Sense data: key, additional sense code and qualifier, and the information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// The information field (the failing LBA of a medium error).
    pub info: Option<u64>,
}

/// Sense keys and codes lunbox reports.
pub mod sense {
    use super::Sense;

    const fn s(key: u8, asc: u8, ascq: u8) -> Sense {
        Sense {
            key,
            asc,
            ascq,
            info: None,
        }
    }
    /// NO SENSE.
    pub const NONE: Sense = s(0x0, 0x00, 0x00);
    /// NOT READY: MEDIUM NOT PRESENT.
    pub const MEDIUM_NOT_PRESENT: Sense = s(0x2, 0x3A, 0x00);
    /// MEDIUM ERROR: UNRECOVERED READ ERROR.
    pub const READ_ERROR: Sense = s(0x3, 0x11, 0x00);
    /// MEDIUM ERROR: WRITE ERROR.
    pub const WRITE_ERROR: Sense = s(0x3, 0x0C, 0x00);
    /// ILLEGAL REQUEST: PARAMETER LIST LENGTH ERROR.
    pub const PARAMETER_LIST_LENGTH: Sense = s(0x5, 0x1A, 0x00);
    /// ILLEGAL REQUEST: INVALID COMMAND OPERATION CODE.
    pub const INVALID_OPCODE: Sense = s(0x5, 0x20, 0x00);
    /// ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE.
    pub const LBA_OUT_OF_RANGE: Sense = s(0x5, 0x21, 0x00);
    /// ILLEGAL REQUEST: INVALID FIELD IN CDB.
    pub const INVALID_FIELD_IN_CDB: Sense = s(0x5, 0x24, 0x00);
    /// ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED.
    pub const LUN_NOT_SUPPORTED: Sense = s(0x5, 0x25, 0x00);
    /// ILLEGAL REQUEST: INVALID FIELD IN PARAMETER LIST.
    pub const INVALID_FIELD_IN_PARAMETERS: Sense = s(0x5, 0x26, 0x00);
    /// ILLEGAL REQUEST: SAVING PARAMETERS NOT SUPPORTED.
    pub const SAVING_NOT_SUPPORTED: Sense = s(0x5, 0x39, 0x00);
    /// ILLEGAL REQUEST: MEDIUM REMOVAL PREVENTED.
    pub const REMOVAL_PREVENTED: Sense = s(0x5, 0x53, 0x02);
    /// UNIT ATTENTION: NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
    pub const MEDIUM_CHANGED: Sense = s(0x6, 0x28, 0x00);
    /// UNIT ATTENTION: POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
    pub const POWER_ON_RESET: Sense = s(0x6, 0x29, 0x00);
    /// DATA PROTECT: WRITE PROTECTED.
    pub const WRITE_PROTECTED: Sense = s(0x7, 0x27, 0x00);
    /// MISCOMPARE: MISCOMPARE DURING VERIFY OPERATION.
    pub const MISCOMPARE: Sense = s(0xE, 0x1D, 0x00);
}

impl Sense {
    /// The same sense with the information field set.
    pub fn at(self, lba: u64) -> Sense {
        Sense {
            info: Some(lba),
            ..self
        }
    }

    /// Fixed-format (70h) sense data, 18 bytes.
    pub fn fixed(&self) -> [u8; 18] {
        let mut b = [0u8; 18];
        b[0] = 0x70;
        if let Some(info) = self.info.and_then(|i| u32::try_from(i).ok()) {
            b[0] |= 0x80; // VALID: the information field holds it
            b[3..7].copy_from_slice(&info.to_be_bytes());
        }
        b[2] = self.key;
        b[7] = 10;
        b[12] = self.asc;
        b[13] = self.ascq;
        b
    }

    /// Descriptor-format (72h) sense data, with an information descriptor when set.
    pub fn descriptor(&self) -> Vec<u8> {
        let mut b = vec![0x72, self.key, self.asc, self.ascq, 0, 0, 0, 0];
        if let Some(info) = self.info {
            b.extend_from_slice(&[0x00, 0x0A, 0x80, 0x00]);
            b.extend_from_slice(&info.to_be_bytes());
            b[7] = 12;
        }
        b
    }
}

/// Identity strings of a LUN for INQUIRY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// T10 vendor identification (8 characters, space padded).
    pub vendor: [u8; 8],
    /// Product identification (16).
    pub product: [u8; 16],
    /// Product revision level (4).
    pub revision: [u8; 4],
    /// Unit serial number (printable ASCII).
    pub serial: Vec<u8>,
}

/// Copy `text` into a space-padded ASCII field (non-printable characters become `_`).
pub fn ascii_field<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (o, c) in out.iter_mut().zip(text.bytes()) {
        *o = if (0x20..0x7F).contains(&c) { c } else { b'_' };
    }
    out
}

/// Standard INQUIRY data (36 bytes).
pub fn inquiry(id: &Identity, removable: bool, present: bool) -> Vec<u8> {
    let mut b = vec![0u8; 36];
    // Peripheral qualifier 011b + type 1Fh: no logical unit here.
    b[0] = if present { 0x00 } else { 0x7F };
    b[1] = if removable { 0x80 } else { 0 };
    b[2] = 0x06; // SPC-4
    b[3] = 0x02; // response data format 2
    b[4] = 31; // additional length
    b[8..16].copy_from_slice(&id.vendor);
    b[16..32].copy_from_slice(&id.product);
    b[32..36].copy_from_slice(&id.revision);
    b
}

/// A vital product data page, or `None` for an unsupported page.
pub fn vpd(id: &Identity, page: u8) -> Option<Vec<u8>> {
    let mut b = vec![0x00, page, 0, 0];
    match page {
        0x00 => b.extend_from_slice(&[0x00, 0x80, 0x83]),
        0x80 => b.extend_from_slice(&id.serial),
        0x83 => {
            // One designator: T10 vendor ID based (vendor + product + serial), ASCII.
            let mut d = Vec::new();
            d.extend_from_slice(&id.vendor);
            d.extend_from_slice(&id.product);
            d.extend_from_slice(&id.serial);
            b.extend_from_slice(&[0x02, 0x01, 0x00, d.len() as u8]);
            b.extend_from_slice(&d);
        }
        _ => return None,
    }
    let len = (b.len() - 4) as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    Some(b)
}

/// READ CAPACITY (10) data: last LBA (saturated to FFFFFFFFh, "use READ CAPACITY (16)")
/// and block length.
pub fn read_capacity_10(blocks: u64, block_size: u32) -> Vec<u8> {
    let last = blocks.saturating_sub(1);
    let last = u32::try_from(last).unwrap_or(u32::MAX);
    let mut b = last.to_be_bytes().to_vec();
    b.extend_from_slice(&block_size.to_be_bytes());
    b
}

/// READ CAPACITY (16) parameter data (32 bytes).
pub fn read_capacity_16(blocks: u64, block_size: u32) -> Vec<u8> {
    let mut b = vec![0u8; 32];
    b[0..8].copy_from_slice(&blocks.saturating_sub(1).to_be_bytes());
    b[8..12].copy_from_slice(&block_size.to_be_bytes());
    b
}

/// READ FORMAT CAPACITIES data: the current (or, without a medium, maximum) capacity.
pub fn read_format_capacities(blocks: u64, block_size: u32, present: bool) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 8];
    b.extend_from_slice(&u32::try_from(blocks).unwrap_or(u32::MAX).to_be_bytes());
    // Descriptor type: 2 formatted media, 3 no media present.
    let kind: u32 = if present { 2 } else { 3 };
    b.extend_from_slice(&(kind << 24 | (block_size & 0x00FF_FFFF)).to_be_bytes());
    b
}

/// The caching mode page (08h): write cache enabled when the backend may hold writes back.
pub fn caching_page(write_cache: bool) -> [u8; 20] {
    let mut p = [0u8; 20];
    p[0] = 0x08;
    p[1] = 18;
    p[2] = if write_cache { 0x04 } else { 0 };
    p
}

/// MODE SENSE data for `page` (08h caching, 3Fh all), or `None` for an unsupported page.
/// `changeable` (page control 1) reports no changeable bits.
pub fn mode_sense(
    ten: bool,
    page: u8,
    subpage: u8,
    write_protected: bool,
    write_cache: bool,
    changeable: bool,
) -> Option<Vec<u8>> {
    if subpage != 0 && subpage != 0xFF {
        return None;
    }
    let mut pages = Vec::new();
    match page {
        0x08 | 0x3F => {
            let mut p = caching_page(write_cache);
            if changeable {
                p[2..].fill(0);
            }
            pages.extend_from_slice(&p);
        }
        _ => return None,
    }
    // Device-specific parameter: WP, and DPOFUA (FUA on WRITE is honoured).
    let wp = if write_protected { 0x80 } else { 0 } | 0x10;
    let mut b = if ten {
        let len = (6 + pages.len()) as u16;
        let mut h = len.to_be_bytes().to_vec();
        h.extend_from_slice(&[0, wp, 0, 0, 0, 0]);
        h
    } else {
        vec![(3 + pages.len()) as u8, 0, wp, 0]
    };
    b.extend_from_slice(&pages);
    Some(b)
}

/// Check a MODE SELECT parameter list: a header without block descriptors beyond one, then
/// whole pages. Returns the sense to report if it is malformed. Nothing is changeable, so a
/// well-formed list is accepted and changes nothing.
pub fn check_mode_select(ten: bool, data: &[u8]) -> Result<(), Sense> {
    let header = if ten { 8 } else { 4 };
    if data.is_empty() {
        return Ok(());
    }
    if data.len() < header {
        return Err(sense::PARAMETER_LIST_LENGTH);
    }
    let bd_len = if ten {
        usize::from(be16(data, 6))
    } else {
        usize::from(data[3])
    };
    if bd_len != 0 && bd_len != 8 {
        return Err(sense::INVALID_FIELD_IN_PARAMETERS);
    }
    let mut at = header + bd_len;
    if at > data.len() {
        return Err(sense::PARAMETER_LIST_LENGTH);
    }
    while at < data.len() {
        if data.len() - at < 2 {
            return Err(sense::PARAMETER_LIST_LENGTH);
        }
        let spf = data[at] & 0x40 != 0;
        let (hdr, len) = if spf {
            if data.len() - at < 4 {
                return Err(sense::PARAMETER_LIST_LENGTH);
            }
            (4, usize::from(be16(data, at + 2)))
        } else {
            (2, usize::from(data[at + 1]))
        };
        let page = data[at] & 0x3F;
        if page != 0x08 && page != 0x1C && page != 0x01 && page != 0x0A {
            return Err(sense::INVALID_FIELD_IN_PARAMETERS);
        }
        at += hdr + len;
        if at > data.len() {
            return Err(sense::PARAMETER_LIST_LENGTH);
        }
    }
    Ok(())
}

/// REPORT LUNS data for LUNs `0..count`.
pub fn report_luns(present: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    let mut n = 0u32;
    for lun in present {
        let mut e = [0u8; 8];
        e[1] = lun;
        b.extend_from_slice(&e);
        n += 8;
    }
    b[0..4].copy_from_slice(&n.to_be_bytes());
    b
}

//! The state record and where it is kept: a log in the two state sectors.
//!
//! # The record (32 bytes, little-endian)
//!
//! | bytes | field |
//! |------:|-------|
//! | 0–3   | magic `LBXU` (4C 42 58 55) |
//! | 4–5   | format version, 1 |
//! | 6     | state: 1 confirmed, 2 test pending, 3 swapping (test), 4 on trial, 5 reverting |
//! | 7     | phase of the sector being swapped: 0 start, 1 scratch, 2 primary (0 unless swapping or reverting) |
//! | 8–11  | sequence number |
//! | 12–15 | index of the sector being swapped (0 unless swapping or reverting) |
//! | 16–19 | sectors the image in the primary slot occupies |
//! | 20–23 | sectors the image in the secondary slot occupies |
//! | 24–27 | reserved, 0 |
//! | 28–31 | CRC-32 (IEEE) of bytes 0–27 |
//!
//! A swap covers the first `max(primary, secondary)` sectors of the slots (the sectors
//! either image occupies), and exchanges the two counts when it completes. A board whose
//! state was never written counts the whole slot for the primary image.
//!
//! # The log
//!
//! Each state sector is an array of *record slots* of `max(32, WRITE_SIZE, READ_SIZE)` bytes
//! (128 of them in a 4 KiB sector with byte-programmable flash). A record is appended to the
//! first blank (all-`0xff`) slot after the newest record, in the sector that holds it; when
//! that sector is full, the *other* sector is erased and the record goes to its first slot.
//! The sector holding the newest valid record is never erased. Reading takes the valid record
//! with the newest sequence number over both sectors (serial-number arithmetic, as
//! `lunbox-config`'s store: `a` is newer than `b` when `a - b` mod 2³² is below 2³¹); a
//! record write torn by a power cut fails its CRC and leaves the previous record in force,
//! and the next write goes to the slot after it.
//!
//! This is the two-copy scheme of `lunbox-config`'s store, appended instead of rewritten: a
//! full swap of the Teensy's 256-sector slots writes 768 records, which would cost 768 sector
//! erases (384 per state sector) if every record erased a sector; appending costs 6.

use core::fmt;

use embedded_storage::nor_flash::NorFlash;

use crate::layout::{CHUNK, Layout};
use crate::swap::Error;

/// The first four bytes of a record.
pub const MAGIC: [u8; 4] = *b"LBXU";

/// The record format this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Bytes of an encoded record.
pub const RECORD_LEN: usize = 32;

/// Where a swap is in the sector it is swapping. Each phase names what is complete; the next
/// step's source is intact, so a step cut short by a power loss is simply done again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing of this sector is done: next, the primary sector is copied to scratch.
    Start,
    /// Scratch holds the primary sector: next, the secondary sector is copied to the primary.
    Scratch,
    /// The primary sector holds the secondary's, scratch the primary's: next, scratch is
    /// copied to the secondary sector.
    Primary,
}

/// What the slots hold and what the next boot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Idle: the primary slot holds the confirmed image; boots run it.
    Confirmed,
    /// The secondary slot holds a verified new image: the next boot swaps it in and runs it
    /// on trial.
    TestPending,
    /// The boot stage is swapping the new image in (a power cut stopped it if this is read
    /// at boot).
    Swapping {
        /// The sector being swapped.
        index: u32,
        /// How far its swap is.
        phase: Phase,
    },
    /// The primary slot holds the new image, the secondary the previous one: the new image
    /// runs and must confirm itself; a boot in this state swaps the previous image back.
    OnTrial,
    /// The boot stage is swapping the previous image back (the new one never confirmed).
    Reverting {
        /// The sector being swapped.
        index: u32,
        /// How far its swap is.
        phase: Phase,
    },
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Confirmed => f.write_str("confirmed"),
            State::TestPending => f.write_str("test pending"),
            State::Swapping { index, phase } => write!(f, "swapping sector {index} ({phase:?})"),
            State::OnTrial => f.write_str("on trial"),
            State::Reverting { index, phase } => {
                write!(f, "reverting sector {index} ({phase:?})")
            }
        }
    }
}

/// A decoded state record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    /// Its sequence number: one more than the record before it.
    pub sequence: u32,
    /// The state.
    pub state: State,
    /// Sectors the image in the primary slot occupies (before the swap, while swapping).
    pub primary_sectors: u32,
    /// Sectors the image in the secondary slot occupies (before the swap, while swapping).
    pub secondary_sectors: u32,
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than [`RECORD_LEN`] bytes.
    Short,
    /// All `0xff`: erased flash, never written.
    Blank,
    /// Does not start with [`MAGIC`].
    Magic,
    /// A format version this crate does not read.
    Version(u16),
    /// The CRC does not match: a torn write or corruption.
    Crc {
        /// The CRC in the record.
        stored: u32,
        /// The CRC of its bytes.
        computed: u32,
    },
    /// The CRC matches but a field has a value no writer produces (state, phase, index or
    /// reserved bytes).
    Field,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short => f.write_str("shorter than a record"),
            DecodeError::Blank => f.write_str("blank"),
            DecodeError::Magic => f.write_str("no state record (bad magic)"),
            DecodeError::Version(v) => write!(f, "record format {v}, this firmware reads 1"),
            DecodeError::Crc { stored, computed } => {
                write!(f, "CRC {stored:#010x}, computed {computed:#010x}")
            }
            DecodeError::Field => f.write_str("a field has an impossible value"),
        }
    }
}

/// CRC-32 (IEEE 802.3, the one of zip and PNG) of `data`, bitwise: small, and fast enough
/// for 28-byte records.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Whether sequence number `a` is newer than `b` (serial-number arithmetic).
pub fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

fn phase_byte(phase: Phase) -> u8 {
    match phase {
        Phase::Start => 0,
        Phase::Scratch => 1,
        Phase::Primary => 2,
    }
}

impl Record {
    /// The sectors a swap covers: those either image occupies.
    pub fn swap_sectors(&self) -> u32 {
        self.primary_sectors.max(self.secondary_sectors)
    }

    /// Whether the record fits `layout`: both images within a slot, and a swap's sector
    /// within the sectors it covers.
    pub fn fits(&self, layout: &Layout) -> bool {
        let slot = layout.slot_sectors();
        let counts = (1..=slot).contains(&self.primary_sectors)
            && (1..=slot).contains(&self.secondary_sectors);
        match self.state {
            State::Swapping { index, .. } | State::Reverting { index, .. } => {
                counts && index < self.swap_sectors()
            }
            _ => counts,
        }
    }

    /// The record's bytes.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let (state, phase, index) = match self.state {
            State::Confirmed => (1, 0, 0),
            State::TestPending => (2, 0, 0),
            State::Swapping { index, phase } => (3, phase_byte(phase), index),
            State::OnTrial => (4, 0, 0),
            State::Reverting { index, phase } => (5, phase_byte(phase), index),
        };
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[6] = state;
        b[7] = phase;
        b[8..12].copy_from_slice(&self.sequence.to_le_bytes());
        b[12..16].copy_from_slice(&index.to_le_bytes());
        b[16..20].copy_from_slice(&self.primary_sectors.to_le_bytes());
        b[20..24].copy_from_slice(&self.secondary_sectors.to_le_bytes());
        let crc = crc32(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The record in the first [`RECORD_LEN`] bytes of `bytes` (later bytes are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let b = bytes.get(..RECORD_LEN).ok_or(DecodeError::Short)?;
        if b.iter().all(|&x| x == 0xff) {
            return Err(DecodeError::Blank);
        }
        if b[0..4] != MAGIC {
            return Err(DecodeError::Magic);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let (stored, computed) = (u32_at(28), crc32(&b[..28]));
        if stored != computed {
            return Err(DecodeError::Crc { stored, computed });
        }
        let index = u32_at(12);
        let phase = match b[7] {
            0 => Phase::Start,
            1 => Phase::Scratch,
            2 => Phase::Primary,
            _ => return Err(DecodeError::Field),
        };
        let idle = index == 0 && phase == Phase::Start;
        let state = match b[6] {
            1 if idle => State::Confirmed,
            2 if idle => State::TestPending,
            3 => State::Swapping { index, phase },
            4 if idle => State::OnTrial,
            5 => State::Reverting { index, phase },
            _ => return Err(DecodeError::Field),
        };
        if u32_at(24) != 0 {
            return Err(DecodeError::Field);
        }
        Ok(Record {
            sequence: u32_at(8),
            state,
            primary_sectors: u32_at(16),
            secondary_sectors: u32_at(20),
        })
    }
}

/// What the state sectors hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// No record and nothing else: both sectors erased (a freshly flashed board). The primary
    /// slot runs as it is, and counts as confirmed.
    Blank,
    /// No valid record, but not blank either: corruption. The primary slot runs as it is.
    Damaged,
    /// The newest valid record, which fits the layout.
    Valid(Record),
    /// The newest valid record, which does not fit the layout (written for another layout):
    /// treated like [`Stored::Damaged`].
    Mismatch(Record),
}

impl Stored {
    /// Whether the application may erase and write the secondary slot now (for a download):
    /// only when it holds nothing that is still needed, i.e. no test is pending (cancel it
    /// first, [`cancel_test`](crate::cancel_test)) and no trial is running (the secondary
    /// holds the fallback: confirm first).
    pub fn secondary_writable(&self) -> bool {
        match self {
            Stored::Blank | Stored::Damaged | Stored::Mismatch(_) => true,
            Stored::Valid(r) => r.state == State::Confirmed,
        }
    }
}

/// The largest record slot: [`CHUNK`] bytes (a flash's write and read sizes divide it).
const MAX_SLOT: usize = CHUNK as usize;

/// Bytes of a record slot for flash `F`.
fn slot_len<F: NorFlash>() -> usize {
    RECORD_LEN.max(F::WRITE_SIZE).max(F::READ_SIZE)
}

/// The newest valid record and where it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Newest {
    /// The record.
    pub(crate) record: Record,
    /// The state sector (0 or 1) that holds it.
    sector: usize,
    /// Its record slot in that sector.
    slot: u32,
}

/// The result of reading the state sectors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Log {
    /// The newest valid record.
    pub(crate) newest: Option<Newest>,
    /// Whether some record slot is neither blank nor a valid record.
    damaged: bool,
}

impl Log {
    /// What the log holds, for `layout`.
    pub(crate) fn stored(&self, layout: &Layout) -> Stored {
        match self.newest {
            Some(n) if n.record.fits(layout) => Stored::Valid(n.record),
            Some(n) => Stored::Mismatch(n.record),
            None if self.damaged => Stored::Damaged,
            None => Stored::Blank,
        }
    }
}

/// Reads record slot `slot` of state sector `sector` into `buf`, returning its bytes.
fn read_slot<'b, F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    sector: usize,
    slot: u32,
    buf: &'b mut [u8; MAX_SLOT],
) -> Result<&'b [u8], Error<F::Error>> {
    let len = slot_len::<F>();
    let offset = layout.state[sector] + slot * len as u32;
    flash.read(offset, &mut buf[..len]).map_err(Error::Flash)?;
    Ok(&buf[..len])
}

/// Reads both state sectors.
pub(crate) fn scan<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<Log, Error<F::Error>> {
    let slots = layout.sector_size / slot_len::<F>() as u32;
    let mut log = Log {
        newest: None,
        damaged: false,
    };
    let mut buf = [0u8; MAX_SLOT];
    for sector in 0..2 {
        for slot in 0..slots {
            let bytes = read_slot(flash, layout, sector, slot, &mut buf)?;
            match Record::decode(bytes) {
                Ok(record) => {
                    let newer = log
                        .newest
                        .is_none_or(|n| is_newer(record.sequence, n.record.sequence));
                    if newer {
                        log.newest = Some(Newest {
                            record,
                            sector,
                            slot,
                        });
                    }
                }
                Err(DecodeError::Blank) if bytes.iter().all(|&x| x == 0xff) => {}
                Err(_) => log.damaged = true,
            }
        }
    }
    Ok(log)
}

/// Appends a record with `state` and the sector counts to the log, with the next sequence
/// number, reads it back, and returns the log with it as the newest.
pub(crate) fn append<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    log: &Log,
    state: State,
    primary_sectors: u32,
    secondary_sectors: u32,
) -> Result<Log, Error<F::Error>> {
    let len = slot_len::<F>();
    let slots = layout.sector_size / len as u32;
    let mut buf = [0u8; MAX_SLOT];
    // The first blank slot after the newest record, in its sector.
    let mut place = None;
    if let Some(n) = log.newest {
        for slot in n.slot + 1..slots {
            if read_slot(flash, layout, n.sector, slot, &mut buf)?
                .iter()
                .all(|&x| x == 0xff)
            {
                place = Some((n.sector, slot));
                break;
            }
        }
    }
    let (sector, slot) = match place {
        Some(place) => place,
        None => {
            // Start the other sector (sector 0 when there is no record): erase it first.
            let sector = log.newest.map_or(0, |n| 1 - n.sector);
            let from = layout.state[sector];
            flash
                .erase(from, from + layout.sector_size)
                .map_err(Error::Flash)?;
            (sector, 0)
        }
    };
    let record = Record {
        sequence: log.newest.map_or(0, |n| n.record.sequence.wrapping_add(1)),
        state,
        primary_sectors,
        secondary_sectors,
    };
    let mut out = [0xffu8; MAX_SLOT];
    out[..RECORD_LEN].copy_from_slice(&record.encode());
    let offset = layout.state[sector] + slot * len as u32;
    let write_len = RECORD_LEN.max(F::WRITE_SIZE);
    flash
        .write(offset, &out[..write_len])
        .map_err(Error::Flash)?;
    let back = read_slot(flash, layout, sector, slot, &mut buf)?;
    if Record::decode(back) != Ok(record) {
        return Err(Error::Readback { offset });
    }
    Ok(Log {
        newest: Some(Newest {
            record,
            sector,
            slot,
        }),
        damaged: log.damaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip() {
        let states = [
            State::Confirmed,
            State::TestPending,
            State::Swapping {
                index: 7,
                phase: Phase::Scratch,
            },
            State::OnTrial,
            State::Reverting {
                index: 255,
                phase: Phase::Primary,
            },
            State::Swapping {
                index: 0,
                phase: Phase::Start,
            },
        ];
        for (i, state) in states.into_iter().enumerate() {
            let r = Record {
                sequence: u32::MAX - i as u32,
                state,
                primary_sectors: 3,
                secondary_sectors: 256,
            };
            let b = r.encode();
            assert_eq!(&b[0..4], b"LBXU");
            assert_eq!(Record::decode(&b), Ok(r));
            for bit in 0..RECORD_LEN * 8 {
                let mut c = b;
                c[bit / 8] ^= 1 << (bit % 8);
                assert!(Record::decode(&c).is_err(), "bit {bit} of {state:?}");
            }
        }
    }

    #[test]
    fn decode_errors() {
        let r = Record {
            sequence: 1,
            state: State::OnTrial,
            primary_sectors: 1,
            secondary_sectors: 1,
        };
        let b = r.encode();
        assert_eq!(Record::decode(&b[..31]), Err(DecodeError::Short));
        assert_eq!(Record::decode(&[0xff; 32]), Err(DecodeError::Blank));
        assert_eq!(Record::decode(&[0; 32]), Err(DecodeError::Magic));
        let mut v = b;
        v[4] = 2;
        assert_eq!(Record::decode(&v), Err(DecodeError::Version(2)));
        let mut torn = b;
        torn[20..].fill(0xff);
        assert!(matches!(
            Record::decode(&torn),
            Err(DecodeError::Crc { .. })
        ));
        // A valid CRC over impossible fields: an on-trial record with a phase.
        let mut f = b;
        f[7] = 1;
        let crc = crc32(&f[..28]);
        f[28..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::decode(&f), Err(DecodeError::Field));
    }

    #[test]
    fn sequence_wraps() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(u32::MAX, 0));
        assert!(!is_newer(5, 5));
    }
}

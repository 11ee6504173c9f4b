//! Atomic persistence in two slots.
//!
//! A [`Store`] has two slots (0 and 1), each holding one *record*: a 20-byte header and the
//! configuration's canonical text. All numbers are little-endian.
//!
//! | bytes | field |
//! |-------|-------|
//! | 0–3   | magic `LBXC` |
//! | 4–5   | format version, 1 |
//! | 6–7   | reserved, written as 0 |
//! | 8–11  | sequence number |
//! | 12–15 | payload length in bytes |
//! | 16–19 | CRC-32 (IEEE) of bytes 0–15 followed by the payload |
//! | 20–   | payload: the text, UTF-8 |
//!
//! Bytes after the payload are ignored (a flash sector is read whole). A slot is *valid* when
//! its magic, version, length and CRC check out; empty, all-`0xff` (erased flash) and
//! all-zero slots are *blank*; anything else is *damaged*.
//!
//! [`save`] writes the slot that does **not** hold the newest valid record (slot 0 when
//! neither is valid), with the newest sequence number plus one, then reads it back.
//! [`load`] takes the valid record with the newest sequence number. Sequence numbers compare
//! with wrap-around (serial-number arithmetic: `a` is newer than `b` when `a - b`, modulo
//! 2³², is below 2³¹), so `0` follows `0xffff_ffff`. A write torn by a reset or power loss
//! leaves a damaged slot, and the other slot, untouched, keeps the previous configuration in
//! force; the next save rewrites the damaged slot.
//!
//! Stores: [`MemStore`] (RAM, with torn writes for tests) and, with the `std` feature,
//! `FileStore` (the sandbox: `config.0` and `config.1` in the state directory). The board
//! keeps its slots in two flash sectors or two files on the SD card.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::model::Config;
use crate::text::{ParseError, parse, parse_bytes};
use crate::validate::{ValidationError, validate};

/// How many slots a store has.
pub const SLOTS: usize = 2;

/// The first four bytes of a record.
pub const MAGIC: [u8; 4] = *b"LBXC";

/// The record format this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Bytes of a record's header.
pub const HEADER_LEN: usize = 20;

/// Storage with two slots for configuration records.
pub trait Store {
    /// What goes wrong when reading or writing.
    type Error: fmt::Debug + fmt::Display;

    /// How many bytes one slot holds.
    fn capacity(&self) -> usize;

    /// The contents of slot `slot` (0 or 1): what was last written to it, possibly followed
    /// by more bytes; empty if it was never written.
    fn read_slot(&mut self, slot: usize) -> Result<Vec<u8>, Self::Error>;

    /// Replaces the contents of slot `slot` (0 or 1) with `data` (at most
    /// [`capacity`](Store::capacity) bytes), durably before returning.
    fn write_slot(&mut self, slot: usize, data: &[u8]) -> Result<(), Self::Error>;
}

/// The header and payload of a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its sequence number.
    pub sequence: u32,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Why a slot holds no valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotFault {
    /// Never written or erased: empty, all `0xff` or all zero.
    Blank,
    /// Shorter than a header.
    Short {
        /// Its length.
        len: usize,
    },
    /// Does not start with [`MAGIC`].
    Magic,
    /// A format version this crate does not read.
    Version(u16),
    /// The payload length goes past the end of the slot.
    Length {
        /// The header's payload length.
        length: u32,
        /// Bytes after the header.
        available: usize,
    },
    /// The CRC does not match: a torn write or corruption.
    Crc {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the header and payload.
        computed: u32,
    },
}

impl fmt::Display for SlotFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotFault::Blank => f.write_str("blank"),
            SlotFault::Short { len } => write!(f, "{len} bytes, shorter than a header"),
            SlotFault::Magic => f.write_str("no configuration record (bad magic)"),
            SlotFault::Version(v) => write!(f, "record format {v}, this firmware reads 1"),
            SlotFault::Length { length, available } => write!(
                f,
                "payload length {length} but only {available} bytes follow the header"
            ),
            SlotFault::Crc { stored, computed } => write!(
                f,
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): torn write or \
                 corruption"
            ),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib) of `header` then `payload`. Bit by bit: records
/// are a few hundred bytes, read at boot and written by `config save`, and a table (or
/// crc32fast's 16 KiB one) would cost the firmware more flash than it saves time.
fn crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in header.iter().chain(payload) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A record: header and `payload`.
///
/// # Panics
///
/// If `payload` is 4 GiB or longer.
pub fn encode_record(sequence: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("payload under 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    let crc = crc(&out, payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The record in a slot's contents.
pub fn decode_record(bytes: &[u8]) -> Result<Record<'_>, SlotFault> {
    if bytes.iter().all(|b| *b == 0xff) || bytes.iter().all(|b| *b == 0) {
        return Err(SlotFault::Blank);
    }
    if bytes.len() < HEADER_LEN {
        return Err(SlotFault::Short { len: bytes.len() });
    }
    if bytes[..4] != MAGIC {
        return Err(SlotFault::Magic);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(SlotFault::Version(version));
    }
    let sequence = le32(bytes, 8);
    let length = le32(bytes, 12);
    let available = bytes.len() - HEADER_LEN;
    let payload = usize::try_from(length)
        .ok()
        .and_then(|len| bytes[HEADER_LEN..].get(..len))
        .ok_or(SlotFault::Length { length, available })?;
    let stored = le32(bytes, 16);
    let computed = crc(&bytes[..16], payload);
    if stored != computed {
        return Err(SlotFault::Crc { stored, computed });
    }
    Ok(Record { sequence, payload })
}

/// Whether sequence number `a` is newer than `b` (with wrap-around).
pub fn is_newer(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 1 << 31
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState<E> {
    /// A valid record.
    Valid {
        /// Its sequence number.
        sequence: u32,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// No valid record (including [`SlotFault::Blank`]).
    Invalid(SlotFault),
    /// The store could not read it.
    Unreadable(E),
}

impl<E: fmt::Display> fmt::Display for SlotState<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotState::Valid { sequence, payload } => {
                write!(f, "sequence {sequence}, {} bytes", payload.len())
            }
            SlotState::Invalid(fault) => write!(f, "{fault}"),
            SlotState::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

/// Reads and checks both slots (what the console shows about them).
pub fn scan<S: Store + ?Sized>(store: &mut S) -> [SlotState<S::Error>; SLOTS] {
    let mut read = |slot| match store.read_slot(slot) {
        Err(e) => SlotState::Unreadable(e),
        Ok(bytes) => match decode_record(&bytes) {
            Ok(r) => SlotState::Valid {
                sequence: r.sequence,
                payload: r.payload.to_vec(),
            },
            Err(fault) => SlotState::Invalid(fault),
        },
    };
    [read(0), read(1)]
}

/// The slot holding the newest valid record, and its sequence number (slot 0 on a tie).
fn newest<E>(slots: &[SlotState<E>; SLOTS]) -> Option<(usize, u32)> {
    let mut best: Option<(usize, u32)> = None;
    for (slot, state) in slots.iter().enumerate() {
        if let SlotState::Valid { sequence, .. } = state
            && best.is_none_or(|(_, b)| is_newer(*sequence, b))
        {
            best = Some((slot, *sequence));
        }
    }
    best
}

/// A configuration loaded from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The slot it came from.
    pub slot: usize,
    /// Its sequence number.
    pub sequence: u32,
}

/// Why no configuration was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError<E> {
    /// Neither slot holds a valid record, and they are not both blank.
    NoValidRecord {
        /// What each slot holds.
        slots: [SlotState<E>; SLOTS],
    },
    /// The newest record is intact but its text is not a configuration this firmware reads.
    Text {
        /// The slot.
        slot: usize,
        /// Its sequence number.
        sequence: u32,
        /// What is wrong with the text.
        error: ParseError,
    },
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoValidRecord { slots } => write!(
                f,
                "no saved configuration is intact (slot 0: {}; slot 1: {})",
                slots[0], slots[1]
            ),
            LoadError::Text {
                slot,
                sequence,
                error,
            } => write!(
                f,
                "the saved configuration (slot {slot}, sequence {sequence}) does not parse: \
                 {error}"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for LoadError<E> {}

/// The newest saved configuration, with where it came from; `Ok(None)` when both slots are
/// blank. A slot that cannot be read counts as invalid while the other is valid.
pub fn load_saved<S: Store + ?Sized>(store: &mut S) -> Result<Option<Loaded>, LoadError<S::Error>> {
    let mut slots = scan(store);
    let Some((slot, sequence)) = newest(&slots) else {
        if slots
            .iter()
            .all(|s| matches!(s, SlotState::Invalid(SlotFault::Blank)))
        {
            return Ok(None);
        }
        return Err(LoadError::NoValidRecord { slots });
    };
    let SlotState::Valid { payload, .. } = &mut slots[slot] else {
        unreachable!("newest() picks a valid slot");
    };
    match parse_bytes(payload) {
        Ok(config) => Ok(Some(Loaded {
            config,
            slot,
            sequence,
        })),
        Err(error) => Err(LoadError::Text {
            slot,
            sequence,
            error,
        }),
    }
}

/// The newest saved configuration; `Ok(None)` when nothing was saved (both slots blank).
pub fn load<S: Store + ?Sized>(store: &mut S) -> Result<Option<Config>, LoadError<S::Error>> {
    Ok(load_saved(store)?.map(|l| l.config))
}

/// Where [`save`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The slot.
    pub slot: usize,
    /// The record's sequence number.
    pub sequence: u32,
}

/// Why [`save`] did not save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveError<E> {
    /// The configuration's text does not parse back to it (a device or name the syntax
    /// cannot write, or a flag its list lacks): nothing was written. [`validate`] catches
    /// this first.
    ///
    /// [`validate`]: crate::validate()
    Unrepresentable {
        /// The parse error, if the text does not parse at all.
        error: Option<ParseError>,
    },
    /// The record does not fit a slot: nothing was written.
    TooLarge {
        /// Bytes of the record.
        needed: usize,
        /// Bytes of a slot.
        capacity: usize,
    },
    /// A slot could not be read, so which slot to write is unknown: nothing was written.
    Read {
        /// The slot.
        slot: usize,
        /// The store's error.
        error: E,
    },
    /// Writing failed; the previous configuration stays in force.
    Write {
        /// The slot.
        slot: usize,
        /// The store's error.
        error: E,
    },
    /// Reading the record back failed or gave something else; the previous configuration
    /// stays in force unless the record is intact after all.
    Verify {
        /// The slot.
        slot: usize,
    },
}

impl<E: fmt::Display> fmt::Display for SaveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::Unrepresentable { error: Some(e) } => {
                write!(f, "the configuration cannot be written as text: {e}")
            }
            SaveError::Unrepresentable { error: None } => f.write_str(
                "the configuration cannot be written as text (its text reads back differently)",
            ),
            SaveError::TooLarge { needed, capacity } => write!(
                f,
                "the configuration needs {needed} bytes, a slot holds {capacity}"
            ),
            SaveError::Read { slot, error } => write!(f, "reading slot {slot}: {error}"),
            SaveError::Write { slot, error } => write!(f, "writing slot {slot}: {error}"),
            SaveError::Verify { slot } => write!(f, "slot {slot} reads back differently"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for SaveError<E> {}

/// Saves `config` atomically: writes its canonical text to the slot not holding the newest
/// valid record, with the next sequence number, and reads it back.
pub fn save<S: Store + ?Sized>(
    store: &mut S,
    config: &Config,
) -> Result<Written, SaveError<S::Error>> {
    let text = config.to_text();
    match parse(&text) {
        Ok(back) if back == *config => {}
        Ok(_) => return Err(SaveError::Unrepresentable { error: None }),
        Err(e) => return Err(SaveError::Unrepresentable { error: Some(e) }),
    }
    let needed = HEADER_LEN + text.len();
    let capacity = store.capacity();
    if needed > capacity {
        return Err(SaveError::TooLarge { needed, capacity });
    }
    let slots = scan(store);
    let (slot, sequence) = match newest(&slots) {
        Some((slot, sequence)) => (1 - slot, sequence.wrapping_add(1)),
        None => (0, 1),
    };
    for (slot, state) in slots.into_iter().enumerate() {
        if let SlotState::Unreadable(error) = state {
            return Err(SaveError::Read { slot, error });
        }
    }
    let record = encode_record(sequence, text.as_bytes());
    store
        .write_slot(slot, &record)
        .map_err(|error| SaveError::Write { slot, error })?;
    let back = store
        .read_slot(slot)
        .map_err(|_| SaveError::Verify { slot })?;
    let expected = Record {
        sequence,
        payload: text.as_bytes(),
    };
    if decode_record(&back) != Ok(expected) {
        return Err(SaveError::Verify { slot });
    }
    Ok(Written { slot, sequence })
}

/// How [`MemStore`] leaves a slot when a write is torn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornTail {
    /// The old contents after the new bytes (a file or SD sectors overwritten in place).
    Old,
    /// `0xff` after the new bytes, to the new length (flash erased, then partly programmed).
    Erased,
    /// Nothing after the new bytes (a file truncated, then partly written).
    Cut,
}

/// What goes wrong in a [`MemStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// There is no such slot.
    NoSlot(usize),
    /// The data does not fit the slot.
    TooLarge {
        /// Bytes of the data.
        len: usize,
        /// Bytes of a slot.
        capacity: usize,
    },
    /// The write was torn ([`MemStore::tear_next_write`]).
    PowerLost,
    /// The slot was made unreadable ([`MemStore::set_unreadable`]).
    Unreadable,
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::NoSlot(slot) => write!(f, "no slot {slot}"),
            MemError::TooLarge { len, capacity } => {
                write!(f, "{len} bytes do not fit a slot of {capacity}")
            }
            MemError::PowerLost => f.write_str("power lost during the write"),
            MemError::Unreadable => f.write_str("read error"),
        }
    }
}

impl core::error::Error for MemError {}

/// Two slots in RAM, for tests: writes can be torn and reads can fail on request.
#[derive(Debug, Clone)]
pub struct MemStore {
    slots: [Vec<u8>; SLOTS],
    capacity: usize,
    tear: Option<(usize, TornTail)>,
    unreadable: [bool; SLOTS],
    writes: usize,
}

impl MemStore {
    /// Two blank slots of `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        MemStore {
            slots: [Vec::new(), Vec::new()],
            capacity,
            tear: None,
            unreadable: [false; SLOTS],
            writes: 0,
        }
    }

    /// The contents of `slot`.
    ///
    /// # Panics
    ///
    /// If `slot` is not 0 or 1.
    pub fn slot(&self, slot: usize) -> &[u8] {
        &self.slots[slot]
    }

    /// Sets the contents of `slot` directly.
    ///
    /// # Panics
    ///
    /// If `slot` is not 0 or 1.
    pub fn set_slot(&mut self, slot: usize, bytes: Vec<u8>) {
        self.slots[slot] = bytes;
    }

    /// Makes the next write stop after `at` bytes, leave `tail` after them and fail with
    /// [`MemError::PowerLost`] (at or past the end: the write completes, then fails).
    pub fn tear_next_write(&mut self, at: usize, tail: TornTail) {
        self.tear = Some((at, tail));
    }

    /// Makes reads of `slot` fail (or work again).
    ///
    /// # Panics
    ///
    /// If `slot` is not 0 or 1.
    pub fn set_unreadable(&mut self, slot: usize, unreadable: bool) {
        self.unreadable[slot] = unreadable;
    }

    /// How many writes were attempted.
    pub fn writes(&self) -> usize {
        self.writes
    }
}

impl Store for MemStore {
    type Error = MemError;

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn read_slot(&mut self, slot: usize) -> Result<Vec<u8>, MemError> {
        match self.slots.get(slot) {
            None => Err(MemError::NoSlot(slot)),
            Some(_) if self.unreadable[slot] => Err(MemError::Unreadable),
            Some(bytes) => Ok(bytes.clone()),
        }
    }

    fn write_slot(&mut self, slot: usize, data: &[u8]) -> Result<(), MemError> {
        let capacity = self.capacity;
        let old = self.slots.get_mut(slot).ok_or(MemError::NoSlot(slot))?;
        if data.len() > capacity {
            return Err(MemError::TooLarge {
                len: data.len(),
                capacity,
            });
        }
        self.writes += 1;
        let Some((at, tail)) = self.tear.take() else {
            *old = data.to_vec();
            return Ok(());
        };
        let at = at.min(data.len());
        let mut new = data[..at].to_vec();
        match tail {
            TornTail::Old => new.extend_from_slice(old.get(at..).unwrap_or_default()),
            TornTail::Erased => new.extend(vec![0xff; data.len() - at]),
            TornTail::Cut => {}
        }
        *old = new;
        Err(MemError::PowerLost)
    }
}

#[cfg(feature = "std")]
pub use file::FileStore;

#[cfg(feature = "std")]
mod file {
    use std::fs::{self, File, OpenOptions};
    use std::io::{self, Read, Write};
    use std::path::{Path, PathBuf};
    use std::vec::Vec;

    use super::{SLOTS, Store};

    /// The sandbox's store: slots are the files `config.0` and `config.1` in a directory (the
    /// state directory). A write truncates the slot's file, writes the record and `fsync`s
    /// the file (and, when it created the file, the directory) before returning; a crash in
    /// between leaves that file torn, which its CRC shows, and the other file in force.
    /// A missing file is a blank slot. The directory must exist.
    #[derive(Debug, Clone)]
    pub struct FileStore {
        dir: PathBuf,
    }

    impl FileStore {
        /// Bytes a slot holds.
        pub const CAPACITY: usize = 64 * 1024;

        /// The store in `dir`.
        pub fn new(dir: impl Into<PathBuf>) -> Self {
            FileStore { dir: dir.into() }
        }

        /// The directory.
        pub fn dir(&self) -> &Path {
            &self.dir
        }

        /// The file of slot `slot` (`DIR/config.N`).
        pub fn path(&self, slot: usize) -> PathBuf {
            self.dir.join(std::format!("config.{slot}"))
        }

        fn check(slot: usize) -> io::Result<()> {
            if slot < SLOTS {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    std::format!("no slot {slot}"),
                ))
            }
        }
    }

    impl Store for FileStore {
        type Error = io::Error;

        fn capacity(&self) -> usize {
            Self::CAPACITY
        }

        fn read_slot(&mut self, slot: usize) -> io::Result<Vec<u8>> {
            Self::check(slot)?;
            let file = match File::open(self.path(slot)) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut bytes = Vec::new();
            file.take(Self::CAPACITY as u64).read_to_end(&mut bytes)?;
            Ok(bytes)
        }

        fn write_slot(&mut self, slot: usize, data: &[u8]) -> io::Result<()> {
            Self::check(slot)?;
            if data.len() > Self::CAPACITY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the record does not fit a slot",
                ));
            }
            let path = self.path(slot);
            let existed = fs::exists(&path)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            file.write_all(data)?;
            file.sync_all()?;
            if !existed {
                sync_dir(&self.dir)?;
            }
            Ok(())
        }
    }

    /// Makes a new directory entry durable.
    #[cfg(unix)]
    fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[cfg(not(unix))]
    fn sync_dir(_dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// What [`boot`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot<E> {
    /// The configuration to use (the saved one, even if it has problems, so the console can
    /// show and fix it; else the defaults).
    pub config: Config,
    /// Whether to start the gadget now.
    pub start: bool,
    /// Where the configuration came from (`None`: the defaults).
    pub loaded_from: Option<Written>,
    /// What to report on the console.
    pub problems: Vec<BootProblem<E>>,
}

/// A problem [`boot`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootProblem<E> {
    /// No saved configuration could be loaded; the defaults are used.
    Load(LoadError<E>),
    /// The saved configuration does not fit this board's devices; the gadget waits.
    Invalid(Vec<ValidationError>),
}

impl<E: fmt::Display> fmt::Display for BootProblem<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootProblem::Load(e) => write!(f, "{e}; using the defaults"),
            BootProblem::Invalid(errors) => {
                f.write_str("the saved configuration is not usable:")?;
                errors.iter().try_for_each(|e| write!(f, "\n  {e}"))
            }
        }
    }
}

/// Chooses the configuration at boot (autostart).
///
/// - A saved configuration that [`validate`](crate::validate()) accepts is used, and the gadget
///   starts if its `autostart` is on.
/// - A saved configuration with problems is used but the gadget does not start (`start` is
///   false): the problems go to the console, where the configuration can be fixed and saved.
/// - Nothing saved: the defaults, and the gadget starts (first boot).
/// - Nothing intact saved (damaged slots, unreadable text): the defaults, the gadget starts,
///   and the problem goes to the console.
pub fn boot<S: Store + ?Sized>(store: &mut S, known: impl Fn(&str) -> bool) -> Boot<S::Error> {
    let defaults = |problems| Boot {
        config: Config::default(),
        start: Config::default().autostart,
        loaded_from: None,
        problems,
    };
    match load_saved(store) {
        Ok(None) => defaults(Vec::new()),
        Err(e) => defaults(vec![BootProblem::Load(e)]),
        Ok(Some(loaded)) => {
            let loaded_from = Some(Written {
                slot: loaded.slot,
                sequence: loaded.sequence,
            });
            match validate(&loaded.config, known) {
                Ok(()) => Boot {
                    start: loaded.config.autostart,
                    config: loaded.config,
                    loaded_from,
                    problems: Vec::new(),
                },
                Err(errors) => Boot {
                    config: loaded.config,
                    start: false,
                    loaded_from,
                    problems: vec![BootProblem::Invalid(errors)],
                },
            }
        }
    }
}

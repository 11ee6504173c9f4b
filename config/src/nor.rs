//! Configuration slots in NOR flash: [`NorStore`], a [`Store`] over any embedded-storage
//! [`NorFlash`].
//!
//! Each slot is one erase sector ([`NorFlash::ERASE_SIZE`] bytes) at an offset given to
//! [`NorStore::new`]; on the Teensy 4.1 the two sectors just below PJRC's reserved last
//! 256 KiB (flash offsets 0x7B_E000 and 0x7B_F000, `lunbox_platform::imxrt::flash`).
//!
//! - [`read_slot`](Store::read_slot) reads the whole sector: the record and what follows it
//!   (erased flash, `0xff`), which the record format ignores; an erased sector is a blank slot.
//! - [`write_slot`](Store::write_slot) erases the sector, programs the record rounded up to
//!   [`NorFlash::WRITE_SIZE`] (padded with `0xff`, which leaves erased bits as they are), then
//!   reads the programmed bytes back and compares them ([`NorError::Verify`]).
//!
//! A reset or power loss during the erase or the program leaves that sector erased, partly
//! erased or partly programmed: a blank or damaged slot, while the other slot, untouched,
//! keeps the previous configuration (see [`store`](crate::store)). [`save`](crate::save)
//! always writes the slot *not* holding the newest record, so each save erases one sector.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

use crate::store::{SLOTS, Store};

/// What goes wrong in a [`NorStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NorError<E> {
    /// The flash failed (read, erase or program).
    Flash(E),
    /// There is no such slot.
    NoSlot(usize),
    /// The data does not fit a slot (one erase sector).
    TooLarge {
        /// Bytes of the data.
        len: usize,
        /// Bytes of a slot.
        capacity: usize,
    },
    /// The bytes read back after programming differ from those programmed.
    Verify {
        /// The slot.
        slot: usize,
    },
}

impl<E: NorFlashError> fmt::Display for NorError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The error's kind, not its `Debug`: no `Debug` formatting code in the firmware
            // for a message its own store words better (the board prints the flash's error).
            NorError::Flash(e) => f.write_str(match e.kind() {
                NorFlashErrorKind::NotAligned => "flash error: not aligned",
                NorFlashErrorKind::OutOfBounds => "flash error: out of bounds",
                _ => "flash error",
            }),
            NorError::NoSlot(slot) => write!(f, "no slot {slot}"),
            NorError::TooLarge { len, capacity } => {
                write!(f, "{len} bytes do not fit a slot of {capacity}")
            }
            NorError::Verify { slot } => {
                write!(f, "slot {slot} reads back differently after programming")
            }
        }
    }
}

impl<E: NorFlashError> core::error::Error for NorError<E> {}

/// Two configuration slots, each one erase sector of a NOR flash (see the module docs).
#[derive(Debug)]
pub struct NorStore<F> {
    flash: F,
    slots: [u32; SLOTS],
}

impl<F: NorFlash> NorStore<F> {
    /// The store with slot 0 at flash offset `slots[0]` and slot 1 at `slots[1]`.
    ///
    /// # Panics
    ///
    /// If an offset is not at the start of an erase sector, a sector runs past the flash's
    /// capacity, both slots are the same sector, or the flash's sizes do not fit together
    /// (an erase sector must be a whole number of write and read units).
    pub fn new(flash: F, slots: [u32; SLOTS]) -> Self {
        let sector = F::ERASE_SIZE;
        assert!(
            sector > 0
                && sector.is_multiple_of(F::WRITE_SIZE)
                && sector.is_multiple_of(F::READ_SIZE),
            "NorStore: erase size {sector} is not a multiple of write size {} and read size {}",
            F::WRITE_SIZE,
            F::READ_SIZE
        );
        for offset in slots {
            let offset = offset as usize;
            assert!(
                offset.is_multiple_of(sector),
                "NorStore: slot offset {offset:#x} is not sector-aligned"
            );
            assert!(
                offset
                    .checked_add(sector)
                    .is_some_and(|end| end <= flash.capacity()),
                "NorStore: slot at {offset:#x} runs past the flash"
            );
        }
        assert!(slots[0] != slots[1], "NorStore: both slots are one sector");
        NorStore { flash, slots }
    }

    /// The slots' flash offsets.
    pub fn slots(&self) -> [u32; SLOTS] {
        self.slots
    }

    /// The flash.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, mutably (for tests and other users of the same flash).
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// The flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    fn offset(&self, slot: usize) -> Result<u32, NorError<F::Error>> {
        self.slots.get(slot).copied().ok_or(NorError::NoSlot(slot))
    }
}

/// `len` rounded up to a multiple of `unit`.
fn round_up(len: usize, unit: usize) -> usize {
    len.div_ceil(unit) * unit
}

impl<F: NorFlash> Store for NorStore<F> {
    type Error = NorError<F::Error>;

    fn capacity(&self) -> usize {
        F::ERASE_SIZE
    }

    fn read_slot(&mut self, slot: usize) -> Result<Vec<u8>, Self::Error> {
        let offset = self.offset(slot)?;
        let mut bytes = vec![0; F::ERASE_SIZE];
        self.flash
            .read(offset, &mut bytes)
            .map_err(NorError::Flash)?;
        Ok(bytes)
    }

    fn write_slot(&mut self, slot: usize, data: &[u8]) -> Result<(), Self::Error> {
        let offset = self.offset(slot)?;
        let capacity = F::ERASE_SIZE;
        if data.len() > capacity {
            return Err(NorError::TooLarge {
                len: data.len(),
                capacity,
            });
        }
        let mut padded = data.to_vec();
        padded.resize(round_up(data.len(), F::WRITE_SIZE), 0xff);
        // `new` checked that a sector fits the flash, so the end fits a u32 offset.
        let end = offset + capacity as u32;
        self.flash.erase(offset, end).map_err(NorError::Flash)?;
        if padded.is_empty() {
            return Ok(());
        }
        self.flash.write(offset, &padded).map_err(NorError::Flash)?;
        let mut back = vec![0; round_up(padded.len(), F::READ_SIZE)];
        self.flash
            .read(offset, &mut back)
            .map_err(NorError::Flash)?;
        if back[..padded.len()] != padded[..] {
            return Err(NorError::Verify { slot });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    use embedded_storage::nor_flash::{
        ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash, check_erase,
        check_read, check_write,
    };

    use super::{NorError, NorStore};
    use crate::store::{SlotFault, SlotState, Store, decode_record};
    use crate::{Config, LoadError, SaveError, load, load_saved, parse, save, scan};

    const SECTOR: usize = 4096;
    const WRITE: usize = 16;
    const SECTORS: usize = 4;
    /// Slots in sectors 1 and 3; sectors 0 and 2 are someone else's.
    const SLOTS: [u32; 2] = [SECTOR as u32, 3 * SECTOR as u32];

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum FakeError {
        Kind(NorFlashErrorKind),
        /// The power was cut (and stays off until `power_on`).
        PowerCut,
        /// A failure asked for by the test.
        Injected,
    }

    impl NorFlashError for FakeError {
        fn kind(&self) -> NorFlashErrorKind {
            match self {
                FakeError::Kind(kind) => *kind,
                _ => NorFlashErrorKind::Other,
            }
        }
    }

    /// A NOR flash in RAM: erase sets a sector to 0xff, program may only clear bits (a test
    /// that programs over unerased data panics). With a power budget, every sector erase and
    /// every programmed WRITE-byte word is one operation, and when the budget is spent the
    /// current operation is cut (an erase leaves the sector half erased, half old) and
    /// everything fails until `power_on`.
    #[derive(Debug, Clone)]
    struct FakeNor {
        bytes: Vec<u8>,
        /// Operations left before the power is cut (`None`: no cut).
        budget: Option<usize>,
        /// Operations done since the last `power_on`.
        ops: usize,
        powered: bool,
        fail_read: [bool; SECTORS],
        fail_erase: bool,
        fail_write: bool,
        /// Garbles one programmed byte (a flash that does not hold what it was given).
        flip_on_write: bool,
        writes: Vec<(u32, usize)>,
    }

    impl FakeNor {
        fn new() -> Self {
            FakeNor {
                bytes: vec![0xff; SECTORS * SECTOR],
                budget: None,
                ops: 0,
                powered: true,
                fail_read: [false; SECTORS],
                fail_erase: false,
                fail_write: false,
                flip_on_write: false,
                writes: Vec::new(),
            }
        }

        /// Cut the power after `ops` more operations.
        fn cut_after(&mut self, ops: usize) {
            self.budget = Some(ops);
        }

        /// Power back on (a reboot): no budget, everything works again.
        fn power_on(&mut self) {
            self.budget = None;
            self.powered = true;
            self.ops = 0;
        }

        fn spend(&mut self) -> Result<(), FakeError> {
            if !self.powered {
                return Err(FakeError::PowerCut);
            }
            if let Some(left) = &mut self.budget {
                if *left == 0 {
                    self.powered = false;
                    return Err(FakeError::PowerCut);
                }
                *left -= 1;
            }
            self.ops += 1;
            Ok(())
        }

        fn sector(&self, n: usize) -> &[u8] {
            &self.bytes[n * SECTOR..(n + 1) * SECTOR]
        }
    }

    impl ErrorType for FakeNor {
        type Error = FakeError;
    }

    impl ReadNorFlash for FakeNor {
        const READ_SIZE: usize = 4;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FakeError> {
            check_read(self, offset, bytes.len()).map_err(FakeError::Kind)?;
            if !self.powered {
                return Err(FakeError::PowerCut);
            }
            let at = offset as usize;
            if self.fail_read[at / SECTOR] {
                return Err(FakeError::Injected);
            }
            bytes.copy_from_slice(&self.bytes[at..at + bytes.len()]);
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.bytes.len()
        }
    }

    impl NorFlash for FakeNor {
        const WRITE_SIZE: usize = WRITE;
        const ERASE_SIZE: usize = SECTOR;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), FakeError> {
            check_erase(self, from, to).map_err(FakeError::Kind)?;
            if self.fail_erase {
                return Err(FakeError::Injected);
            }
            for sector in (from as usize..to as usize).step_by(SECTOR) {
                let was_on = self.powered;
                if let Err(e) = self.spend() {
                    // Cut during this erase: the first half of the sector is erased, the
                    // rest still holds the old bytes.
                    if was_on {
                        self.bytes[sector..sector + SECTOR / 2].fill(0xff);
                    }
                    return Err(e);
                }
                self.bytes[sector..sector + SECTOR].fill(0xff);
            }
            Ok(())
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FakeError> {
            check_write(self, offset, bytes.len()).map_err(FakeError::Kind)?;
            if self.fail_write {
                return Err(FakeError::Injected);
            }
            self.writes.push((offset, bytes.len()));
            for (i, word) in bytes.chunks(WRITE).enumerate() {
                self.spend()?;
                let at = offset as usize + i * WRITE;
                for (j, &new) in word.iter().enumerate() {
                    let old = self.bytes[at + j];
                    assert_eq!(
                        new & !old,
                        0,
                        "programming {new:#04x} over {old:#04x} at {:#x}: not erased",
                        at + j
                    );
                    self.bytes[at + j] = old & new;
                }
            }
            if self.flip_on_write {
                self.bytes[offset as usize] ^= 0x01;
            }
            Ok(())
        }
    }

    fn store() -> NorStore<FakeNor> {
        NorStore::new(FakeNor::new(), SLOTS)
    }

    fn config(text: &str) -> Config {
        parse(text).expect("test configuration parses")
    }

    fn first() -> Config {
        config("ums=sd0.1(data),ram0(scratch)ro\n")
    }

    fn second() -> Config {
        config("ums=ram0(scratch)\ndfu=sd0.2(rootfs)s,firmware(fw)r\nautostart=off\n")
    }

    #[test]
    fn blank_flash_loads_nothing() {
        let mut s = store();
        assert_eq!(s.capacity(), SECTOR);
        assert_eq!(s.read_slot(0).unwrap(), vec![0xff; SECTOR]);
        assert_eq!(load(&mut s).unwrap(), None);
    }

    #[test]
    fn save_load_round_trip_alternates_sectors() {
        let mut s = store();
        let w = save(&mut s, &first()).unwrap();
        assert_eq!((w.slot, w.sequence), (0, 1));
        assert_eq!(load(&mut s).unwrap(), Some(first()));
        let w = save(&mut s, &second()).unwrap();
        assert_eq!((w.slot, w.sequence), (1, 2));
        assert_eq!(load(&mut s).unwrap(), Some(second()));
        let w = save(&mut s, &first()).unwrap();
        assert_eq!((w.slot, w.sequence), (0, 3));
        let loaded = load_saved(&mut s).unwrap().unwrap();
        assert_eq!(
            (loaded.config, loaded.slot, loaded.sequence),
            (first(), 0, 3)
        );

        // The records are in sectors 1 and 3; sectors 0 and 2 were never touched.
        let flash = s.flash();
        assert!(flash.sector(0).iter().all(|b| *b == 0xff));
        assert!(flash.sector(2).iter().all(|b| *b == 0xff));
        assert_eq!(decode_record(flash.sector(1)).unwrap().sequence, 3);
        assert_eq!(decode_record(flash.sector(3)).unwrap().sequence, 2);
    }

    #[test]
    fn writes_are_padded_to_the_write_size_with_erased_bytes() {
        let mut s = store();
        let data = b"abc";
        s.write_slot(1, data).unwrap();
        assert_eq!(s.flash().writes, vec![(SLOTS[1], WRITE)]);
        let back = s.read_slot(1).unwrap();
        assert_eq!(back.len(), SECTOR);
        assert_eq!(&back[..3], data);
        assert!(back[3..].iter().all(|b| *b == 0xff));
        // An empty write leaves an erased (blank) sector.
        s.write_slot(1, &[]).unwrap();
        assert_eq!(
            scan(&mut s)[1],
            SlotState::Invalid(SlotFault::Blank),
            "an erased sector is a blank slot"
        );
    }

    #[test]
    fn rewriting_a_slot_erases_it_first() {
        let mut s = store();
        s.write_slot(0, &[0x00; 40]).unwrap();
        // Would panic in the fake (programming 1 bits over 0) without the erase.
        s.write_slot(0, &[0xa5; 40]).unwrap();
        assert_eq!(&s.read_slot(0).unwrap()[..40], &[0xa5; 40]);
    }

    #[test]
    #[should_panic(expected = "not erased")]
    fn the_fake_refuses_to_program_over_unerased_data() {
        let mut flash = FakeNor::new();
        flash.write(0, &[0x00; WRITE]).unwrap();
        let _ = flash.write(0, &[0x01; WRITE]);
    }

    #[test]
    fn bad_slot_and_oversized_data_are_refused() {
        let mut s = store();
        assert_eq!(s.read_slot(2), Err(NorError::NoSlot(2)));
        assert_eq!(s.write_slot(2, b"x"), Err(NorError::NoSlot(2)));
        assert_eq!(
            s.write_slot(0, &vec![0; SECTOR + 1]),
            Err(NorError::TooLarge {
                len: SECTOR + 1,
                capacity: SECTOR
            })
        );
        assert_eq!(s.flash().ops, 0, "nothing was erased or programmed");
    }

    #[test]
    #[should_panic(expected = "not sector-aligned")]
    fn unaligned_slots_are_a_bug() {
        let _ = NorStore::new(FakeNor::new(), [100, 2 * SECTOR as u32]);
    }

    #[test]
    #[should_panic(expected = "runs past the flash")]
    fn slots_past_the_flash_are_a_bug() {
        let _ = NorStore::new(FakeNor::new(), [0, (SECTORS * SECTOR) as u32]);
    }

    /// How many flash operations a save of `config` does on `s` (on a copy).
    fn ops_of_save(s: &NorStore<FakeNor>, config: &Config) -> usize {
        let mut copy = NorStore::new(s.flash().clone(), SLOTS);
        copy.flash_mut().ops = 0;
        save(&mut copy, config).unwrap();
        copy.flash().ops
    }

    #[test]
    fn power_cut_between_erase_and_program_keeps_the_previous_configuration() {
        let mut s = store();
        save(&mut s, &first()).unwrap();
        s.flash_mut().cut_after(1); // the erase of slot 1, then nothing
        let err = save(&mut s, &second()).unwrap_err();
        assert_eq!(
            err,
            SaveError::Write {
                slot: 1,
                error: NorError::Flash(FakeError::PowerCut)
            }
        );
        s.flash_mut().power_on();
        assert_eq!(scan(&mut s)[1], SlotState::Invalid(SlotFault::Blank));
        assert_eq!(load(&mut s).unwrap(), Some(first()));
        // The next save goes to the erased slot again and wins.
        let w = save(&mut s, &second()).unwrap();
        assert_eq!((w.slot, w.sequence), (1, 2));
        assert_eq!(load(&mut s).unwrap(), Some(second()));
    }

    #[test]
    fn power_cut_mid_program_keeps_the_previous_configuration() {
        let mut s = store();
        save(&mut s, &first()).unwrap();
        save(&mut s, &second()).unwrap();
        // The next save writes slot 0: its erase, then two words of the record.
        s.flash_mut().cut_after(3);
        assert!(matches!(
            save(&mut s, &first()),
            Err(SaveError::Write {
                slot: 0,
                error: NorError::Flash(FakeError::PowerCut)
            })
        ));
        s.flash_mut().power_on();
        assert!(matches!(
            scan(&mut s)[0],
            SlotState::Invalid(SlotFault::Length { .. } | SlotFault::Crc { .. })
        ));
        assert_eq!(load(&mut s).unwrap(), Some(second()));
    }

    #[test]
    fn a_power_cut_at_any_point_leaves_the_old_or_the_new_configuration() {
        for previous in [None, Some(first())] {
            let mut base = store();
            if let Some(config) = &previous {
                save(&mut base, config).unwrap();
                save(&mut base, &second()).unwrap();
                save(&mut base, config).unwrap();
            }
            let old = load(&mut base).unwrap();
            let new = config("ums=sd0(all)\nproduct=\"a longer product name to span words\"\n");
            let total = ops_of_save(&base, &new);
            assert!(total > 2, "an erase and several words: {total}");
            for cut in 0..=total {
                let mut s = NorStore::new(base.flash().clone(), SLOTS);
                s.flash_mut().cut_after(cut);
                let saved = save(&mut s, &new);
                s.flash_mut().power_on();
                let loaded = load(&mut s);
                if cut == total {
                    assert!(saved.is_ok(), "cut after {cut}: {saved:?}");
                }
                match (&saved, &previous, loaded) {
                    (Ok(_), _, loaded) => {
                        assert_eq!(loaded, Ok(Some(new.clone())), "cut after {cut}")
                    }
                    (Err(_), Some(_), loaded) => {
                        assert_eq!(loaded, Ok(old.clone()), "cut after {cut}")
                    }
                    // A torn first save: nothing saved, or a damaged slot and a blank one
                    // (the boot then uses the defaults and reports it).
                    (Err(_), None, Ok(None) | Err(LoadError::NoValidRecord { .. })) => {}
                    (Err(_), None, loaded) => panic!("cut after {cut}: {loaded:?}"),
                }
            }
        }
    }

    #[test]
    fn a_torn_erase_is_a_damaged_slot_not_a_lost_configuration() {
        let mut s = store();
        save(&mut s, &first()).unwrap();
        save(&mut s, &second()).unwrap();
        // Cut during slot 0's erase: half of the old record is gone, half is still there.
        s.flash_mut().cut_after(0);
        assert!(save(&mut s, &first()).is_err());
        s.flash_mut().power_on();
        assert_eq!(load(&mut s).unwrap(), Some(second()));
    }

    #[test]
    fn flash_errors_propagate_to_save() {
        let mut s = store();
        save(&mut s, &first()).unwrap();

        s.flash_mut().fail_read[SLOTS[1] as usize / SECTOR] = true;
        assert_eq!(
            save(&mut s, &second()),
            Err(SaveError::Read {
                slot: 1,
                error: NorError::Flash(FakeError::Injected)
            })
        );
        s.flash_mut().fail_read = [false; SECTORS];

        s.flash_mut().fail_erase = true;
        assert_eq!(
            save(&mut s, &second()),
            Err(SaveError::Write {
                slot: 1,
                error: NorError::Flash(FakeError::Injected)
            })
        );
        s.flash_mut().fail_erase = false;

        s.flash_mut().fail_write = true;
        assert_eq!(
            save(&mut s, &second()),
            Err(SaveError::Write {
                slot: 1,
                error: NorError::Flash(FakeError::Injected)
            })
        );
        s.flash_mut().fail_write = false;

        s.flash_mut().flip_on_write = true;
        assert_eq!(
            save(&mut s, &second()),
            Err(SaveError::Write {
                slot: 1,
                error: NorError::Verify { slot: 1 }
            })
        );
        s.flash_mut().flip_on_write = false;

        assert_eq!(load(&mut s).unwrap(), Some(first()));
        let message = SaveError::Write {
            slot: 1,
            error: NorError::<FakeError>::Verify { slot: 1 },
        }
        .to_string();
        assert_eq!(
            message,
            "writing slot 1: slot 1 reads back differently after programming"
        );
    }

    #[test]
    fn flash_errors_propagate_to_load() {
        let mut s = store();
        save(&mut s, &first()).unwrap();
        save(&mut s, &second()).unwrap();

        // The newer slot unreadable: the older one is loaded.
        s.flash_mut().fail_read[SLOTS[1] as usize / SECTOR] = true;
        assert_eq!(load(&mut s).unwrap(), Some(first()));

        // Both unreadable: the error says so, per slot.
        s.flash_mut().fail_read[SLOTS[0] as usize / SECTOR] = true;
        let err = load(&mut s).unwrap_err();
        assert_eq!(
            err,
            LoadError::NoValidRecord {
                slots: [
                    SlotState::Unreadable(NorError::Flash(FakeError::Injected)),
                    SlotState::Unreadable(NorError::Flash(FakeError::Injected)),
                ]
            }
        );
        assert!(err.to_string().contains("unreadable: flash error"));
    }

    #[test]
    fn flash_errors_read_as_their_kind() {
        let text = |e| NorError::Flash(e).to_string();
        assert_eq!(
            text(FakeError::Kind(NorFlashErrorKind::NotAligned)),
            "flash error: not aligned"
        );
        assert_eq!(
            text(FakeError::Kind(NorFlashErrorKind::OutOfBounds)),
            "flash error: out of bounds"
        );
        assert_eq!(text(FakeError::Injected), "flash error");
    }
}

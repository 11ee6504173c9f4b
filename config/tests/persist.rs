//! Persistence: two slots with sequence numbers and CRCs; torn writes leave the previous
//! configuration in force.

use lunbox_config::store::{
    FORMAT_VERSION, HEADER_LEN, MAGIC, Record, decode_record, encode_record, is_newer,
};
use lunbox_config::{
    BootProblem, Config, Entry, FileStore, Flag, LoadError, Loaded, MemError, MemStore, SaveError,
    SlotFault, SlotState, Store, TornTail, Written, boot, load, load_saved, parse, save, scan,
};

fn config(n: u16) -> Config {
    Config {
        ums: vec![
            Entry::new("sd0.1").named("data"),
            Entry::new("ram0").named("scratch").flag(Flag::ReadOnly),
        ],
        dfu: vec![Entry::new("firmware").named("fw").flag(Flag::Readback)],
        pid: n,
        serial: Some(format!("serial {n}")),
        ..Config::default()
    }
}

fn written(slot: usize, sequence: u32) -> Written {
    Written { slot, sequence }
}

#[test]
fn save_and_load_alternate_slots() {
    let mut store = MemStore::new(4096);
    assert_eq!(load(&mut store), Ok(None));
    assert_eq!(save(&mut store, &config(1)), Ok(written(0, 1)));
    assert_eq!(load(&mut store), Ok(Some(config(1))));
    assert_eq!(save(&mut store, &config(2)), Ok(written(1, 2)));
    assert_eq!(
        load_saved(&mut store),
        Ok(Some(Loaded {
            config: config(2),
            slot: 1,
            sequence: 2
        }))
    );
    assert_eq!(save(&mut store, &config(3)), Ok(written(0, 3)));
    assert_eq!(load(&mut store), Ok(Some(config(3))));
    // The older slot still holds the previous configuration.
    let previous = decode_record(store.slot(1)).unwrap();
    assert_eq!(previous.sequence, 2);
    assert_eq!(
        parse(std::str::from_utf8(previous.payload).unwrap()),
        Ok(config(2))
    );
    // The payload is the canonical text.
    assert_eq!(
        decode_record(store.slot(0)).unwrap().payload,
        config(3).to_text().as_bytes()
    );
    assert_eq!(store.writes(), 3);
}

#[test]
fn record_layout() {
    let record = encode_record(0x0102_0304, b"acm=off\n");
    assert_eq!(record.len(), HEADER_LEN + 8);
    assert_eq!(&record[..4], &MAGIC);
    assert_eq!(&record[..4], b"LBXC");
    assert_eq!(u16::from_le_bytes([record[4], record[5]]), FORMAT_VERSION);
    assert_eq!(&record[6..8], &[0, 0]);
    assert_eq!(&record[8..12], &[4, 3, 2, 1]);
    assert_eq!(&record[12..16], &[8, 0, 0, 0]);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record[..16]);
    crc.update(b"acm=off\n");
    assert_eq!(&record[16..20], &crc.finalize().to_le_bytes());
    assert_eq!(&record[20..], b"acm=off\n");
    assert_eq!(
        decode_record(&record),
        Ok(Record {
            sequence: 0x0102_0304,
            payload: b"acm=off\n"
        })
    );
    // Bytes after the record (the rest of a flash sector) are ignored.
    let mut sector = record.clone();
    sector.resize(4096, 0xff);
    assert_eq!(decode_record(&sector), decode_record(&record));
}

#[test]
fn slot_faults() {
    let record = encode_record(7, b"vid=1");
    assert_eq!(decode_record(&[]), Err(SlotFault::Blank));
    assert_eq!(decode_record(&[0xff; 4096]), Err(SlotFault::Blank));
    assert_eq!(decode_record(&[0; 4096]), Err(SlotFault::Blank));
    assert_eq!(
        decode_record(&record[..HEADER_LEN - 1]),
        Err(SlotFault::Short { len: 19 })
    );
    let mut bad = record.clone();
    bad[0] = b'X';
    assert_eq!(decode_record(&bad), Err(SlotFault::Magic));
    let mut bad = record.clone();
    bad[4] = 2;
    assert_eq!(decode_record(&bad), Err(SlotFault::Version(2)));
    assert_eq!(
        decode_record(&record[..record.len() - 1]),
        Err(SlotFault::Length {
            length: 5,
            available: 4
        })
    );
    let mut bad = record.clone();
    *bad.last_mut().unwrap() ^= 1;
    let Err(SlotFault::Crc { stored, computed }) = decode_record(&bad) else {
        panic!("CRC not checked")
    };
    assert_ne!(stored, computed);
    assert_eq!(
        SlotFault::Crc {
            stored: 0x1234,
            computed: 0xabcd_ef01
        }
        .to_string(),
        "CRC mismatch (stored 0x00001234, computed 0xabcdef01): torn write or corruption"
    );
}

/// Saves A then B, then tears the write of C (into A's slot) after every byte: B stays in
/// force, and the next save repairs the torn slot.
#[test]
fn torn_write_at_every_offset_keeps_the_previous_config() {
    let (a, b, c, d) = (config(1), config(2), config(3), config(4));
    let record_c = encode_record(3, c.to_text().as_bytes());
    for tail in [TornTail::Old, TornTail::Erased, TornTail::Cut] {
        for at in 0..=record_c.len() {
            let mut store = MemStore::new(4096);
            save(&mut store, &a).unwrap();
            save(&mut store, &b).unwrap();
            store.tear_next_write(at, tail);
            assert_eq!(
                save(&mut store, &c),
                Err(SaveError::Write {
                    slot: 0,
                    error: MemError::PowerLost
                })
            );
            // Complete only when every byte of C's record is there (with an `Old` tail, the
            // last bytes may already be right: both records end in `"\n`).
            let complete = store.slot(0).starts_with(&record_c);
            assert_eq!(
                complete,
                at + common_suffix(&record_c, tail) >= record_c.len()
            );
            let expected = if complete { &c } else { &b };
            assert_eq!(
                load(&mut store),
                Ok(Some(expected.clone())),
                "tail {tail:?}, torn after {at} bytes"
            );
            // The next save goes to the slot not holding the newest valid record.
            let next = save(&mut store, &d).unwrap();
            if complete {
                assert_eq!(next, written(1, 4));
            } else {
                assert_eq!(next, written(0, 3), "tail {tail:?}, torn after {at} bytes");
            }
            assert_eq!(load(&mut store), Ok(Some(d.clone())));
        }
    }
}

/// How many bytes at the end of `record` the torn write's tail already has right: with an
/// `Old` tail, the bytes config(1)'s record shares with it at the end.
fn common_suffix(record: &[u8], tail: TornTail) -> usize {
    let old = encode_record(1, config(1).to_text().as_bytes());
    match tail {
        TornTail::Old if old.len() == record.len() => old
            .iter()
            .rev()
            .zip(record.iter().rev())
            .take_while(|(a, b)| a == b)
            .count(),
        _ => 0,
    }
}

/// The first save torn: nothing valid was ever saved.
#[test]
fn torn_first_write() {
    let record_len = HEADER_LEN + config(1).to_text().len();
    for tail in [TornTail::Old, TornTail::Erased, TornTail::Cut] {
        for at in 0..record_len {
            let mut store = MemStore::new(4096);
            store.tear_next_write(at, tail);
            assert!(save(&mut store, &config(1)).is_err());
            match load(&mut store) {
                Ok(None) => assert!(at == 0, "{tail:?} {at}"),
                Err(LoadError::NoValidRecord { slots }) => {
                    assert!(at > 0);
                    assert_eq!(slots[1], SlotState::Invalid(SlotFault::Blank));
                }
                other => panic!("{tail:?} {at}: {other:?}"),
            }
            assert_eq!(save(&mut store, &config(2)), Ok(written(0, 1)));
            assert_eq!(load(&mut store), Ok(Some(config(2))));
        }
    }
}

/// Any single flipped bit in the newest record makes the previous configuration load.
#[test]
fn corrupted_newest_record() {
    let mut store = MemStore::new(4096);
    save(&mut store, &config(1)).unwrap();
    save(&mut store, &config(2)).unwrap();
    let good = store.slot(1).to_vec();
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        store.set_slot(1, bad);
        assert_eq!(load(&mut store), Ok(Some(config(1))), "bit {bit}");
    }
}

#[test]
fn both_slots_bad() {
    let mut store = MemStore::new(4096);
    save(&mut store, &config(1)).unwrap();
    save(&mut store, &config(2)).unwrap();
    let mut bad = store.slot(0).to_vec();
    bad[30] ^= 0x40;
    store.set_slot(0, bad);
    store.set_slot(1, b"garbage".to_vec());
    let err = load(&mut store).unwrap_err();
    let LoadError::NoValidRecord { slots } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(
        slots[0],
        SlotState::Invalid(SlotFault::Crc { .. })
    ));
    assert_eq!(slots[1], SlotState::Invalid(SlotFault::Short { len: 7 }));
    assert!(
        err.to_string()
            .starts_with("no saved configuration is intact (slot 0: CRC mismatch (stored 0x"),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("torn write or corruption; slot 1: 7 bytes, shorter than a header)"),
        "{err}"
    );
    // Saving starts over in slot 0.
    assert_eq!(save(&mut store, &config(3)), Ok(written(0, 1)));
    assert_eq!(load(&mut store), Ok(Some(config(3))));

    // Both erased (flash) or both empty: nothing saved.
    let mut store = MemStore::new(4096);
    store.set_slot(0, vec![0xff; 4096]);
    assert_eq!(load(&mut store), Ok(None));
}

#[test]
fn sequence_numbers_wrap() {
    assert!(is_newer(1, 0));
    assert!(is_newer(0, u32::MAX));
    assert!(is_newer(5, u32::MAX - 5));
    assert!(!is_newer(u32::MAX, 0));
    assert!(!is_newer(3, 3));
    assert!(is_newer(0x8000_0000 - 1, 0));
    assert!(!is_newer(0x8000_0000, 0));

    let mut store = MemStore::new(4096);
    store.set_slot(
        0,
        encode_record(u32::MAX - 1, config(1).to_text().as_bytes()),
    );
    store.set_slot(1, encode_record(u32::MAX, config(2).to_text().as_bytes()));
    assert_eq!(load(&mut store), Ok(Some(config(2))));
    assert_eq!(save(&mut store, &config(3)), Ok(written(0, 0)));
    assert_eq!(load(&mut store), Ok(Some(config(3))));
    assert_eq!(save(&mut store, &config(4)), Ok(written(1, 1)));
    assert_eq!(load(&mut store), Ok(Some(config(4))));

    // The newer of the two wins whichever slot it is in.
    store.set_slot(0, encode_record(0, config(5).to_text().as_bytes()));
    store.set_slot(1, encode_record(u32::MAX, config(6).to_text().as_bytes()));
    assert_eq!(load(&mut store), Ok(Some(config(5))));
    assert_eq!(save(&mut store, &config(7)), Ok(written(1, 1)));
    assert_eq!(load(&mut store), Ok(Some(config(7))));
}

#[test]
fn unreadable_slot() {
    let mut store = MemStore::new(4096);
    save(&mut store, &config(1)).unwrap();
    save(&mut store, &config(2)).unwrap();
    // Loading uses what can be read.
    store.set_unreadable(1, true);
    assert_eq!(load(&mut store), Ok(Some(config(1))));
    assert!(matches!(
        scan(&mut store)[1],
        SlotState::Unreadable(MemError::Unreadable)
    ));
    // Saving does not guess which slot is older.
    assert_eq!(
        save(&mut store, &config(3)),
        Err(SaveError::Read {
            slot: 1,
            error: MemError::Unreadable
        })
    );
    assert_eq!(store.writes(), 2);
    store.set_unreadable(0, true);
    let err = load(&mut store).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no saved configuration is intact (slot 0: unreadable: read error; slot 1: unreadable: \
         read error)"
    );
    store.set_unreadable(0, false);
    store.set_unreadable(1, false);
    assert_eq!(load(&mut store), Ok(Some(config(2))));
}

#[test]
fn unusable_text() {
    let mut store = MemStore::new(4096);
    save(&mut store, &config(1)).unwrap();
    store.set_slot(1, encode_record(2, b"acm=on\nwifi=on\n"));
    let err = load(&mut store).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the saved configuration (slot 1, sequence 2) does not parse: line 2, column 1: \
         expected a key (ums, dfu, acm, autostart, vid, pid, manufacturer, product, serial), \
         found 'wifi'"
    );
    store.set_slot(1, encode_record(2, b"\xff"));
    assert!(matches!(
        load(&mut store),
        Err(LoadError::Text {
            slot: 1,
            sequence: 2,
            ..
        })
    ));
    // Saving replaces the older slot and supersedes the unusable record.
    assert_eq!(save(&mut store, &config(3)), Ok(written(0, 3)));
    assert_eq!(load(&mut store), Ok(Some(config(3))));
}

#[test]
fn refused_saves_write_nothing() {
    let mut store = MemStore::new(HEADER_LEN + 100);
    assert_eq!(
        save(&mut store, &config(1)),
        Err(SaveError::TooLarge {
            needed: HEADER_LEN + config(1).to_text().len(),
            capacity: HEADER_LEN + 100
        })
    );
    let mut store = MemStore::new(4096);
    let bad = Config {
        ums: vec![Entry::new("Sd0")],
        ..Config::default()
    };
    let err = save(&mut store, &bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the configuration cannot be written as text: line 1, column 5: expected a device name \
         (such as sd0, sd0.1 or ram0), found 'Sd0'"
    );
    // Text that parses, but to something else.
    let bad = Config {
        ums: vec![Entry::new("sd0,ram0")],
        ..Config::default()
    };
    assert_eq!(
        save(&mut store, &bad),
        Err(SaveError::Unrepresentable { error: None })
    );
    let bad = Config {
        ums: vec![Entry::new("sd0").flag(Flag::Safe)],
        ..Config::default()
    };
    assert!(matches!(
        save(&mut store, &bad),
        Err(SaveError::Unrepresentable { error: Some(_) })
    ));
    let bad = Config {
        ums: vec![Entry::new("sd0").named("")],
        ..Config::default()
    };
    assert_eq!(
        save(&mut store, &bad),
        Err(SaveError::Unrepresentable { error: None })
    );
    assert_eq!(store.writes(), 0);
    assert_eq!(load(&mut store), Ok(None));
}

/// A store that loses writes (a failing flash): the read-back catches it.
struct LosesWrites(MemStore);

impl Store for LosesWrites {
    type Error = MemError;

    fn capacity(&self) -> usize {
        self.0.capacity()
    }

    fn read_slot(&mut self, slot: usize) -> Result<Vec<u8>, MemError> {
        self.0.read_slot(slot)
    }

    fn write_slot(&mut self, _slot: usize, _data: &[u8]) -> Result<(), MemError> {
        Ok(())
    }
}

#[test]
fn save_reads_back() {
    let mut store = LosesWrites(MemStore::new(4096));
    assert_eq!(
        save(&mut store, &config(1)),
        Err(SaveError::Verify { slot: 0 })
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("lunbox-config-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn file_store() {
    let dir = temp_dir("files");
    let mut store = FileStore::new(&dir);
    assert_eq!(store.path(1), dir.join("config.1"));
    assert_eq!(load(&mut store).unwrap(), None);
    assert_eq!(save(&mut store, &config(1)).unwrap(), written(0, 1));
    assert_eq!(save(&mut store, &config(2)).unwrap(), written(1, 2));
    assert_eq!(
        std::fs::read(dir.join("config.1")).unwrap(),
        encode_record(2, config(2).to_text().as_bytes())
    );
    // A new store on the same directory (a reboot) sees the newest.
    assert_eq!(load(&mut FileStore::new(&dir)).unwrap(), Some(config(2)));
    // A torn write: the file truncated part way.
    let full = std::fs::read(dir.join("config.1")).unwrap();
    for at in [0, 1, HEADER_LEN - 1, HEADER_LEN, full.len() - 1] {
        std::fs::write(dir.join("config.1"), &full[..at]).unwrap();
        assert_eq!(load(&mut store).unwrap(), Some(config(1)), "torn at {at}");
    }
    std::fs::remove_file(dir.join("config.1")).unwrap();
    assert_eq!(load(&mut store).unwrap(), Some(config(1)));
    assert_eq!(save(&mut store, &config(3)).unwrap(), written(1, 2));
    assert_eq!(load(&mut store).unwrap(), Some(config(3)));
    assert!(store.read_slot(2).is_err());
    assert!(store.write_slot(2, b"x").is_err());
    assert!(
        store
            .write_slot(0, &vec![0; FileStore::CAPACITY + 1])
            .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // The directory must exist.
    let err = save(&mut FileStore::new(dir.join("missing")), &config(1)).unwrap_err();
    assert!(matches!(err, SaveError::Write { slot: 0, .. }), "{err:?}");
}

fn known(name: &str) -> bool {
    matches!(name, "sd0" | "sd0.1" | "sd0.2" | "ram0")
}

#[test]
fn boot_uses_the_saved_config() {
    // First boot: the defaults, started.
    let mut store = MemStore::new(4096);
    let b = boot(&mut store, known);
    assert_eq!(b.config, Config::default());
    assert!(b.start && b.problems.is_empty() && b.loaded_from.is_none());

    // A saved configuration starts when its autostart is on.
    save(&mut store, &config(1)).unwrap();
    let b = boot(&mut store, known);
    assert_eq!(
        (b.config, b.start, b.loaded_from),
        (config(1), true, Some(written(0, 1)))
    );
    let quiet = Config {
        autostart: false,
        ..config(2)
    };
    save(&mut store, &quiet).unwrap();
    let b = boot(&mut store, known);
    assert_eq!((&b.config, b.start, b.problems.len()), (&quiet, false, 0));

    // A saved configuration this board cannot serve is kept, but not started.
    let missing = Config {
        ums: vec![Entry::new("sd1.1")],
        ..config(3)
    };
    save(&mut store, &missing).unwrap();
    let b = boot(&mut store, known);
    assert_eq!((&b.config, b.start), (&missing, false));
    assert_eq!(
        b.problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "the saved configuration is not usable:\n  ums LUN 0 (sd1.1): \
          no device 'sd1.1' (devinfo lists the devices)"
        ]
    );

    // Nothing intact: the defaults, started, and the problem reported.
    store.set_slot(0, b"junk".to_vec());
    store.set_slot(1, b"junk".to_vec());
    let b = boot(&mut store, known);
    assert_eq!((&b.config, b.start), (&Config::default(), true));
    assert!(matches!(
        b.problems[..],
        [BootProblem::Load(LoadError::NoValidRecord { .. })]
    ));
    assert!(b.problems[0].to_string().ends_with("; using the defaults"));
}

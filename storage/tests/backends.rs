//! RAM and host-file backends: sizes, bounds, read-only, flush.

use lunbox_storage::{BlockDevice, FileDisk, FileDiskError, IoOp, RamDisk, StorageError};

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lunbox-storage-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn ram_disk_round_trip_and_bounds() {
    let mut d = RamDisk::new(16).unwrap();
    assert_eq!((d.num_blocks(), d.block_size()), (16, 512));
    let data: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    d.write(14, &data).unwrap();
    let mut back = vec![0; 1024];
    d.read(14, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(
        d.write(15, &data),
        Err(StorageError::OutOfRange {
            lba: 15,
            count: 2,
            capacity: 16
        })
    );
    assert_eq!(
        d.read(u64::MAX, &mut back),
        Err(StorageError::OutOfRange {
            lba: u64::MAX,
            count: 2,
            capacity: 16
        })
    );
    d.set_read_only(true);
    assert_eq!(d.write(0, &data), Err(StorageError::ReadOnly));
    assert_eq!(&d.as_bytes()[14 * 512..], &data[..]);
    assert!(
        RamDisk::new(u64::MAX).is_none(),
        "absurd sizes are refused, not a panic"
    );
    assert!(RamDisk::from_image(vec![0; 513]).is_err());
}

#[test]
fn a_ram_disk_over_a_region_uses_its_whole_blocks_in_place() {
    let mut region = vec![0xAAu8; 3 * 512 + 100];
    {
        let mut disk = RamDisk::over(&mut region);
        assert_eq!(
            disk.num_blocks(),
            3,
            "the partial block at the end is left out"
        );
        disk.write(2, &[7u8; 512]).unwrap();
        let mut back = [0u8; 512];
        disk.read(1, &mut back).unwrap();
        assert_eq!(back, [0xAA; 512], "the region's contents as they were");
        assert!(matches!(
            disk.write(3, &[0u8; 512]),
            Err(StorageError::OutOfRange { .. })
        ));
        disk.set_read_only(true);
        assert!(disk.write(0, &[0u8; 512]).is_err());
    }
    assert_eq!(&region[1024..1536], &[7u8; 512][..], "written in place");
    assert_eq!(&region[1536..], &[0xAA; 100][..], "the tail untouched");
}

#[test]
fn file_disk_round_trip_persists_and_flushes() {
    let path = temp_path("rt.img");
    {
        let mut d = FileDisk::create(&path, 32).unwrap();
        assert_eq!(d.num_blocks(), 32);
        d.write(31, &[7u8; 512]).unwrap();
        d.flush().unwrap();
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 32 * 512);
    let mut d = FileDisk::open(&path, false).unwrap();
    let mut buf = [0u8; 512];
    d.read(31, &mut buf).unwrap();
    assert_eq!(buf, [7u8; 512]);
    assert!(matches!(
        d.read(32, &mut buf),
        Err(StorageError::OutOfRange { .. })
    ));
}

#[test]
fn read_only_file_disk_refuses_writes_and_leaves_the_file_alone() {
    let path = temp_path("ro.img");
    std::fs::write(&path, vec![1u8; 4096]).unwrap();
    let mut d = FileDisk::open(&path, true).unwrap();
    assert!(d.is_read_only());
    assert_eq!(d.write(0, &[0u8; 512]), Err(StorageError::ReadOnly));
    d.flush().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), vec![1u8; 4096]);
}

#[test]
fn file_size_must_be_whole_blocks() {
    let path = temp_path("odd.img");
    std::fs::write(&path, vec![0u8; 1000]).unwrap();
    let err = FileDisk::open(&path, false).unwrap_err();
    assert!(matches!(err, FileDiskError::Size { bytes: 1000, .. }));
    assert!(
        err.to_string()
            .contains("not a whole number of 512-byte blocks"),
        "{err}"
    );
    let missing = FileDisk::open(temp_path("missing.img"), false).unwrap_err();
    assert!(missing.to_string().starts_with("cannot open"), "{missing}");
}

#[test]
fn a_file_that_shrinks_gives_an_io_error_with_the_block() {
    let path = temp_path("shrink.img");
    let mut d = FileDisk::create(&path, 8).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(512 * 4)
        .unwrap();
    let mut buf = [0u8; 512];
    assert_eq!(
        d.read(6, &mut buf),
        Err(StorageError::Io {
            lba: 6,
            op: IoOp::Read,
            reason: "file shrank under lunbox"
        })
    );
}

#[test]
fn media_slot_reports_absence_and_each_change_once() {
    use lunbox_storage::MediaSlot;
    let mut slot = MediaSlot::with(Box::new(RamDisk::new(8).unwrap()));
    assert!(slot.media_present());
    assert!(
        !slot.take_media_changed(),
        "a slot made with media has not changed"
    );
    slot.write(1, &[3u8; 512]).unwrap();
    let old = slot.eject().unwrap().expect("there was a medium");
    assert_eq!(old.num_blocks(), 8);
    assert!(!slot.media_present());
    assert_eq!(slot.num_blocks(), 0);
    let mut buf = [0u8; 512];
    assert_eq!(slot.read(0, &mut buf), Err(StorageError::NoMedia));
    assert_eq!(slot.write(0, &buf), Err(StorageError::NoMedia));
    assert!(slot.take_media_changed());
    assert!(!slot.take_media_changed(), "reported once");
    let mut ro = RamDisk::new(4).unwrap();
    ro.set_read_only(true);
    assert!(slot.insert(Box::new(ro)).is_none());
    assert!(slot.take_media_changed());
    assert!(slot.is_read_only());
    assert_eq!(slot.num_blocks(), 4);
    assert!(slot.eject().unwrap().is_some());
    assert!(slot.eject().unwrap().is_none());
}

#[test]
fn a_pulled_card_is_removed_without_a_flush() {
    use lunbox_storage::MediaSlot;
    /// A medium whose flush fails, as a card that is no longer there.
    struct Gone;
    impl BlockDevice for Gone {
        fn block_size(&self) -> u32 {
            512
        }
        fn num_blocks(&self) -> u64 {
            8
        }
        fn read(&mut self, lba: u64, _: &mut [u8]) -> Result<(), StorageError> {
            Err(StorageError::Io {
                lba,
                op: IoOp::Read,
                reason: "no card",
            })
        }
        fn write(&mut self, lba: u64, _: &[u8]) -> Result<(), StorageError> {
            Err(StorageError::Io {
                lba,
                op: IoOp::Write,
                reason: "no card",
            })
        }
        fn flush(&mut self) -> Result<(), StorageError> {
            Err(StorageError::Io {
                lba: 0,
                op: IoOp::Flush,
                reason: "no card",
            })
        }
        fn is_read_only(&self) -> bool {
            false
        }
    }
    let mut slot = MediaSlot::with(Box::new(Gone));
    assert!(slot.eject().is_err(), "eject flushes first, and refuses");
    assert!(slot.media_present());
    assert!(slot.remove(), "remove takes it out regardless");
    assert!(!slot.media_present());
    assert!(slot.take_media_changed());
    assert!(!slot.remove(), "nothing left to remove");
    assert!(
        !slot.take_media_changed(),
        "removing nothing changes nothing"
    );
}

/// An embedded-sdmmc device whose block `bad` cannot be read or written, and that counts how
/// often its error hook ran.
struct Flaky {
    bad: u32,
    data: std::cell::RefCell<Vec<u8>>,
    resets: std::cell::Cell<u32>,
}

impl embedded_sdmmc::BlockDevice for Flaky {
    type Error = StorageError;
    fn read(
        &self,
        blocks: &mut [embedded_sdmmc::Block],
        start: embedded_sdmmc::BlockIdx,
    ) -> Result<(), StorageError> {
        for (i, b) in blocks.iter_mut().enumerate() {
            let idx = start.0 + i as u32;
            if idx == self.bad {
                return Err(StorageError::NoMedia);
            }
            let at = idx as usize * 512;
            b.contents
                .copy_from_slice(&self.data.borrow()[at..at + 512]);
        }
        Ok(())
    }
    fn write(
        &self,
        blocks: &[embedded_sdmmc::Block],
        start: embedded_sdmmc::BlockIdx,
    ) -> Result<(), StorageError> {
        for (i, b) in blocks.iter().enumerate() {
            let idx = start.0 + i as u32;
            if idx == self.bad {
                return Err(StorageError::NoMedia);
            }
            let at = idx as usize * 512;
            self.data.borrow_mut()[at..at + 512].copy_from_slice(&b.contents);
        }
        Ok(())
    }
    fn num_blocks(&self) -> Result<embedded_sdmmc::BlockCount, StorageError> {
        Ok(embedded_sdmmc::BlockCount(64))
    }
}

#[test]
fn embedded_sdmmc_backend_pinpoints_the_failing_block() {
    use lunbox_storage::SdmmcBackend;
    let flaky = Flaky {
        bad: 21,
        data: std::cell::RefCell::new((0..64 * 512).map(|i| (i / 512) as u8).collect()),
        resets: std::cell::Cell::new(0),
    };
    let mut dev = SdmmcBackend::new(flaky)
        .unwrap()
        .on_error(|f| f.resets.set(f.resets.get() + 1));
    assert_eq!(dev.num_blocks(), 64);
    let mut buf = vec![0u8; 20 * 512];
    // Blocks 10..30 in chunks of 8: 10..18 fine, 18..26 fails; the search finds block 21.
    assert_eq!(
        dev.read(10, &mut buf),
        Err(StorageError::Io {
            lba: 21,
            op: IoOp::Read,
            reason: "block device error"
        })
    );
    assert!(
        buf[..11 * 512]
            .chunks(512)
            .enumerate()
            .all(|(i, b)| b.iter().all(|&x| x == 10 + i as u8))
    );
    assert_eq!(
        dev.write(20, &vec![0xEE; 4 * 512]),
        Err(StorageError::Io {
            lba: 21,
            op: IoOp::Write,
            reason: "block device error"
        })
    );
    assert_eq!(
        dev.inner().resets.get(),
        4,
        "the hook ran after each failed transfer"
    );
    dev.read(22, &mut buf[..512]).unwrap();
    assert_eq!(
        buf[0], 22,
        "blocks past the failing one are untouched by the failed write"
    );
}

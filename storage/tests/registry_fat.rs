//! The device registry (barebox-like names, GPT aliases) and FAT access through
//! embedded-sdmmc on whole disks, partition views and bare file systems.

mod common;

use std::ops::ControlFlow;

use common::*;
use embedded_sdmmc::{Mode, VolumeIdx, VolumeManager};
use lunbox_storage::{
    BlockDevice, DeviceRef, EntryKind, FixedTime, RamDisk, Registry, RegistryError, SdmmcDevice,
    SdmmcDeviceError, StorageError, share,
};

/// The root listing and two file contents of the FAT volume 0 of `dev`.
fn read_fat(dev: SdmmcDevice) -> (Vec<String>, String, usize) {
    let mgr: VolumeManager<_, _> = VolumeManager::new(dev, FixedTime::default());
    let volume = mgr.open_volume(VolumeIdx(0)).unwrap();
    let root = volume.open_root_dir().unwrap();
    let mut names = Vec::new();
    root.iterate_dir(|e| {
        names.push(e.name.to_string());
        ControlFlow::Continue(())
    })
    .unwrap();
    let hello = {
        let f = root.open_file_in_dir("HELLO.TXT", Mode::ReadOnly).unwrap();
        let mut buf = vec![0u8; f.length() as usize];
        assert_eq!(f.read(&mut buf).unwrap(), buf.len());
        String::from_utf8(buf).unwrap()
    };
    let docs = root.open_dir("DOCS").unwrap();
    let f = docs
        .open_file_in_dir("NUMBERS.TXT", Mode::ReadOnly)
        .unwrap();
    let mut text = Vec::new();
    let mut chunk = [0u8; 700];
    while !f.is_eof() {
        let n = f.read(&mut chunk).unwrap();
        text.extend_from_slice(&chunk[..n]);
    }
    let expected: String = (1..=5000).map(|n| format!("{n}\n")).collect();
    assert_eq!(String::from_utf8(text).unwrap(), expected);
    (names, hello, expected.len())
}

fn registry_with(name: &str, fixture_name: &str) -> Registry {
    let mut reg = Registry::new();
    reg.add_disk(name, shared(fixture(fixture_name)), "ram")
        .unwrap();
    reg
}

#[test]
fn mbr_partitions_get_barebox_names() {
    let mut reg = registry_with("img0", "mbr.img.gz");
    assert_eq!(reg.scan("img0"), Ok(4));
    let names: Vec<_> = reg.entries().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["img0", "img0.0", "img0.1", "img0.4", "img0.5"]);
    let listing = reg.list();
    assert_eq!(listing[1].blocks, 16384);
    assert_eq!(listing[1].description, "FAT16 LBA (0x0e)");
    assert_eq!(listing[4].description, "FAT32 LBA (0x0c)");
    assert_eq!(listing[0].bytes(), 48 << 20);
    match &reg.get("img0.4").unwrap().kind {
        EntryKind::Partition {
            parent, partition, ..
        } => {
            assert_eq!(parent, "img0");
            assert_eq!(partition.start, 28672);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gpt_partition_names_are_aliases() {
    let mut reg = registry_with("sd0", "gpt.img.gz");
    assert_eq!(reg.scan("sd0"), Ok(3));
    assert_eq!(reg.get("sd0.rootfs").unwrap().name, "sd0.1");
    assert_eq!(reg.get("sd0.boot").unwrap().name, "sd0.0");
    let listing = reg.list();
    assert_eq!(listing[3].label.as_deref(), Some("data"));
    assert_eq!(listing[3].aliases, ["sd0.data"]);
    assert_eq!(listing[1].description, "EFI System");
}

#[test]
fn partition_views_write_through_to_the_disk_at_the_right_offset() {
    let disk = shared(fixture("mbr.img.gz"));
    let mut reg = Registry::new();
    reg.add_disk("img0", disk.clone(), "ram").unwrap();
    reg.scan("img0").unwrap();
    let part = reg.device("img0.1").unwrap();
    part.lock().write(5, &[0xAB; 512]).unwrap();
    let mut buf = [0u8; 512];
    disk.lock().read(18432 + 5, &mut buf).unwrap();
    assert_eq!(buf, [0xAB; 512]);
    assert_eq!(
        part.lock().write(8192, &[0; 512]),
        Err(StorageError::OutOfRange {
            lba: 8192,
            count: 1,
            capacity: 8192
        })
    );
}

#[test]
fn rescanning_replaces_partitions_and_corrupt_tables_leave_none() {
    let disk = shared(fixture("mbr.img.gz"));
    let mut reg = Registry::new();
    reg.add_disk("img0", disk.clone(), "ram").unwrap();
    reg.scan("img0").unwrap();
    // Break the table: p2 now overlaps p1.
    let mut mbr = [0u8; 512];
    disk.lock().read(0, &mut mbr).unwrap();
    put32(&mut mbr, mbr_entry(0, 1) + 8, 3000);
    disk.lock().write(0, &mbr).unwrap();
    let err = reg.scan("img0").unwrap_err();
    assert_eq!(err.to_string(), "img0: partitions 0 and 1 overlap");
    assert_eq!(reg.entries().count(), 1, "the old partitions are gone");
    assert!(reg.get("img0.0").is_none());
}

#[test]
fn names_are_checked_and_unique() {
    let mut reg = Registry::new();
    let dev = || share(RamDisk::new(8).unwrap());
    assert_eq!(reg.next_name("ram"), "ram0");
    reg.add_disk("ram0", dev(), "ram").unwrap();
    assert_eq!(reg.next_name("ram"), "ram1");
    assert_eq!(
        reg.add_disk("ram0", dev(), "ram"),
        Err(RegistryError::Exists("ram0".into()))
    );
    for bad in ["", "0ram", "Ram", "ram.1", "ram 1", &"x".repeat(33)] {
        assert!(
            matches!(
                reg.add_disk(bad, dev(), "ram"),
                Err(RegistryError::BadName { .. })
            ),
            "{bad:?} accepted"
        );
    }
    assert_eq!(
        reg.scan("nope"),
        Err(RegistryError::NotFound("nope".into()))
    );
    assert_eq!(
        reg.device("nope").err().unwrap().to_string(),
        "no device 'nope' (list them with devinfo)"
    );
}

#[test]
fn removing_a_disk_removes_its_partitions_and_aliases() {
    let mut reg = registry_with("sd0", "gpt.img.gz");
    reg.add_disk("ram0", share(RamDisk::new(8).unwrap()), "ram")
        .unwrap();
    reg.scan("sd0").unwrap();
    assert_eq!(
        reg.remove("sd0.1"),
        Err(RegistryError::NotADisk("sd0.1".into()))
    );
    reg.remove("sd0").unwrap();
    let names: Vec<_> = reg.entries().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["ram0"]);
    assert!(reg.get("sd0.boot").is_none());
}

#[test]
fn fat_file_read_through_an_mbr_partition_view() {
    let mut reg = registry_with("img0", "mbr.img.gz");
    reg.scan("img0").unwrap();
    let dev = SdmmcDevice::volume(reg.device("img0.0").unwrap()).unwrap();
    let (names, hello, _) = read_fat(dev);
    assert!(names.contains(&"HELLO.TXT".to_string()), "{names:?}");
    assert!(names.contains(&"DOCS".to_string()), "{names:?}");
    assert_eq!(hello, "Hello from lunbox!\n");
}

#[test]
fn fat_file_read_through_a_gpt_partition_alias() {
    let mut reg = registry_with("sd0", "gpt.img.gz");
    reg.scan("sd0").unwrap();
    let dev = SdmmcDevice::volume(reg.device("sd0.boot").unwrap()).unwrap();
    assert_eq!(read_fat(dev).1, "Hello from lunbox!\n");
}

#[test]
fn fat_on_a_whole_mbr_disk_and_on_a_bare_filesystem() {
    let disk: DeviceRef = shared(fixture("mbr.img.gz"));
    assert_eq!(
        read_fat(SdmmcDevice::disk(disk).unwrap()).1,
        "Hello from lunbox!\n"
    );
    let bare: DeviceRef = shared(fixture("superfloppy.img.gz"));
    assert_eq!(
        read_fat(SdmmcDevice::volume(bare).unwrap()).1,
        "Hello from lunbox!\n"
    );
}

#[test]
fn the_synthetic_mbr_cannot_be_written() {
    use embedded_sdmmc::{Block, BlockDevice as _, BlockIdx};
    let dev = SdmmcDevice::volume(shared(fixture("superfloppy.img.gz"))).unwrap();
    assert_eq!(
        dev.write(&[Block::new()], BlockIdx(0)),
        Err(StorageError::ReadOnly)
    );
    let mut b = [Block::new()];
    dev.read(&mut b, BlockIdx(0)).unwrap();
    assert_eq!(&b[0].contents[510..], &[0x55, 0xAA]);
    assert_eq!(dev.num_blocks().unwrap().0, 4 * 2048 + 1);
}

#[test]
fn non_512_byte_devices_are_refused_for_fat() {
    struct Big;
    impl BlockDevice for Big {
        fn block_size(&self) -> u32 {
            4096
        }
        fn num_blocks(&self) -> u64 {
            1
        }
        fn read(&mut self, _: u64, _: &mut [u8]) -> Result<(), StorageError> {
            Ok(())
        }
        fn write(&mut self, _: u64, _: &[u8]) -> Result<(), StorageError> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), StorageError> {
            Ok(())
        }
        fn is_read_only(&self) -> bool {
            true
        }
    }
    assert_eq!(
        SdmmcDevice::disk(share(Big)).err(),
        Some(SdmmcDeviceError::BlockSize(4096))
    );
}

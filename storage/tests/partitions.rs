//! Partition tables written by real tools (sfdisk, sgdisk, mkfs.vfat), and corrupted ones.

mod common;

use common::*;
use lunbox_storage::part::{self, Guid, PartitionError, PartitionKind, Scheme};
use lunbox_storage::{BlockDevice, RamDisk};

fn table(image: Vec<u8>) -> Result<Option<part::PartitionTable>, PartitionError> {
    part::read_table(&mut disk(image))
}

#[test]
fn mbr_with_primaries_extended_and_logicals() {
    let t = table(fixture("mbr.img.gz")).unwrap().unwrap();
    assert_eq!(t.scheme, Scheme::Mbr);
    let got: Vec<_> = t
        .partitions
        .iter()
        .map(|p| match p.kind {
            PartitionKind::Mbr {
                type_id,
                bootable,
                logical,
            } => (p.index, p.start, p.blocks, type_id, bootable, logical),
            _ => panic!("not MBR"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 2048, 16384, 0x0e, true, false),
            (1, 18432, 8192, 0x83, false, false),
            (4, 28672, 8192, 0x83, false, true),
            (5, 38912, 16384, 0x0c, false, true),
        ]
    );
    assert_eq!(part::type_label(&t.partitions[0].kind), "FAT16 LBA (0x0e)");
}

#[test]
fn gpt_with_named_partitions() {
    let t = table(fixture("gpt.img.gz")).unwrap().unwrap();
    assert_eq!(t.scheme, Scheme::Gpt);
    assert!(!t.used_backup);
    let got: Vec<_> = t
        .partitions
        .iter()
        .map(|p| match &p.kind {
            PartitionKind::Gpt {
                name, type_guid, ..
            } => (
                p.index,
                p.start,
                p.blocks,
                name.as_str(),
                type_guid.to_string(),
            ),
            _ => panic!("not GPT"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                0,
                2048,
                16384,
                "boot",
                "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".to_string()
            ),
            (
                1,
                18432,
                16384,
                "rootfs",
                "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_string()
            ),
            (
                2,
                34816,
                8192,
                "data",
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7".to_string()
            ),
        ]
    );
    assert_eq!(part::type_label(&t.partitions[1].kind), "Linux filesystem");
}

#[test]
fn guid_text_round_trip() {
    let text = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    let g = Guid::parse(text).unwrap();
    assert_eq!(
        g.0[..4],
        [0x28, 0x73, 0x2A, 0xC1],
        "first field is little-endian on disk"
    );
    assert_eq!(g.to_string(), text);
    assert_eq!(Guid::parse("C12A7328F81F11D2BA4B00A0C93EC93B"), None);
    assert_eq!(Guid::parse("X12A7328-F81F-11D2-BA4B-00A0C93EC93B"), None);
}

#[test]
fn no_table_on_blank_disk_or_bare_filesystem() {
    assert_eq!(table(vec![0; 512 * 64]).unwrap(), None);
    assert_eq!(table(fixture("superfloppy.img.gz")).unwrap(), None);
    assert_eq!(
        part::read_table(&mut RamDisk::new(0).unwrap()).unwrap(),
        None
    );
}

#[test]
fn bad_primary_gpt_header_falls_back_to_the_backup() {
    let good = table(fixture("gpt.img.gz")).unwrap().unwrap();
    let mut image = fixture("gpt.img.gz");
    image[512 + 100] ^= 0xff; // inside the header's CRC'd range? no: header is 92 bytes
    image[512 + 24] ^= 0x01; // my_lba: breaks the header CRC
    let t = table(image).unwrap().unwrap();
    assert!(t.used_backup);
    assert_eq!(t.partitions, good.partitions);
}

#[test]
fn bad_primary_entry_array_falls_back_to_the_backup() {
    let good = table(fixture("gpt.img.gz")).unwrap().unwrap();
    let mut image = fixture("gpt.img.gz");
    let e = gpt_entry(&image, 0);
    image[e + 56] = b'X'; // the name of entry 0: breaks the array CRC
    let t = table(image).unwrap().unwrap();
    assert!(t.used_backup);
    assert_eq!(t.partitions, good.partitions);
}

#[test]
fn both_gpt_headers_bad_is_a_clear_error() {
    let mut image = fixture("gpt.img.gz");
    let last = image.len() - 512;
    image[512..520].copy_from_slice(b"EFI PARX");
    image[last + 16] ^= 0x55; // backup header CRC
    let err = table(image).unwrap_err();
    assert_eq!(
        err,
        PartitionError::BadGptHeader {
            primary: "has no \"EFI PART\" signature",
            backup: "fails its CRC32 check",
        }
    );
    assert!(
        err.to_string()
            .contains("primary header has no \"EFI PART\" signature")
    );
}

#[test]
fn overlapping_gpt_entries_are_refused() {
    let mut image = fixture("gpt.img.gz");
    let e = gpt_entry(&image, 1);
    put64(&mut image, e + 32, 18000); // rootfs now starts inside boot
    fix_gpt_crcs(&mut image, 1);
    // The backup still has the good table, but the primary is valid: its content is refused.
    assert_eq!(
        table(image).unwrap_err(),
        PartitionError::Overlap { a: 0, b: 1 }
    );
}

#[test]
fn gpt_entry_outside_the_usable_area_is_refused() {
    let mut image = fixture("gpt.img.gz");
    let e = gpt_entry(&image, 2);
    put64(&mut image, e + 40, 90_000); // past the end of the 40 MiB disk
    fix_gpt_crcs(&mut image, 1);
    assert!(matches!(
        table(image).unwrap_err(),
        PartitionError::OutsideDisk { index: 2, .. }
    ));
}

#[test]
fn gpt_entry_ending_before_it_starts_is_zero_size() {
    let mut image = fixture("gpt.img.gz");
    let e = gpt_entry(&image, 0);
    put64(&mut image, e + 40, 2047);
    fix_gpt_crcs(&mut image, 1);
    assert_eq!(
        table(image).unwrap_err(),
        PartitionError::ZeroSize { index: 0 }
    );
}

#[test]
fn gpt_with_an_absurd_entry_array_is_refused_without_allocating_it() {
    let mut image = fixture("gpt.img.gz");
    put32(&mut image, 512 + 80, u32::MAX); // entry count
    fix_gpt_crcs_header_only(&mut image, 1);
    let t = table(image).unwrap().unwrap();
    assert!(t.used_backup, "primary refused, backup used");
}

fn fix_gpt_crcs_header_only(image: &mut [u8], lba: usize) {
    let h = lba * 512;
    put32(image, h + 16, 0);
    let crc = crc32(&image[h..h + 92]);
    put32(image, h + 16, crc);
}

#[test]
fn overlapping_mbr_entries_are_refused() {
    let mut image = fixture("mbr.img.gz");
    put32(&mut image, mbr_entry(0, 1) + 8, 10_000); // p2 starts inside p1
    assert_eq!(
        table(image).unwrap_err(),
        PartitionError::Overlap { a: 0, b: 1 }
    );
}

#[test]
fn mbr_entry_past_the_disk_is_refused() {
    let mut image = fixture("mbr.img.gz");
    put32(&mut image, mbr_entry(0, 1) + 12, 1_000_000);
    let err = table(image).unwrap_err();
    assert!(
        matches!(
            err,
            PartitionError::OutsideDisk {
                index: 1,
                limit: 98304,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("outside the 98304 usable blocks"));
}

#[test]
fn mbr_entry_with_zero_size_is_refused() {
    let mut image = fixture("mbr.img.gz");
    put32(&mut image, mbr_entry(0, 1) + 12, 0);
    assert_eq!(
        table(image).unwrap_err(),
        PartitionError::ZeroSize { index: 1 }
    );
}

#[test]
fn mbr_partition_over_the_table_itself_is_refused() {
    let mut image = fixture("mbr.img.gz");
    put32(&mut image, mbr_entry(0, 0) + 8, 0);
    assert!(matches!(
        table(image).unwrap_err(),
        PartitionError::OutsideDisk { index: 0, .. }
    ));
}

#[test]
fn logical_partition_outside_its_extended_partition_is_refused() {
    let mut image = fixture("mbr.img.gz");
    let ebr = 28672 - 2048; // the first EBR sits 2048 blocks before its logical partition
    put32(&mut image, mbr_entry(ebr * 512, 0) + 12, 80_000);
    assert!(matches!(
        table(image).unwrap_err(),
        PartitionError::OutsideDisk { index: 4, .. }
    ));
}

#[test]
fn extended_chain_loop_is_refused() {
    let mut image = fixture("mbr.img.gz");
    let ext_start = 26624usize;
    // The second EBR links back to the first (offset 0 in the extended partition).
    let first_ebr = ext_start * 512;
    let link = get32(&image, mbr_entry(first_ebr, 1) + 8) as usize;
    let second_ebr = (ext_start + link) * 512;
    put32(&mut image, mbr_entry(second_ebr, 1) + 8, 0);
    put32(&mut image, mbr_entry(second_ebr, 1) + 12, 100);
    image[mbr_entry(second_ebr, 1) + 4] = 0x05;
    let err = table(image).unwrap_err();
    assert_eq!(
        err,
        PartitionError::BadExtended("the chain of logical partitions loops")
    );
}

#[test]
fn bad_ebr_signature_is_refused() {
    let mut image = fixture("mbr.img.gz");
    let first_ebr = 26624usize * 512;
    image[first_ebr + 511] = 0;
    assert_eq!(
        table(image).unwrap_err(),
        PartitionError::BadSignature {
            lba: 26624,
            what: "extended boot record"
        }
    );
}

#[test]
fn two_extended_partitions_are_refused() {
    let mut image = fixture("mbr.img.gz");
    let e = mbr_entry(0, 3);
    image[e + 4] = 0x0f;
    put32(&mut image, e + 8, 98_304 - 8);
    put32(&mut image, e + 12, 8);
    assert_eq!(
        table(image).unwrap_err(),
        PartitionError::BadExtended("more than one extended partition")
    );
}

#[test]
fn reading_a_table_never_reads_outside_the_disk() {
    // A GPT whose entry array claims to sit past the end of the disk.
    let mut image = fixture("gpt.img.gz");
    put64(&mut image, 512 + 72, 1 << 40);
    fix_gpt_crcs_header_only(&mut image, 1);
    let mut d = disk(image);
    let blocks = d.num_blocks();
    let t = part::read_table(&mut d).unwrap().unwrap();
    assert!(t.used_backup);
    assert!(t.partitions.iter().all(|p| p.start + p.blocks <= blocks));
}

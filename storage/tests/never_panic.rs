//! Partition-table parsing never panics, whatever the disk holds: random sectors, and the real
//! fixtures with random bytes changed. (The fuzz targets in storage/fuzz go further.)

mod common;

use common::*;
use lunbox_storage::part;
use lunbox_storage::{BlockDevice, RamDisk};
use proptest::prelude::*;

fn mbr() -> Vec<u8> {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| fixture("mbr.img.gz")).clone()
}

fn gpt() -> Vec<u8> {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| fixture("gpt.img.gz")).clone()
}

/// Parse, and check every reported partition lies inside the disk.
fn parse_checked(image: Vec<u8>) {
    let mut d = RamDisk::from_image(image).unwrap();
    let blocks = d.num_blocks();
    if let Ok(Some(t)) = part::read_table(&mut d) {
        for p in &t.partitions {
            assert!(p.blocks > 0 && p.start.checked_add(p.blocks).is_some_and(|e| e <= blocks));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_first_sectors(
        sectors in proptest::collection::vec(any::<u8>(), 512 * 4),
        extra_blocks in 0usize..64,
        signature in any::<bool>(),
        protective in any::<bool>(),
    ) {
        let mut image = sectors;
        image.resize(512 * (4 + extra_blocks), 0);
        if signature {
            image[510] = 0x55;
            image[511] = 0xAA;
        }
        if protective {
            image[446] = 0;
            image[450] = 0xEE;
            image[512..520].copy_from_slice(b"EFI PART");
        }
        parse_checked(image);
    }

    #[test]
    fn mutated_mbr_fixture(edits in proptest::collection::vec((0usize..(30_000 * 512), any::<u8>()), 1..16)) {
        let mut image = mbr();
        // Aim at the interesting sectors: the MBR and the EBRs.
        for (at, v) in edits {
            let sector = [0usize, 26624, 26624 + 2047, 28672 - 2048 + 8192 + 2048][at % 4];
            image[sector * 512 + (at / 4) % 512] = v;
        }
        parse_checked(image);
    }

    #[test]
    fn mutated_gpt_fixture(edits in proptest::collection::vec((0usize..(1 << 20), any::<u8>()), 1..16), fix in any::<bool>()) {
        let mut image = gpt();
        for (at, v) in edits {
            // Headers (block 1), the entry array (blocks 2..34) and the backup header.
            let block = [1usize, 2 + at % 32, image.len() / 512 - 1][at % 3];
            image[block * 512 + (at / 3) % 512] = v;
        }
        if fix {
            // Make the primary's CRCs right again, so the parser gets past them.
            let count = get32(&image, 512 + 80) as usize;
            let size = get32(&image, 512 + 84) as usize;
            let entries = get64(&image, 512 + 72) as usize;
            let plausible = size >= 128 && count.checked_mul(size).is_some_and(|b| b <= 1 << 16)
                && entries.checked_mul(512).is_some_and(|e| e + count * size <= image.len());
            let hsize = get32(&image, 512 + 12) as usize;
            if plausible && (92..=512).contains(&hsize) {
                fix_gpt_crcs(&mut image, 1);
            }
        }
        parse_checked(image);
    }
}

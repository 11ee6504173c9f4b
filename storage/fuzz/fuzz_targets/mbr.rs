//! Fuzz the MBR parser: the input is the disk (block 0 first, extended boot records after).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_storage::{BlockDevice, RamDisk, part};

fuzz_target!(|data: &[u8]| {
    let mut image = data.to_vec();
    // Whole blocks, at least one, with the MBR signature so the parser gets past it.
    image.resize(image.len().max(512).next_multiple_of(512), 0);
    image[510] = 0x55;
    image[511] = 0xAA;
    let mut disk = RamDisk::from_image(image).expect("whole blocks");
    let blocks = disk.num_blocks();
    if let Ok(Some(table)) = part::read_table(&mut disk) {
        for p in table.partitions {
            assert!(p.blocks > 0 && p.start + p.blocks <= blocks);
        }
    }
});

//! Fuzz the GPT parser: a protective MBR, then the input as blocks 1.. (headers and entries).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_storage::{BlockDevice, RamDisk, part};

fuzz_target!(|data: &[u8]| {
    let mut image = vec![0u8; 512];
    image[446 + 4] = 0xEE;
    image[446 + 8] = 1;
    image[510] = 0x55;
    image[511] = 0xAA;
    image.extend_from_slice(data);
    image.resize(image.len().max(1024).next_multiple_of(512), 0);
    let mut disk = RamDisk::from_image(image).expect("whole blocks");
    let blocks = disk.num_blocks();
    if let Ok(Some(table)) = part::read_table(&mut disk) {
        for p in table.partitions {
            assert!(p.blocks > 0 && p.start + p.blocks <= blocks);
        }
    }
});

//! Property test: random reads and writes across LUNs, at both packet sizes, always match a
//! model of the disks; out-of-range commands fail and change nothing.

mod common;

use common::*;
use lunbox_gadget::testing::DataPhase;
use lunbox_gadget::ums::{CswStatus, LunConfig, UmsConfig};
use lunbox_storage::{RamDisk, share};
use proptest::prelude::*;

const BLOCKS: [u64; 3] = [40, 7, 130];

#[derive(Debug, Clone)]
enum Op {
    Read { lun: u8, lba: u64, n: u16 },
    Write { lun: u8, lba: u64, n: u16, seed: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let lun = 0u8..3;
    let lba = prop_oneof![0u64..140, Just(u64::from(u32::MAX))];
    prop_oneof![
        (lun.clone(), lba.clone(), 0u16..70).prop_map(|(lun, lba, n)| Op::Read { lun, lba, n }),
        (lun, lba, 0u16..70, any::<u8>()).prop_map(|(lun, lba, n, seed)| Op::Write {
            lun,
            lba,
            n,
            seed
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_io_matches_the_model(ops in proptest::collection::vec(op(), 1..24), small in any::<bool>(), buffers in 2usize..4) {
        let mut model: Vec<Vec<u8>> = BLOCKS.iter().map(|&b| vec![0u8; b as usize * 512]).collect();
        let luns = BLOCKS.iter().map(|&b| LunConfig::new(Some(share(RamDisk::new(b).unwrap())), "m")).collect();
        let mut config = UmsConfig::new(luns);
        config.max_packet = if small { 64 } else { 512 };
        config.buffers = buffers;
        config.buffer_size = 4096;
        with_ums(config, |r| -> Result<(), TestCaseError> {
            for lun in 0..3 {
                r.settle(lun);
            }
            for op in &ops {
                match *op {
                    Op::Read { lun, lba, n } => {
                        let res = r.cmd(lun, &rw10(0x28, lba as u32, n), DataPhase::In(u32::from(n) * 512));
                        let blocks = BLOCKS[usize::from(lun)];
                        if lba + u64::from(n) <= blocks {
                            prop_assert_eq!(res.csw.status, CswStatus::Passed);
                            let at = lba as usize * 512;
                            prop_assert!(res.data == model[usize::from(lun)][at..at + usize::from(n) * 512]);
                        } else {
                            prop_assert_eq!(res.csw.status, CswStatus::Failed);
                            prop_assert!(res.data.is_empty());
                        }
                    }
                    Op::Write { lun, lba, n, seed } => {
                        let data: Vec<u8> = (0..usize::from(n) * 512).map(|i| seed.wrapping_add((i / 7) as u8)).collect();
                        let res = r.cmd(lun, &rw10(0x2A, lba as u32, n), DataPhase::Out(&data));
                        let blocks = BLOCKS[usize::from(lun)];
                        if lba + u64::from(n) <= blocks {
                            prop_assert_eq!(res.csw.status, CswStatus::Passed);
                            let at = lba as usize * 512;
                            model[usize::from(lun)][at..at + data.len()].copy_from_slice(&data);
                        } else {
                            prop_assert_eq!(res.csw.status, CswStatus::Failed);
                        }
                    }
                }
            }
            // Finally every disk, whole.
            for lun in 0..3u8 {
                let blocks = BLOCKS[usize::from(lun)] as u16;
                let all = r.cmd(lun, &rw10(0x28, 0, blocks), DataPhase::In(u32::from(blocks) * 512));
                prop_assert!(all.data == model[usize::from(lun)]);
            }
            Ok(())
        })?;
    }
}

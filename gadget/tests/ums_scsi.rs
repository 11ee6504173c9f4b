//! Every SCSI command the UMS function supports, and every sense it reports.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use lunbox_gadget::testing::DataPhase;
use lunbox_gadget::ums::{ControlError, CswStatus, LunConfig, UmsConfig};
use lunbox_storage::{DeviceRef, RamDisk, share};

const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];
const PASSED: CswStatus = CswStatus::Passed;
const FAILED: CswStatus = CswStatus::Failed;

fn device(d: TestDevice) -> DeviceRef {
    share(d)
}

#[test]
fn power_on_unit_attention_then_ready() {
    with_ums(one_lun(16, 512), |r| {
        let t = r.cmd(0, &TUR, DataPhase::None);
        assert_eq!(t.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (6, 0x29, 0), "POWER ON, RESET");
        assert_eq!(
            r.cmd(0, &TUR, DataPhase::None).csw.status,
            PASSED,
            "reported once"
        );
        assert_eq!(ksa(r.sense(0)), (0, 0, 0), "NO SENSE after success");
    });
}

#[test]
fn request_sense_fixed_and_descriptor_formats() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let bad = r.cmd(0, &[0xC7, 0, 0, 0, 0, 0], DataPhase::None);
        assert_eq!(bad.csw.status, FAILED);
        assert_eq!(
            ksa(r.sense(0)),
            (5, 0x20, 0),
            "INVALID COMMAND OPERATION CODE"
        );
        // Out of range read: descriptor format carries the information field too.
        r.cmd(0, &rw10(0x28, 16, 1), DataPhase::In(512));
        let d = r.cmd(0, &[0x03, 1, 0, 0, 252, 0], DataPhase::In(252));
        assert_eq!(d.data[0], 0x72);
        assert_eq!((d.data[1], d.data[2], d.data[3]), (5, 0x21, 0));
        // Short allocation length: only what was asked for.
        r.cmd(0, &[0xC7, 0, 0, 0, 0, 0], DataPhase::None);
        let short = r.cmd(0, &[0x03, 0, 0, 0, 8, 0], DataPhase::In(8));
        assert_eq!(short.data.len(), 8);
        assert_eq!(short.data[2], 5);
    });
}

#[test]
fn inquiry_standard_and_vital_product_data() {
    let mut lun = LunConfig::new(Some(ram(8)), "ram0");
    lun.vendor = "ACME".into();
    lun.product = "Widget Drive".into();
    lun.revision = "1.2".into();
    lun.serial = "SN-0042".into();
    lun.removable = false;
    with_ums(UmsConfig::new(vec![lun]), |r| {
        // INQUIRY does not report (or clear) the power-on unit attention.
        let s = r.cmd(0, &[0x12, 0, 0, 0, 96, 0], DataPhase::In(96));
        assert_eq!(s.csw.status, PASSED);
        assert_eq!(s.data.len(), 36);
        assert_eq!(s.csw.residue, 60, "case 5: less than asked");
        assert_eq!(s.data[1], 0, "not removable");
        assert_eq!(&s.data[8..16], b"ACME    ");
        assert_eq!(&s.data[16..32], b"Widget Drive    ");
        assert_eq!(&s.data[32..36], b"1.2 ");
        let p0 = r.cmd(0, &[0x12, 1, 0x00, 0, 255, 0], DataPhase::In(255));
        assert_eq!(&p0.data[..7], &[0, 0, 0, 3, 0x00, 0x80, 0x83]);
        let p80 = r.cmd(0, &[0x12, 1, 0x80, 0, 255, 0], DataPhase::In(255));
        assert_eq!(&p80.data[4..], b"SN-0042");
        let p83 = r.cmd(0, &[0x12, 1, 0x83, 0, 255, 0], DataPhase::In(255));
        assert_eq!(p83.data[1], 0x83);
        assert_eq!(p83.data[4..8], [0x02, 0x01, 0x00, 8 + 16 + 7]);
        assert_eq!(&p83.data[8..16], b"ACME    ");
        assert_eq!(
            ksa(r.sense(0)),
            (6, 0x29, 0),
            "REQUEST SENSE reports the pending UA"
        );
        let bad = r.cmd(0, &[0x12, 1, 0xB0, 0, 255, 0], DataPhase::In(255));
        assert_eq!(bad.csw.status, FAILED);
        assert!(bad.data_stalled, "no data: Bulk-In stalled");
        assert_eq!(ksa(r.sense(0)), (5, 0x24, 0));
        let cmddt = r.cmd(0, &[0x12, 2, 0, 0, 36, 0], DataPhase::In(36));
        assert_eq!(cmddt.csw.status, FAILED);
        let page_without_evpd = r.cmd(0, &[0x12, 0, 0x80, 0, 36, 0], DataPhase::In(36));
        assert_eq!(page_without_evpd.csw.status, FAILED);
    });
}

#[test]
fn read_capacity_10_and_16_at_size_edges() {
    let sizes = [1u64, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0001, 1 << 40];
    let luns = sizes
        .iter()
        .map(|&b| LunConfig::new(Some(device(TestDevice::new(b))), "t"))
        .collect();
    with_ums(UmsConfig::new(luns), |r| {
        for (lun, &blocks) in sizes.iter().enumerate() {
            let lun = lun as u8;
            r.settle(lun);
            let c10 = r.cmd(lun, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::In(8));
            let last = u32::from_be_bytes(c10.data[..4].try_into().unwrap());
            let want = u32::try_from(blocks - 1).unwrap_or(u32::MAX);
            assert_eq!(last, want, "{blocks} blocks");
            let mut cdb = [0u8; 16];
            cdb[0] = 0x9E;
            cdb[1] = 0x10;
            cdb[13] = 32;
            let c16 = r.cmd(lun, &cdb, DataPhase::In(32));
            assert_eq!(c16.csw.status, PASSED);
            assert_eq!(
                u64::from_be_bytes(c16.data[..8].try_into().unwrap()),
                blocks - 1
            );
            assert_eq!(&c16.data[8..12], &[0, 0, 2, 0]);
        }
    });
}

#[test]
fn read_and_write_in_every_cdb_size() {
    with_ums(one_lun(600, 512), |r| {
        r.settle(0);
        let data = |seed: u8, blocks: usize| -> Vec<u8> {
            (0..blocks * 512)
                .map(|i| seed.wrapping_add((i % 253) as u8))
                .collect()
        };
        // WRITE(6)/READ(6)
        let d6 = data(1, 2);
        let w = r.cmd(0, &[0x0A, 0, 0, 3, 2, 0], DataPhase::Out(&d6));
        assert_eq!(w.csw.status, PASSED);
        assert_eq!(
            r.cmd(0, &[0x08, 0, 0, 3, 2, 0], DataPhase::In(1024)).data,
            d6
        );
        // READ(6) with length 0 means 256 blocks.
        let r256 = r.cmd(0, &[0x08, 0, 0, 0, 0, 0], DataPhase::In(256 * 512));
        assert_eq!((r256.csw.status, r256.data.len()), (PASSED, 256 * 512));
        // (12) and (16)
        let d12 = data(2, 3);
        assert_eq!(
            r.cmd(0, &rw12(0xAA, 100, 3), DataPhase::Out(&d12))
                .csw
                .status,
            PASSED
        );
        assert_eq!(r.cmd(0, &rw12(0xA8, 100, 3), DataPhase::In(1536)).data, d12);
        let d16 = data(3, 5);
        assert_eq!(
            r.cmd(0, &rw16(0x8A, 595, 5), DataPhase::Out(&d16))
                .csw
                .status,
            PASSED
        );
        assert_eq!(r.cmd(0, &rw16(0x88, 595, 5), DataPhase::In(2560)).data, d16);
        // Zero-length READ(10)/WRITE(10) pass and move nothing.
        assert_eq!(
            r.cmd(0, &rw10(0x28, 599, 0), DataPhase::None).csw.status,
            PASSED
        );
        assert_eq!(
            r.cmd(0, &rw10(0x2A, 600, 0), DataPhase::None).csw.status,
            PASSED
        );
        // Large transfer crossing many buffers.
        let big = data(9, 300);
        assert_eq!(
            r.cmd(0, &rw10(0x2A, 200, 300), DataPhase::Out(&big))
                .csw
                .status,
            PASSED
        );
        assert_eq!(
            r.cmd(0, &rw10(0x28, 200, 300), DataPhase::In(300 * 512))
                .data,
            big
        );
    });
}

#[test]
fn lba_out_of_range_at_u32_and_u64_edges() {
    with_ums(one_lun(100, 512), |r| {
        r.settle(0);
        let cases: Vec<(Vec<u8>, u32)> = vec![
            (rw10(0x28, 99, 2).to_vec(), 1024),
            (rw10(0x28, 100, 1).to_vec(), 512),
            (rw10(0x28, u32::MAX, 2).to_vec(), 1024),
            (rw12(0xA8, u32::MAX, u32::MAX).to_vec(), 512),
            (rw16(0x88, u64::MAX, 2).to_vec(), 1024),
            (rw16(0x88, u64::MAX - 1, u32::MAX).to_vec(), 512),
            (rw16(0x88, 1 << 63, 1).to_vec(), 512),
        ];
        for (cdb, len) in cases {
            let res = r.cmd(0, &cdb, DataPhase::In(len));
            assert_eq!(res.csw.status, FAILED, "{cdb:02x?}");
            assert_eq!(res.csw.residue, len, "nothing moved");
            assert!(res.data.is_empty());
            assert_eq!(ksa(r.sense(0)), (5, 0x21, 0), "{cdb:02x?}");
        }
        let w = r.cmd(0, &rw16(0x8A, u64::MAX, 1), DataPhase::Out(&[0u8; 512]));
        assert_eq!(
            (w.csw.status, w.csw.residue, w.data_stalled),
            (FAILED, 512, true)
        );
        assert_eq!(ksa(r.sense(0)), (5, 0x21, 0));
        // A READ past the end of a zero-length range at the very end is still fine.
        assert_eq!(
            r.cmd(0, &rw10(0x28, 100, 0), DataPhase::None).csw.status,
            PASSED
        );
        assert_eq!(
            r.cmd(0, &rw10(0x28, 101, 0), DataPhase::None).csw.status,
            FAILED
        );
    });
}

#[test]
fn write_protected_lun_refuses_writes_and_keeps_the_backend() {
    let dev = ram(32);
    let before = {
        let mut b = vec![0u8; 32 * 512];
        dev.lock().read(0, &mut b).unwrap();
        b
    };
    let mut lun = LunConfig::new(Some(dev.clone()), "ram0");
    lun.read_only = true;
    with_ums(UmsConfig::new(vec![lun]), |r| {
        r.settle(0);
        let ms = r.cmd(0, &[0x1A, 0, 0x3F, 0, 255, 0], DataPhase::In(255));
        assert_eq!(ms.data[2] & 0x80, 0x80, "WP bit in MODE SENSE(6)");
        let ms10 = r.cmd(
            0,
            &[0x5A, 0, 0x08, 0, 0, 0, 0, 0, 255, 0],
            DataPhase::In(255),
        );
        assert_eq!(ms10.data[3] & 0x80, 0x80, "WP bit in MODE SENSE(10)");
        for cdb in [
            rw10(0x2A, 0, 4).to_vec(),
            rw16(0x8A, 8, 4).to_vec(),
            vec![0x0A, 0, 0, 1, 4, 0],
        ] {
            let w = r.cmd(0, &cdb, DataPhase::Out(&[0xEE; 2048]));
            assert_eq!((w.csw.status, w.csw.residue), (FAILED, 2048));
            assert_eq!(ksa(r.sense(0)), (7, 0x27, 0), "WRITE PROTECTED");
        }
    });
    let mut after = vec![0u8; 32 * 512];
    dev.lock().read(0, &mut after).unwrap();
    assert_eq!(before, after, "not one byte changed");
}

#[test]
fn read_only_device_is_write_protected_too() {
    let mut disk = RamDisk::new(8).unwrap();
    disk.set_read_only(true);
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(share(disk)), "ro")]),
        |r| {
            r.settle(0);
            let ms = r.cmd(0, &[0x1A, 0, 0x08, 0, 255, 0], DataPhase::In(255));
            assert_eq!(ms.data[2] & 0x80, 0x80);
            assert_eq!(
                ms.data[4 + 2] & 0x04,
                0,
                "no write cache on a read-only LUN"
            );
            assert_eq!(
                r.cmd(0, &rw10(0x2A, 0, 1), DataPhase::Out(&[0; 512]))
                    .csw
                    .status,
                FAILED
            );
        },
    );
}

#[test]
fn mode_sense_pages_and_mode_select() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let ms = r.cmd(0, &[0x1A, 0, 0x08, 0, 255, 0], DataPhase::In(255));
        assert_eq!(ms.data[0] as usize, ms.data.len() - 1, "mode data length");
        assert_eq!(ms.data[2] & 0x80, 0, "writable");
        assert_eq!(&ms.data[4..7], &[0x08, 18, 0x04], "caching page, WCE set");
        let changeable = r.cmd(0, &[0x1A, 0, 0x48, 0, 255, 0], DataPhase::In(255));
        assert_eq!(changeable.data[6], 0, "nothing changeable");
        for bad in [
            [0x1A, 0, 0x19, 0, 255, 0],
            [0x1A, 0, 0xC8, 0, 255, 0],
            [0x1A, 0, 0x08, 0x05, 255, 0],
        ] {
            let res = r.cmd(0, &bad, DataPhase::In(255));
            assert_eq!(res.csw.status, FAILED, "{bad:02x?}");
        }
        assert_eq!(ksa(r.sense(0)), (5, 0x24, 0));
        let saved = r.cmd(0, &[0x1A, 0, 0xC8, 0, 255, 0], DataPhase::In(255));
        assert_eq!(saved.csw.status, FAILED);
        // MODE SELECT(6): a header and the caching page back.
        let mut list = vec![0u8, 0, 0, 0];
        list.extend_from_slice(&ms.data[4..24]);
        list[4] &= 0x3F;
        let sel = r.cmd(
            0,
            &[0x15, 0x10, 0, 0, list.len() as u8, 0],
            DataPhase::Out(&list),
        );
        assert_eq!(sel.csw.status, PASSED);
        let bad_len = r.cmd(
            0,
            &[0x15, 0x10, 0, 0, 6, 0],
            DataPhase::Out(&[0, 0, 0, 0, 0x08, 18]),
        );
        assert_eq!(bad_len.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (5, 0x1A, 0), "PARAMETER LIST LENGTH ERROR");
        let bad_page = r.cmd(
            0,
            &[0x15, 0x10, 0, 0, 6, 0],
            DataPhase::Out(&[0, 0, 0, 0, 0x30, 0]),
        );
        assert_eq!(bad_page.csw.status, FAILED);
        assert_eq!(
            ksa(r.sense(0)),
            (5, 0x26, 0),
            "INVALID FIELD IN PARAMETER LIST"
        );
        let save = r.cmd(0, &[0x15, 0x11, 0, 0, 0, 0], DataPhase::None);
        assert_eq!(save.csw.status, FAILED);
        assert_eq!(
            ksa(r.sense(0)),
            (5, 0x39, 0),
            "SAVING PARAMETERS NOT SUPPORTED"
        );
        let sel10 = r.cmd(
            0,
            &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 8, 0],
            DataPhase::Out(&[0; 8]),
        );
        assert_eq!(sel10.csw.status, PASSED);
    });
}

#[test]
fn verify_with_and_without_byte_check() {
    with_ums(one_lun(32, 512), |r| {
        r.settle(0);
        let v0 = r.cmd(0, &[0x2F, 0, 0, 0, 0, 2, 0, 0, 8, 0], DataPhase::None);
        assert_eq!(v0.csw.status, PASSED);
        let mut same = vec![0u8; 4 * 512];
        for (i, b) in same.chunks_mut(512).enumerate() {
            b.fill(10 + i as u8);
        }
        let v1 = r.cmd(
            0,
            &[0x2F, 2, 0, 0, 0, 10, 0, 0, 4, 0],
            DataPhase::Out(&same),
        );
        assert_eq!(v1.csw.status, PASSED);
        same[2 * 512 + 100] ^= 1;
        let bad = r.cmd(
            0,
            &[0x2F, 2, 0, 0, 0, 10, 0, 0, 4, 0],
            DataPhase::Out(&same),
        );
        assert_eq!(bad.csw.status, FAILED);
        assert_eq!(
            r.sense(0),
            (0xE, 0x1D, 0, Some(1124)),
            "MISCOMPARE at byte 1124 of the data"
        );
        let range = r.cmd(0, &[0x2F, 0, 0, 0, 0, 30, 0, 0, 4, 0], DataPhase::None);
        assert_eq!(range.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (5, 0x21, 0));
        let bytchk3 = r.cmd(0, &[0x2F, 6, 0, 0, 0, 0, 0, 0, 1, 0], DataPhase::None);
        assert_eq!(bytchk3.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (5, 0x24, 0));
    });
}

#[test]
fn medium_errors_carry_the_failing_lba() {
    let mut t = TestDevice::new(64);
    t.bad_block = Some(37);
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(device(t)), "bad")]),
        |r| {
            r.settle(0);
            let read = r.cmd(0, &rw10(0x28, 30, 16), DataPhase::In(16 * 512));
            assert_eq!(read.csw.status, FAILED);
            assert!(
                read.data.len() < 7 * 512 + 1,
                "no data past the failing block"
            );
            assert_eq!(read.csw.residue as usize, 16 * 512 - read.data.len());
            assert_eq!(
                r.sense(0),
                (3, 0x11, 0, Some(37)),
                "UNRECOVERED READ ERROR at 37"
            );
            let write = r.cmd(0, &rw10(0x2A, 36, 2), DataPhase::Out(&[1u8; 1024]));
            assert_eq!(write.csw.status, FAILED);
            assert_eq!(r.sense(0), (3, 0x0C, 0, Some(37)), "WRITE ERROR at 37");
            let verify = r.cmd(0, &[0x2F, 0, 0, 0, 0, 32, 0, 0, 8, 0], DataPhase::None);
            assert_eq!(verify.csw.status, FAILED);
            assert_eq!(r.sense(0), (3, 0x11, 0, Some(37)));
            // Next commands work.
            assert_eq!(
                r.cmd(0, &rw10(0x28, 0, 1), DataPhase::In(512)).csw.status,
                PASSED
            );
        },
    );
}

#[test]
fn synchronize_cache_flushes_the_backend() {
    let t = TestDevice::new(16);
    let flushes = t.flushes.clone();
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(device(t)), "t")]),
        |r| {
            r.settle(0);
            assert_eq!(
                r.cmd(0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::None)
                    .csw
                    .status,
                PASSED
            );
            assert_eq!(flushes.get(), 1);
            let mut s16 = [0u8; 16];
            s16[0] = 0x91;
            assert_eq!(r.cmd(0, &s16, DataPhase::None).csw.status, PASSED);
            assert_eq!(flushes.get(), 2);
            // WRITE(10) with FUA flushes before the status.
            let mut w = rw10(0x2A, 0, 1);
            w[1] = 0x08;
            assert_eq!(r.cmd(0, &w, DataPhase::Out(&[5; 512])).csw.status, PASSED);
            assert_eq!(flushes.get(), 3);
        },
    );
}

#[test]
fn read_format_capacities_and_report_luns() {
    let luns = vec![
        LunConfig::new(Some(ram(100)), "a"),
        LunConfig::new(None, ""),
    ];
    with_ums(UmsConfig::new(luns), |r| {
        r.settle(0);
        let f = r.cmd(0, &[0x23, 0, 0, 0, 0, 0, 0, 0, 252, 0], DataPhase::In(252));
        assert_eq!(f.csw.status, PASSED);
        assert_eq!(f.data, [0, 0, 0, 8, 0, 0, 0, 100, 2, 0, 2, 0]);
        r.cmd(1, &TUR, DataPhase::None); // the power-on unit attention
        let empty = r.cmd(1, &[0x23, 0, 0, 0, 0, 0, 0, 0, 252, 0], DataPhase::In(252));
        assert_eq!(empty.data[8], 3, "no media present");
        let rl = r.cmd(
            0,
            &[0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            DataPhase::In(256),
        );
        assert_eq!(&rl.data[..4], &[0, 0, 0, 16]);
        assert_eq!(rl.data[8 + 1], 0);
        assert_eq!(rl.data[16 + 1], 1);
    });
}

#[test]
fn a_card_slot_lun_follows_its_card() {
    use lunbox_platform::coroutine::Mutex;
    use lunbox_storage::{BlockDevice, MediaSlot};
    // A LUN on a card slot (the Teensy's sd0): the device stays, its medium comes and goes.
    let slot = Rc::new(Mutex::new(MediaSlot::empty()));
    let dev: DeviceRef = slot.clone();
    let luns = vec![LunConfig::new(Some(dev), "sd0")];
    let capacity = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    with_ums(UmsConfig::new(luns), |r| {
        r.cmd(0, &TUR, DataPhase::None); // power-on UA
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(
            ksa(r.sense(0)),
            (2, 0x3A, 0),
            "empty slot: MEDIUM NOT PRESENT"
        );
        assert_eq!(ksa(r.sense(0)), (2, 0x3A, 0), "pollable");
        let rc = r.cmd(0, &capacity, DataPhase::In(8));
        assert_eq!((rc.csw.status, rc.data_stalled), (FAILED, true));
        let read = r.cmd(0, &rw10(0x28, 0, 1), DataPhase::In(512));
        assert_eq!(read.csw.status, FAILED);
        let l = &r.control.list()[0];
        assert_eq!((l.name.as_str(), l.present, l.blocks), ("sd0", false, 0));

        // A card goes in: one MEDIUM MAY HAVE CHANGED, then its size.
        slot.lock().insert(Box::new(RamDisk::new(64).unwrap()));
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (6, 0x28, 0), "MEDIUM MAY HAVE CHANGED");
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, PASSED);
        let rc = r.cmd(0, &capacity, DataPhase::In(8));
        assert_eq!(&rc.data[..4], &[0, 0, 0, 63]);
        let l = &r.control.list()[0];
        assert_eq!((l.name.as_str(), l.present, l.blocks), ("sd0", true, 64));

        // Pulled out: a change, then not ready again.
        assert!(slot.lock().remove());
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (6, 0x28, 0));
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (2, 0x3A, 0));
        assert!(!slot.lock().media_present());

        // The empty slot can still be ejected (by the host or the console), put back and
        // replaced: there is nothing to flush.
        let eject = [0x1B, 0, 0, 0, 0x02, 0];
        assert_eq!(r.cmd(0, &eject, DataPhase::None).csw.status, PASSED);
        assert!(!r.control.list()[0].present);
        assert_eq!(
            r.cmd(0, &[0x1B, 0, 0, 0, 0x03, 0], DataPhase::None)
                .csw
                .status,
            PASSED
        );
        assert_eq!(r.control.list()[0].name, "sd0", "loaded back");
        r.control.eject(0, false).unwrap();
        r.control.load(0).unwrap();
        r.control
            .set_backend(0, ram(8), "ram8", false, false)
            .unwrap();
        assert_eq!(r.control.list()[0].blocks, 8);
        r.control.remove(0, false).unwrap();
    });
}

#[test]
fn empty_lun_is_not_ready_until_a_medium_is_set() {
    let luns = vec![LunConfig::new(None, "")];
    with_ums(UmsConfig::new(luns), |r| {
        r.cmd(0, &TUR, DataPhase::None); // power-on UA
        let t = r.cmd(0, &TUR, DataPhase::None);
        assert_eq!(t.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (2, 0x3A, 0), "MEDIUM NOT PRESENT");
        assert_eq!(
            ksa(r.sense(0)),
            (2, 0x3A, 0),
            "and again: the condition is pollable"
        );
        let rc = r.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::In(8));
        assert_eq!((rc.csw.status, rc.data_stalled), (FAILED, true));
        r.control
            .set_backend(0, ram(40), "ram9", false, false)
            .unwrap();
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (6, 0x28, 0), "MEDIUM MAY HAVE CHANGED");
        let rc = r.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::In(8));
        assert_eq!(&rc.data[..4], &[0, 0, 0, 39]);
        let list = r.control.list();
        assert_eq!(
            (list[0].name.as_str(), list[0].blocks, list[0].present),
            ("ram9", 40, true)
        );
    });
}

#[test]
fn prevent_allow_start_stop_and_console_eject() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        assert_eq!(
            r.cmd(0, &[0x1E, 0, 0, 0, 1, 0], DataPhase::None).csw.status,
            PASSED
        );
        assert!(r.control.list()[0].prevented);
        assert_eq!(
            r.control.eject(0, false),
            Err(ControlError::RemovalPrevented(0))
        );
        let stop = r.cmd(0, &[0x1B, 0, 0, 0, 2, 0], DataPhase::None);
        assert_eq!(stop.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (5, 0x53, 2), "MEDIUM REMOVAL PREVENTED");
        assert_eq!(
            r.cmd(0, &[0x1E, 0, 0, 0, 0, 0], DataPhase::None).csw.status,
            PASSED
        );
        // The host ejects: NOT READY until it loads the medium again.
        assert_eq!(
            r.cmd(0, &[0x1B, 0, 0, 0, 2, 0], DataPhase::None).csw.status,
            PASSED
        );
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (2, 0x3A, 0));
        assert_eq!(
            r.cmd(0, &[0x1B, 0, 0, 0, 3, 0], DataPhase::None).csw.status,
            PASSED
        );
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, PASSED);
        // The console ejects: unit attention, then not ready; load brings it back.
        r.control.eject(0, false).unwrap();
        assert!(!r.control.list()[0].present);
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (6, 0x28, 0));
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (2, 0x3A, 0));
        r.control.load(0).unwrap();
        r.cmd(0, &TUR, DataPhase::None);
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, PASSED);
        // Forced eject while prevented.
        r.cmd(0, &[0x1E, 0, 0, 0, 1, 0], DataPhase::None);
        r.control.eject(0, true).unwrap();
        assert!(matches!(
            r.control.load(5),
            Err(ControlError::NoSuchLun { lun: 5, count: 1 })
        ));
    });
}

#[test]
fn read_only_toggle_and_backend_swap_raise_unit_attention() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        r.control.set_read_only(0, true).unwrap();
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (6, 0x28, 0));
        let ms = r.cmd(0, &[0x1A, 0, 0x3F, 0, 255, 0], DataPhase::In(255));
        assert_eq!(ms.data[2] & 0x80, 0x80);
        r.control.set_read_only(0, false).unwrap();
        r.cmd(0, &TUR, DataPhase::None);
        let w = r.cmd(0, &rw10(0x2A, 0, 1), DataPhase::Out(&[3; 512]));
        assert_eq!(w.csw.status, PASSED);
        // Swap in a bigger disk: the host sees the change and the new size.
        r.control
            .set_backend(0, ram(1000), "big", false, false)
            .unwrap();
        assert_eq!(r.cmd(0, &TUR, DataPhase::None).csw.status, FAILED);
        let rc = r.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::In(8));
        assert_eq!(&rc.data[..4], &999u32.to_be_bytes());
    });
}

#[test]
fn non_removable_lun_refuses_eject_and_swap() {
    let mut lun = LunConfig::new(Some(ram(8)), "fixed");
    lun.removable = false;
    with_ums(UmsConfig::new(vec![lun]), |r| {
        r.settle(0);
        let stop = r.cmd(0, &[0x1B, 0, 0, 0, 2, 0], DataPhase::None);
        assert_eq!(stop.csw.status, FAILED);
        assert_eq!(ksa(r.sense(0)), (5, 0x24, 0));
        assert_eq!(
            r.control.set_backend(0, ram(8), "x", false, false),
            Err(ControlError::NotRemovable(0))
        );
    });
}

#[test]
fn sync_cache_failure_and_flush_counter_are_per_lun() {
    let a = TestDevice::new(8);
    let fa: Rc<Cell<u32>> = a.flushes.clone();
    let b = TestDevice::new(8);
    let fb = b.flushes.clone();
    let luns = vec![
        LunConfig::new(Some(device(a)), "a"),
        LunConfig::new(Some(device(b)), "b"),
    ];
    with_ums(UmsConfig::new(luns), |r| {
        r.settle(1);
        r.cmd(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::None);
        assert_eq!((fa.get(), fb.get()), (0, 1));
    });
}

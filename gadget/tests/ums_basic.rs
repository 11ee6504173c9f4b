//! The mass-storage function end to end on the virtual bus: enumeration, descriptors, the
//! basic SCSI commands, reads and writes at both packet sizes.

mod common;

use common::*;
use lunbox_gadget::testing::DataPhase;
use lunbox_gadget::ums::CswStatus;

#[test]
fn enumerates_with_a_bulk_only_interface() {
    with_ums(one_lun(64, 512), |r| {
        assert_eq!(r.bot.mps, 512);
        assert_eq!(r.bot.get_max_lun(r.host).unwrap(), 0);
        assert_eq!(r.host.get_string(2).unwrap(), "test");
    });
}

#[test]
fn inquiry_read_capacity_and_read_write_round_trip() {
    for mps in [64u16, 512] {
        with_ums(one_lun(64, mps), |r| {
            let inq = r.cmd(0, &[0x12, 0, 0, 0, 36, 0], DataPhase::In(36));
            assert_eq!(inq.csw.status, CswStatus::Passed);
            assert_eq!(inq.data.len(), 36);
            assert_eq!(&inq.data[8..14], b"lunbox");
            assert_eq!(inq.data[1], 0x80, "removable");
            r.settle(0);
            let cap = r.cmd(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataPhase::In(8));
            assert_eq!(cap.csw.status, CswStatus::Passed);
            assert_eq!(cap.data, [0, 0, 0, 63, 0, 0, 2, 0]);
            let read = r.cmd(0, &rw10(0x28, 5, 3), DataPhase::In(3 * 512));
            assert_eq!(read.csw.status, CswStatus::Passed);
            assert_eq!(read.csw.residue, 0);
            assert_eq!(read.data.len(), 1536);
            assert!(read.data[..512].iter().all(|&b| b == 5));
            assert!(read.data[1024..].iter().all(|&b| b == 7));
            let data: Vec<u8> = (0..40 * 512).map(|i| (i * 7 % 251) as u8).collect();
            let w = r.cmd(0, &rw10(0x2A, 10, 40), DataPhase::Out(&data));
            assert_eq!((w.csw.status, w.csw.residue), (CswStatus::Passed, 0));
            let back = r.cmd(0, &rw10(0x28, 10, 40), DataPhase::In(40 * 512));
            assert_eq!(back.data, data);
        });
    }
}

//! Bulk-Only Transport: the thirteen cases of §6.7, invalid CBWs and Reset Recovery, LUN
//! routing, class requests, resets in the middle of a command.

mod common;

use common::*;
use lunbox_gadget::testing::{BotError, DataPhase, HostError, Setup};
use lunbox_gadget::ums::{CBW_SIGNATURE, Cbw, CswStatus, LunConfig, UmsConfig};

const TUR: [u8; 6] = [0; 6];

fn block(dev: &lunbox_storage::DeviceRef, lba: u64) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    dev.lock().read(lba, &mut b).unwrap();
    b
}

#[test]
fn case_1_6_12_exact_expectations() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let c1 = r.cmd(0, &TUR, DataPhase::None);
        assert_eq!((c1.csw.status, c1.csw.residue), (CswStatus::Passed, 0));
        let c6 = r.cmd(0, &rw10(0x28, 1, 2), DataPhase::In(1024));
        assert_eq!(
            (
                c6.csw.status,
                c6.csw.residue,
                c6.data.len(),
                c6.data_stalled
            ),
            (CswStatus::Passed, 0, 1024, false)
        );
        let c12 = r.cmd(0, &rw10(0x2A, 1, 2), DataPhase::Out(&[9; 1024]));
        assert_eq!(
            (c12.csw.status, c12.csw.residue, c12.sent),
            (CswStatus::Passed, 0, 1024)
        );
    });
}

#[test]
fn cases_2_and_3_host_expects_no_data() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let dev_before = r.cmd(0, &rw10(0x28, 4, 1), DataPhase::In(512)).data;
        let c2 = r.cmd(0, &rw10(0x28, 4, 1), DataPhase::None);
        assert_eq!((c2.csw.status, c2.csw.residue), (CswStatus::PhaseError, 0));
        r.bot.reset_recovery(r.host).unwrap();
        let c3 = r.cmd(0, &rw10(0x2A, 4, 1), DataPhase::None);
        assert_eq!((c3.csw.status, c3.csw.residue), (CswStatus::PhaseError, 0));
        r.bot.reset_recovery(r.host).unwrap();
        assert_eq!(
            r.cmd(0, &rw10(0x28, 4, 1), DataPhase::In(512)).data,
            dev_before,
            "nothing written"
        );
    });
}

#[test]
fn case_4_host_expects_data_the_command_has_none() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let c4 = r.cmd(0, &TUR, DataPhase::In(512));
        assert_eq!(
            (c4.csw.status, c4.csw.residue, c4.data_stalled),
            (CswStatus::Passed, 512, true)
        );
        assert!(c4.data.is_empty());
    });
}

#[test]
fn case_5_device_sends_less() {
    for mps in [64u16, 512] {
        with_ums(one_lun(16, mps), |r| {
            r.settle(0);
            // A short packet ends it: no stall needed.
            let inq = r.cmd(0, &[0x12, 0, 0, 0, 200, 0], DataPhase::In(200));
            assert_eq!(
                (inq.csw.status, inq.csw.residue, inq.data.len()),
                (CswStatus::Passed, 164, 36)
            );
            assert!(!inq.data_stalled);
            // A whole number of packets: the device stalls Bulk-In after the data.
            let rd = r.cmd(0, &rw10(0x28, 3, 1), DataPhase::In(4096));
            assert_eq!(
                (rd.csw.status, rd.csw.residue, rd.data.len()),
                (CswStatus::Passed, 3584, 512)
            );
            assert!(rd.data_stalled);
            assert!(
                rd.data.iter().all(|&b| b == 3),
                "the data came before the stall"
            );
        });
    }
}

#[test]
fn case_7_device_has_more_than_the_host_wants() {
    with_ums(one_lun(16, 64), |r| {
        r.settle(0);
        let c7 = r.cmd(0, &rw10(0x28, 2, 4), DataPhase::In(1000));
        assert_eq!((c7.csw.status, c7.csw.residue), (CswStatus::PhaseError, 0));
        assert_eq!(c7.data.len(), 1000, "exactly what the host asked for");
        assert!(c7.data[..512].iter().all(|&b| b == 2) && c7.data[512..].iter().all(|&b| b == 3));
        r.bot.reset_recovery(r.host).unwrap();
        assert_eq!(
            r.cmd(0, &TUR, DataPhase::None).csw.status,
            CswStatus::Passed
        );
    });
}

#[test]
fn case_8_host_in_device_out() {
    let dev = ram(16);
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(dev.clone()), "r")]),
        |r| {
            r.settle(0);
            let c8 = r.cmd(0, &rw10(0x2A, 5, 1), DataPhase::In(512));
            assert_eq!(
                (c8.csw.status, c8.csw.residue, c8.data_stalled),
                (CswStatus::PhaseError, 512, true)
            );
            r.bot.reset_recovery(r.host).unwrap();
        },
    );
    assert!(block(&dev, 5).iter().all(|&b| b == 5));
}

#[test]
fn case_9_host_sends_data_the_command_does_not_take() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let c9 = r.cmd(0, &TUR, DataPhase::Out(&[1; 512]));
        assert_eq!(
            (c9.csw.status, c9.csw.residue, c9.data_stalled),
            (CswStatus::Passed, 512, true)
        );
        assert_eq!(
            r.cmd(0, &TUR, DataPhase::None).csw.status,
            CswStatus::Passed
        );
    });
}

#[test]
fn case_10_host_out_device_in() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let c10 = r.cmd(0, &rw10(0x28, 0, 1), DataPhase::Out(&[1; 512]));
        assert_eq!(
            (c10.csw.status, c10.csw.residue, c10.data_stalled),
            (CswStatus::PhaseError, 512, true)
        );
        r.bot.reset_recovery(r.host).unwrap();
        assert_eq!(
            r.cmd(0, &TUR, DataPhase::None).csw.status,
            CswStatus::Passed
        );
    });
}

#[test]
fn case_11_host_sends_more_than_the_command_takes() {
    let dev = ram(16);
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(dev.clone()), "r")]),
        |r| {
            r.settle(0);
            let mut data = vec![0xA1u8; 512];
            data.extend_from_slice(&[0xB2; 1024]);
            let c11 = r.cmd(0, &rw10(0x2A, 6, 1), DataPhase::Out(&data));
            assert_eq!(
                (c11.csw.status, c11.csw.residue, c11.data_stalled),
                (CswStatus::Passed, 1024, true)
            );
        },
    );
    assert!(block(&dev, 6).iter().all(|&b| b == 0xA1));
    assert!(
        block(&dev, 7).iter().all(|&b| b == 7),
        "nothing beyond the command"
    );
}

#[test]
fn case_13_host_sends_less_than_the_command_needs() {
    let dev = ram(16);
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(dev.clone()), "r")]),
        |r| {
            r.settle(0);
            let c13 = r.cmd(0, &rw10(0x2A, 8, 2), DataPhase::Out(&[0xCC; 512]));
            assert_eq!(
                (c13.csw.status, c13.csw.residue),
                (CswStatus::PhaseError, 0)
            );
            r.bot.reset_recovery(r.host).unwrap();
            assert_eq!(
                r.cmd(0, &TUR, DataPhase::None).csw.status,
                CswStatus::Passed
            );
        },
    );
    assert!(
        block(&dev, 8).iter().all(|&b| b == 8),
        "a partial command writes nothing"
    );
}

fn valid_cbw() -> Cbw {
    let mut cb = [0u8; 16];
    cb[0] = 0x00;
    Cbw {
        tag: 7,
        data_len: 0,
        data_in: false,
        lun: 0,
        cb,
        cb_len: 6,
    }
}

#[test]
fn invalid_cbws_wedge_until_reset_recovery() {
    let mut bad: Vec<Vec<u8>> = Vec::new();
    let good = valid_cbw().to_bytes();
    bad.push(good[..30].to_vec()); // short
    let mut long = good.to_vec();
    long.push(0);
    bad.push(long); // 32 bytes
    let mut sig = good;
    sig[0] ^= 1;
    bad.push(sig.to_vec());
    let mut lun = good;
    lun[13] = 1; // one LUN only
    bad.push(lun.to_vec());
    let mut reserved = good;
    reserved[12] = 0x01;
    bad.push(reserved.to_vec());
    let mut cb0 = good;
    cb0[14] = 0;
    bad.push(cb0.to_vec());
    let mut cb17 = good;
    cb17[14] = 17;
    bad.push(cb17.to_vec());
    bad.push(vec![0u8; 512]); // a whole packet of zeros
    assert_eq!(
        u32::from_le_bytes(good[..4].try_into().unwrap()),
        CBW_SIGNATURE
    );
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        for raw in bad {
            r.bot.send_raw_cbw(r.host, &raw).unwrap();
            // No CSW: Bulk-In is halted.
            let csw = r.host.bulk_in(r.bot.ep_in, r.bot.mps, 13);
            assert!(
                matches!(csw, Err(HostError::Stalled { .. })),
                "{raw:02x?}: {csw:?}"
            );
            // CLEAR_FEATURE alone does not lift it.
            r.host.clear_halt(r.bot.ep_in).unwrap();
            r.host.clear_halt(r.bot.ep_out).unwrap();
            assert!(r.host.endpoint_halted(r.bot.ep_in).unwrap());
            assert!(r.host.endpoint_halted(r.bot.ep_out).unwrap());
            let again = r.bot.command(r.host, 0, &TUR, DataPhase::None);
            assert_eq!(again, Err(BotError::CbwStalled));
            r.bot.reset_recovery(r.host).unwrap();
            assert!(!r.host.endpoint_halted(r.bot.ep_in).unwrap());
            let ok = r.cmd(0, &TUR, DataPhase::None);
            assert_eq!(ok.csw.status, CswStatus::Passed, "{raw:02x?}");
        }
    });
}

#[test]
fn command_block_shorter_than_the_command_is_a_phase_error() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        let short = r.cmd(0, &rw10(0x28, 0, 1)[..6], DataPhase::In(512));
        assert_eq!(
            (short.csw.status, short.csw.residue),
            (CswStatus::PhaseError, 512)
        );
        r.bot.reset_recovery(r.host).unwrap();
        // Longer than needed is fine (Windows sends 12-byte blocks for 10-byte commands).
        let mut long = [0u8; 12];
        long[..10].copy_from_slice(&rw10(0x28, 0, 1));
        assert_eq!(
            r.cmd(0, &long, DataPhase::In(512)).csw.status,
            CswStatus::Passed
        );
    });
}

#[test]
fn luns_are_routed_to_their_backends() {
    let devs: Vec<_> = (0..3).map(|_| ram(8)).collect();
    for (i, d) in devs.iter().enumerate() {
        d.lock().write(0, &[0x10 * (i as u8 + 1); 512]).unwrap();
    }
    let luns = devs
        .iter()
        .enumerate()
        .map(|(i, d)| LunConfig::new(Some(d.clone()), &format!("ram{i}")))
        .collect();
    with_ums(UmsConfig::new(luns), |r| {
        assert_eq!(r.bot.get_max_lun(r.host).unwrap(), 2);
        for lun in 0..3u8 {
            r.settle(lun);
            let d = r.cmd(lun, &rw10(0x28, 0, 1), DataPhase::In(512)).data;
            assert!(d.iter().all(|&b| b == 0x10 * (lun + 1)), "LUN {lun}");
        }
        r.cmd(1, &rw10(0x2A, 3, 1), DataPhase::Out(&[0x77; 512]));
        let mut cbw = valid_cbw();
        cbw.lun = 3;
        r.bot.send_raw_cbw(r.host, &cbw.to_bytes()).unwrap();
        assert!(matches!(
            r.host.bulk_in(r.bot.ep_in, r.bot.mps, 13),
            Err(HostError::Stalled { .. })
        ));
        r.bot.reset_recovery(r.host).unwrap();
    });
    assert!(block(&devs[1], 3).iter().all(|&b| b == 0x77));
    assert!(block(&devs[0], 3).iter().all(|&b| b == 3));
    assert!(block(&devs[2], 3).iter().all(|&b| b == 3));
}

#[test]
fn sixteen_luns() {
    let luns = (0..16)
        .map(|i| LunConfig::new(Some(ram(4)), &format!("ram{i}")))
        .collect();
    with_ums(UmsConfig::new(luns), |r| {
        assert_eq!(r.bot.get_max_lun(r.host).unwrap(), 15);
        r.settle(15);
        assert_eq!(
            r.cmd(15, &rw10(0x28, 3, 1), DataPhase::In(512)).csw.status,
            CswStatus::Passed
        );
    });
}

#[test]
fn malformed_class_requests_are_stalled() {
    with_ums(one_lun(16, 512), |r| {
        let iface = u16::from(r.bot.interface);
        let bad_len = Setup {
            request_type: 0xA1,
            request: 0xFE,
            value: 0,
            index: iface,
            length: 2,
        };
        assert!(matches!(
            r.host.control_in(bad_len),
            Err(HostError::Stalled { .. })
        ));
        let bad_value = Setup {
            request_type: 0x21,
            request: 0xFF,
            value: 1,
            index: iface,
            length: 0,
        };
        assert!(matches!(
            r.host.control_out(bad_value, &[]),
            Err(HostError::Stalled { .. })
        ));
        let other_iface = Setup {
            request_type: 0xA1,
            request: 0xFE,
            value: 0,
            index: iface + 1,
            length: 1,
        };
        assert!(matches!(
            r.host.control_in(other_iface),
            Err(HostError::Stalled { .. })
        ));
        // EP0 recovers with the next SETUP.
        assert_eq!(r.bot.get_max_lun(r.host).unwrap(), 0);
        r.settle(0);
        assert_eq!(
            r.cmd(0, &TUR, DataPhase::None).csw.status,
            CswStatus::Passed
        );
    });
}

#[test]
fn reset_recovery_in_the_middle_of_a_read() {
    with_ums(one_lun(512, 64), |r| {
        r.settle(0);
        let cbw = Cbw {
            tag: 99,
            data_len: 256 * 512,
            data_in: true,
            lun: 0,
            cb: {
                let mut c = [0u8; 16];
                c[..10].copy_from_slice(&rw10(0x28, 0, 256));
                c
            },
            cb_len: 10,
        };
        r.bot.send_raw_cbw(r.host, &cbw.to_bytes()).unwrap();
        // Take a few packets, then give up on the command.
        let part = r.host.bulk_in(r.bot.ep_in, r.bot.mps, 640).unwrap();
        assert_eq!(part.len(), 640);
        r.bot.reset_recovery(r.host).unwrap();
        // The next command gets its own data and status, nothing stale.
        let d = r.cmd(0, &rw10(0x28, 300, 1), DataPhase::In(512));
        assert_eq!(d.csw.status, CswStatus::Passed);
        assert!(d.data.iter().all(|&b| b == (300 % 256) as u8));
    });
}

#[test]
fn reset_recovery_in_the_middle_of_a_write() {
    let dev = ram(512);
    with_ums(
        UmsConfig::new(vec![LunConfig::new(Some(dev.clone()), "r")]),
        |r| {
            r.settle(0);
            let cbw = Cbw {
                tag: 5,
                data_len: 64 * 512,
                data_in: false,
                lun: 0,
                cb: {
                    let mut c = [0u8; 16];
                    c[..10].copy_from_slice(&rw10(0x2A, 100, 64));
                    c
                },
                cb_len: 10,
            };
            r.bot.send_raw_cbw(r.host, &cbw.to_bytes()).unwrap();
            r.host
                .bulk_out(r.bot.ep_out, r.bot.mps, &[0xEE; 4096], false)
                .unwrap();
            r.bot.reset_recovery(r.host).unwrap();
            let t = r.cmd(0, &TUR, DataPhase::None);
            assert_eq!(t.csw.status, CswStatus::Passed);
            let d = r.cmd(0, &rw10(0x28, 200, 1), DataPhase::In(512));
            assert!(d.data.iter().all(|&b| b == 200));
        },
    );
}

#[test]
fn bus_reset_aborts_and_raises_power_on_attention() {
    with_ums(one_lun(16, 512), |r| {
        r.settle(0);
        r.cmd(0, &[0x1E, 0, 0, 0, 1, 0], DataPhase::None); // prevent removal
        r.host.port().bus_reset();
        let d = r.host.enumerate().unwrap();
        assert!(!d.interfaces.is_empty());
        assert_eq!(
            r.cmd(0, &TUR, DataPhase::None).csw.status,
            CswStatus::Failed
        );
        assert_eq!(ksa(r.sense(0)), (6, 0x29, 0));
        assert!(
            !r.control.list()[0].prevented,
            "a reset allows removal again"
        );
    });
}

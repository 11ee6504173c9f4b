//! DFU 1.1 through the virtual host: descriptors, downloads and uploads per target kind, the
//! state machine's error paths, poll timeouts, alternate settings and resets.

mod dfu_common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use dfu_common::{
    DfuHost, FlakyDisk, GatedTarget, contents, image, pattern, ram, ram_ro, stalled, with_dfu,
};
use lunbox_gadget::dfu::{
    ATTR_CAN_DOWNLOAD, ATTR_CAN_UPLOAD, ATTR_MANIFESTATION_TOLERANT, ATTR_WILL_DETACH, BlockTarget,
    DESCRIPTOR_FUNCTIONAL, DfuClass, DfuConfigError, DfuError, DfuState, DfuTarget, ImageSink,
    MAX_TARGETS, Progress, SinkTarget, StatusReport, TRANSFER_SIZE, TargetFlags, request,
};
use lunbox_gadget::testing::{Setup, VirtualBus, VirtualHost};
use lunbox_storage::{DeviceRef, share};
use usb_device::bus::UsbBusAllocator;

const R: TargetFlags = TargetFlags {
    read: true,
    safe: false,
};
const RS: TargetFlags = TargetFlags {
    read: true,
    safe: true,
};
const NONE: TargetFlags = TargetFlags {
    read: false,
    safe: false,
};

fn block(name: &str, dev: &DeviceRef, flags: TargetFlags) -> Box<dyn DfuTarget> {
    Box::new(BlockTarget::new(name, dev.clone(), flags))
}

/// wTransferSize in bytes.
const XFER: usize = TRANSFER_SIZE as usize;

/// Check `bytes` of the device against `expected`, and the rest against the pattern.
fn assert_device(dev: &DeviceRef, expected: &[u8]) {
    let now = contents(dev);
    let blocks = (now.len() / 512) as u64;
    assert_eq!(now[..expected.len()], *expected, "the image");
    assert_eq!(
        now[expected.len()..],
        pattern(blocks)[expected.len()..],
        "the rest of the device"
    );
}

// ---- descriptors -------------------------------------------------------------------------

#[test]
fn descriptors_alt_settings_strings_and_functional_descriptor() {
    let a = ram(8);
    let b = ram(8);
    let targets = vec![
        block("sd0.0", &a, NONE),
        block("sd0.rootfs", &b, RS),
        Box::new(GatedTarget::new("firmware")) as Box<dyn DfuTarget>,
    ];
    with_dfu(targets, |d| {
        let ifs = d.descriptors.interfaces.clone();
        assert_eq!(ifs.len(), 3, "one alternate setting per target");
        for (i, itf) in ifs.iter().enumerate() {
            assert_eq!(u16::from(itf.number), d.iface);
            assert_eq!(itf.alt, i as u8);
            assert_eq!(itf.class, (0xFE, 0x01, 0x02), "DFU mode");
            assert!(itf.endpoints.is_empty());
            assert_ne!(itf.string, 0);
        }
        // bNumInterfaces counts the interface once.
        assert_eq!(d.descriptors.config[4], 1);
        let names: Vec<String> = ifs
            .iter()
            .map(|i| d.host.get_string(i.string).unwrap())
            .collect();
        assert_eq!(names, ["sd0.0", "sd0.rootfs", "firmware"]);
        // One functional descriptor, after the last alternate setting.
        assert!(ifs[..2].iter().all(|i| i.extra.is_empty()));
        assert_eq!(ifs[2].extra.len(), 1);
        let f = d.functional();
        assert_eq!(
            f.attributes,
            ATTR_CAN_DOWNLOAD | ATTR_CAN_UPLOAD | ATTR_MANIFESTATION_TOLERANT
        );
        assert_eq!(f.attributes & ATTR_WILL_DETACH, 0);
        assert_eq!(f.detach_timeout_ms, 1000);
        assert_eq!(f.transfer_size, 4096);
        assert_eq!(f.transfer_size, TRANSFER_SIZE);
        assert_eq!(f.dfu_version, 0x0110);
        // GET_DESCRIPTOR(DFU functional) gives the same bytes, to the interface or device.
        for (rt, index) in [(0x81, d.iface), (0x80, 0)] {
            let raw = d
                .host
                .control_in(Setup {
                    request_type: rt,
                    request: 6,
                    value: u16::from(DESCRIPTOR_FUNCTIONAL) << 8,
                    index,
                    length: 9,
                })
                .unwrap();
            assert_eq!(raw, f.to_bytes());
        }
        // The starting state.
        let s = d.status();
        assert_eq!(
            s,
            StatusReport {
                status: None,
                poll_timeout_ms: 0,
                state: DfuState::Idle,
                string: 0
            }
        );
        assert_eq!(d.state(), DfuState::Idle);
        assert_eq!(d.get_alt(), 0);
    });
}

#[test]
fn can_upload_only_when_some_target_reads() {
    let a = ram(8);
    with_dfu(vec![block("a", &a, NONE), block("b", &a, NONE)], |d| {
        let f = d.functional();
        assert_eq!(
            f.attributes,
            ATTR_CAN_DOWNLOAD | ATTR_MANIFESTATION_TOLERANT
        );
        // bitCanUpload clear: UPLOAD is a request the device does not take.
        assert!(stalled(d.upload(0, 256)));
        d.expect_error(DfuError::StalledPkt);
    });
}

#[test]
fn target_count_is_checked() {
    let (bus, _port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    assert_eq!(
        DfuClass::new(&alloc, Vec::new()).err(),
        Some(DfuConfigError::TargetCount(0))
    );
    let dev = ram(1);
    let many: Vec<_> = (0..=MAX_TARGETS).map(|_| block("x", &dev, R)).collect();
    assert_eq!(
        DfuClass::new(&alloc, many).err(),
        Some(DfuConfigError::TargetCount(MAX_TARGETS + 1))
    );
    let most: Vec<_> = (0..MAX_TARGETS).map(|_| block("x", &dev, R)).collect();
    assert!(DfuClass::new(&alloc, most).is_ok());
}

#[test]
fn sixteen_targets_fit_the_configuration_descriptor() {
    let dev = ram(1);
    let names = [
        "t00", "t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08", "t09", "t10", "t11", "t12",
        "t13", "t14", "t15",
    ];
    let targets = names.iter().map(|n| block(n, &dev, R)).collect();
    with_dfu(targets, |d| {
        assert_eq!(d.descriptors.interfaces.len(), MAX_TARGETS);
        let last = d.descriptors.interfaces[15].string;
        assert_eq!(d.host.get_string(last).unwrap(), "t15");
        d.set_alt(15).unwrap();
        assert_eq!(d.get_alt(), 15);
    });
}

#[test]
fn flags_parse() {
    assert_eq!(TargetFlags::parse(""), Ok(NONE));
    assert_eq!(TargetFlags::parse("r"), Ok(R));
    assert_eq!(TargetFlags::parse("sr"), Ok(RS));
    assert_eq!(TargetFlags::parse("rx"), Err('x'));
}

// ---- block device target (direct) -------------------------------------------------------

#[test]
fn direct_download_and_upload_round_trip() {
    let dev = ram(64);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        // Not a whole number of blocks nor of transfers.
        let img = image(5000, 1);
        let s = d.download(&img);
        assert_eq!(
            (s.status, s.state, s.poll_timeout_ms),
            (None, DfuState::Idle, 0)
        );
        // The partial last block keeps its old tail.
        assert_device(&dev, &img);
        // Upload: the whole device, ending with an empty block (32 KiB is a whole number
        // of 256-byte transfers).
        let all = d.upload_all(256);
        assert_eq!(all, contents(&dev));
        // And with a transfer size that does not divide it: a short last block.
        let all = d.upload_all(200);
        assert_eq!(all, contents(&dev));
        // Again: a second download replaces the first.
        let img2 = image(1024, 2);
        assert_eq!(d.download(&img2).state, DfuState::Idle);
        let mut expect = img.clone();
        expect[..1024].copy_from_slice(&img2);
        assert_device(&dev, &expect);
    });
}

#[test]
fn direct_writes_as_data_arrives_and_the_tail_at_manifestation() {
    let dev = ram(16);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        let img = image(1280, 3); // 2.5 blocks
        d.send_blocks(&img[..256], 256).unwrap();
        // Half a block: held until complete.
        assert_eq!(contents(&dev), pattern(16));
        d.dnload(1, &img[256..512]).unwrap();
        assert_eq!(d.status().state, DfuState::DnloadIdle);
        assert_device(&dev, &img[..512]);
        d.dnload(2, &img[512..768]).unwrap();
        d.status();
        d.dnload(3, &img[768..1024]).unwrap();
        d.status();
        d.dnload(4, &img[1024..]).unwrap();
        d.status();
        // Two whole blocks written; the half block waits for the end of the download.
        assert_device(&dev, &img[..1024]);
        let s = d.manifest();
        assert_eq!((s.status, s.state), (None, DfuState::Idle));
        assert_device(&dev, &img);
    });
}

#[test]
fn direct_abort_keeps_what_was_written() {
    let dev = ram(16);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        let img = image(768, 4);
        d.send_blocks(&img, 256).unwrap();
        d.abort().unwrap();
        assert_eq!(d.state(), DfuState::Idle);
        // Block 0 was complete and written; the half of block 1 is dropped.
        assert_device(&dev, &img[..512]);
        // A new download starts again at offset 0.
        let img2 = image(512, 5);
        assert_eq!(d.download(&img2).state, DfuState::Idle);
        assert_device(&dev, &img2);
    });
}

#[test]
fn direct_flushes_at_manifestation() {
    let disk = FlakyDisk::new(8, None);
    let flushes = disk.flushes.clone();
    let dev: DeviceRef = share(disk);
    with_dfu(vec![block("d", &dev, R)], |d| {
        d.send_blocks(&image(1024, 6), 256).unwrap();
        assert_eq!(flushes.get(), 0);
        assert_eq!(d.manifest().state, DfuState::Idle);
        assert_eq!(flushes.get(), 1);
    });
}

#[test]
fn download_past_the_device_end_is_err_address() {
    let dev = ram(12); // 6144 bytes: one whole block of wTransferSize and a part
    with_dfu(vec![block("small", &dev, R)], |d| {
        let img = image(6400, 7);
        let s = d.download(&img);
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Address), DfuState::Error)
        );
        // Direct: the blocks before the one that crosses the end were written, nothing of
        // that one.
        assert_device(&dev, &img[..XFER]);
        d.expect_error(DfuError::Address);
        // Exactly the device's size is fine.
        let img = image(6144, 8);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&dev, &img);
    });
}

#[test]
fn read_only_device_is_err_write() {
    let dev = ram_ro(8);
    with_dfu(vec![block("ro", &dev, R)], |d| {
        d.dnload(0, &[1; 256]).unwrap();
        let s = d.status();
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Write), DfuState::Error)
        );
        d.expect_error(DfuError::Write);
        // Upload still works.
        assert_eq!(d.upload_all(256), pattern(8));
    });
}

#[test]
fn write_error_is_err_write() {
    let dev: DeviceRef = share(FlakyDisk::new(8, Some(1)));
    with_dfu(vec![block("flaky", &dev, R)], |d| {
        let s = d.download(&image(2048, 9));
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Write), DfuState::Error)
        );
        d.expect_error(DfuError::Write);
    });
}

// ---- block device target (safe) ---------------------------------------------------------

#[test]
fn safe_device_untouched_until_manifestation() {
    let dev = ram(32);
    with_dfu(vec![block("safe", &dev, RS)], |d| {
        let img = image(3000, 10);
        d.send_blocks(&img, 256).unwrap();
        assert_eq!(
            contents(&dev),
            pattern(32),
            "nothing written before manifestation"
        );
        // An upload meanwhile is not allowed (dfuDNLOAD-IDLE); after manifestation the
        // device has the image.
        let s = d.manifest();
        assert_eq!(
            (s.status, s.state, s.poll_timeout_ms),
            (None, DfuState::Idle, 0)
        );
        assert_device(&dev, &img);
        assert_eq!(d.upload_all(256), contents(&dev));
    });
}

#[test]
fn safe_abort_leaves_the_device_untouched() {
    let dev = ram(32);
    with_dfu(vec![block("safe", &dev, RS)], |d| {
        d.send_blocks(&image(4096, 11), 256).unwrap();
        d.abort().unwrap();
        assert_eq!(d.state(), DfuState::Idle);
        assert_eq!(contents(&dev), pattern(32));
        // An error mid-download too (a request not allowed: UPLOAD in dfuDNLOAD-IDLE).
        d.send_blocks(&image(1024, 12), 256).unwrap();
        assert!(stalled(d.upload(0, 256)));
        d.expect_error(DfuError::StalledPkt);
        assert_eq!(contents(&dev), pattern(32));
        // The next download starts from scratch: only its bytes land.
        let img = image(700, 13);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&dev, &img);
    });
}

#[test]
fn safe_too_large_is_err_address_and_untouched() {
    let dev = ram(4);
    let limited = ram(64);
    let targets = vec![
        block("small", &dev, RS),
        Box::new(BlockTarget::new("limited", limited.clone(), RS).with_stage_limit(1024))
            as Box<dyn DfuTarget>,
    ];
    with_dfu(targets, |d| {
        let s = d.download(&image(2304, 14));
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Address), DfuState::Error)
        );
        assert_eq!(contents(&dev), pattern(4));
        d.expect_error(DfuError::Address);
        d.set_alt(1).unwrap();
        let s = d.download(&image(1280, 15));
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Address), DfuState::Error)
        );
        assert_eq!(contents(&limited), pattern(64));
        d.expect_error(DfuError::Address);
        let img = image(1024, 16);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&limited, &img);
    });
}

#[test]
fn safe_manifestation_is_stepped_with_honest_poll_timeouts() {
    let dev = ram(512); // 256 KiB
    with_dfu(vec![block("safe", &dev, RS)], |d| {
        let img = image(100 * 1024 + 100, 17);
        d.send_blocks(&img, 256).unwrap();
        assert_eq!(contents(&dev), pattern(512));
        d.dnload(0, &[]).unwrap();
        // Manifestation writes 16 KiB per step; the host's requests so far gave it a few.
        let s = d.status();
        assert_eq!((s.status, s.state), (None, DfuState::Manifest));
        assert!(s.poll_timeout_ms >= 1);
        let now = contents(&dev);
        assert_ne!(now[..16 * 1024], pattern(512)[..16 * 1024], "started");
        assert_ne!(now[..img.len()], img[..], "not finished");
        let s = d.settle();
        assert_eq!(
            (s.status, s.state, s.poll_timeout_ms),
            (None, DfuState::Idle, 0)
        );
        assert_device(&dev, &img);
    });
}

// ---- dfuDNBUSY, dfuMANIFEST and poll timeouts -------------------------------------------

#[test]
fn dnbusy_until_the_write_is_done() {
    let t = GatedTarget::new("gated");
    let (open, log, img) = (t.open.clone(), t.log.clone(), t.image.clone());
    with_dfu(vec![Box::new(t)], |d| {
        open.set(false);
        d.dnload(0, &[1; 256]).unwrap();
        assert_eq!(d.state(), DfuState::DnloadSync);
        let s = d.status();
        assert_eq!(
            (s.status, s.state, s.poll_timeout_ms),
            (None, DfuState::DnBusy, 7)
        );
        // The host polled again (after the timeout): still busy, a fresh timeout.
        let s = d.status();
        assert_eq!((s.state, s.poll_timeout_ms), (DfuState::DnBusy, 7));
        // The write completes while the host waits out the poll timeout.
        open.set(true);
        d.host.step();
        let s = d.status();
        assert_eq!(
            (s.status, s.state, s.poll_timeout_ms),
            (None, DfuState::DnloadIdle, 0)
        );
        // Manifestation pending: dfuMANIFEST with its timeout, then dfuIDLE.
        open.set(false);
        d.dnload(1, &[]).unwrap();
        assert_eq!(d.state(), DfuState::ManifestSync);
        let s = d.status();
        assert_eq!((s.state, s.poll_timeout_ms), (DfuState::Manifest, 500));
        open.set(true);
        d.host.step();
        let s = d.status();
        assert_eq!(
            (s.status, s.state, s.poll_timeout_ms),
            (None, DfuState::Idle, 0)
        );
        assert_eq!(*img.borrow(), vec![1; 256]);
        assert_eq!(*log.borrow(), ["begin", "write", "finish", "committed"]);
    });
}

#[test]
fn requests_while_busy_stall_and_abort_the_download() {
    let t = GatedTarget::new("gated");
    let (open, log) = (t.open.clone(), t.log.clone());
    with_dfu(vec![Box::new(t)], |d| {
        // GETSTATE in dfuDNBUSY.
        open.set(false);
        d.dnload(0, &[1; 64]).unwrap();
        assert_eq!(d.status().state, DfuState::DnBusy);
        assert!(stalled(d.try_state()));
        d.expect_error(DfuError::StalledPkt);
        assert_eq!(*log.borrow(), ["begin", "write", "abort"]);
        // DNLOAD in dfuDNBUSY.
        log.borrow_mut().clear();
        d.dnload(0, &[1; 64]).unwrap();
        assert_eq!(d.status().state, DfuState::DnBusy);
        assert!(stalled(d.dnload(1, &[2; 64])));
        d.expect_error(DfuError::StalledPkt);
        assert_eq!(*log.borrow(), ["begin", "write", "abort"]);
        // ABORT in dfuMANIFEST.
        log.borrow_mut().clear();
        open.set(true);
        d.dnload(0, &[1; 64]).unwrap();
        assert_eq!(d.status().state, DfuState::DnloadIdle);
        open.set(false);
        d.dnload(1, &[]).unwrap();
        assert_eq!(d.status().state, DfuState::Manifest);
        assert!(stalled(d.abort()));
        d.expect_error(DfuError::StalledPkt);
        assert_eq!(*log.borrow(), ["begin", "write", "finish", "abort"]);
    });
}

#[test]
fn manifestation_failure_is_reported() {
    let mut t = GatedTarget::new("gated");
    t.manifest_result = Err(DfuError::Verify);
    let log = t.log.clone();
    with_dfu(vec![Box::new(t)], |d| {
        let s = d.download(&[5; XFER + 300]);
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Verify), DfuState::Error)
        );
        assert_eq!(
            *log.borrow(),
            ["begin", "write", "write", "finish", "committed", "abort"]
        );
        d.expect_error(DfuError::Verify);
    });
}

#[test]
fn poll_timeout_is_zero_when_nothing_is_pending() {
    // `dfu-util` sleeps bwPollTimeout after every block it is given: a block that is already
    // written must say 0, or the sleep dominates the download (direct and safe targets, whole
    // wTransferSize blocks and a short last one).
    let a = ram(32);
    let b = ram(32);
    with_dfu(vec![block("direct", &a, R), block("safe", &b, RS)], |d| {
        for alt in [0, 1] {
            d.set_alt(alt).unwrap();
            assert_eq!(d.status().poll_timeout_ms, 0);
            let img = image(3 * XFER + 700, 18);
            let chunks = img.chunks(XFER).count();
            for (i, c) in img.chunks(XFER).enumerate() {
                d.dnload(i as u16, c).unwrap();
                let s = d.status();
                assert_eq!(
                    (s.status, s.state, s.poll_timeout_ms),
                    (None, DfuState::DnloadIdle, 0),
                    "alt {alt} block {i}"
                );
            }
            d.dnload(chunks as u16, &[]).unwrap();
            let s = d.status();
            assert_eq!((s.state, s.poll_timeout_ms), (DfuState::Idle, 0));
        }
        assert_device(&a, &image(3 * XFER + 700, 18));
        assert_device(&b, &image(3 * XFER + 700, 18));
    });
}

#[test]
fn full_transfer_size_blocks_land_at_their_offsets() {
    // Blocks of wTransferSize (4096 bytes, one control transfer each) after a short first
    // block, so they start off the device's 512-byte blocks: each lands at the sum of the
    // lengths before it (wValue is only a counter), for a direct and a safe target, and
    // UPLOAD reads wTransferSize-byte blocks back from the right offsets.
    let a = ram(32); // 16 KiB
    let b = ram(32);
    with_dfu(vec![block("direct", &a, R), block("safe", &b, RS)], |d| {
        let img = image(100 + 2 * XFER + 1000, 40);
        let (first, rest) = img.split_at(100);
        let (full, last) = rest.split_at(2 * XFER);
        for (alt, dev) in [(0, &a), (1, &b)] {
            d.set_alt(alt).unwrap();
            d.dnload(0, first).unwrap();
            assert_eq!(d.status().state, DfuState::DnloadIdle);
            for (i, c) in full.chunks(XFER).enumerate() {
                assert_eq!(c.len(), 4096);
                d.dnload(1 + i as u16, c).unwrap();
                assert_eq!(d.status().state, DfuState::DnloadIdle);
            }
            if alt == 0 {
                // Direct: the whole 512-byte blocks covered so far are on the device.
                let covered = (100 + 2 * XFER) / 512 * 512;
                assert_eq!(contents(dev)[..covered], img[..covered]);
            } else {
                assert_eq!(
                    contents(dev),
                    pattern(32),
                    "safe: untouched until manifestation"
                );
            }
            d.dnload(3, last).unwrap();
            assert_eq!(d.status().state, DfuState::DnloadIdle);
            assert_eq!(d.manifest().state, DfuState::Idle);
            assert_device(dev, &img);
            // UPLOAD in wTransferSize blocks: full ones, then the short end of the device.
            let b0 = d.upload(0, TRANSFER_SIZE).unwrap();
            assert_eq!(b0, img[..XFER]);
            assert_eq!(d.state(), DfuState::UploadIdle);
            let b1 = d.upload(1, TRANSFER_SIZE).unwrap();
            assert_eq!(b1, img[XFER..2 * XFER]);
            d.abort().unwrap();
            assert_eq!(d.upload_all(TRANSFER_SIZE), contents(dev));
        }
    });
}

// ---- the state machine ------------------------------------------------------------------

#[test]
fn getstate_through_a_session() {
    let dev = ram(8);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        assert_eq!(d.state(), DfuState::Idle);
        d.dnload(0, &[1; 256]).unwrap();
        assert_eq!(d.state(), DfuState::DnloadSync);
        assert_eq!(d.state(), DfuState::DnloadSync, "GETSTATE changes nothing");
        assert_eq!(d.status().state, DfuState::DnloadIdle);
        assert_eq!(d.state(), DfuState::DnloadIdle);
        d.dnload(1, &[]).unwrap();
        assert_eq!(d.state(), DfuState::ManifestSync);
        assert_eq!(d.status().state, DfuState::Idle);
        assert_eq!(d.state(), DfuState::Idle);
        assert_eq!(d.upload(0, 256).unwrap().len(), 256);
        assert_eq!(d.state(), DfuState::UploadIdle);
        assert_eq!(d.status().state, DfuState::UploadIdle);
        d.abort().unwrap();
        assert_eq!(d.state(), DfuState::Idle);
        assert!(stalled(d.clrstatus()));
        assert_eq!(d.state(), DfuState::Error);
        assert_eq!(d.status().state, DfuState::Error);
        d.clrstatus().unwrap();
        assert_eq!(d.state(), DfuState::Idle);
        // ABORT, DETACH and GETSTATUS in dfuIDLE stay there.
        d.abort().unwrap();
        d.detach().unwrap();
        assert_eq!(d.status().state, DfuState::Idle);
        assert_eq!(d.state(), DfuState::Idle);
    });
}

/// Put the device into `state` on a fresh session (dfuIDLE first).
fn enter(d: &mut DfuHost<'_, '_>, state: DfuState) {
    assert_eq!(d.state(), DfuState::Idle);
    match state {
        DfuState::Idle => {}
        DfuState::DnloadSync => d.dnload(0, &[1; 256]).unwrap(),
        DfuState::DnloadIdle => d.send_blocks(&[1; 256], 256).unwrap(),
        DfuState::ManifestSync => {
            d.send_blocks(&[1; 256], 256).unwrap();
            d.dnload(1, &[]).unwrap();
        }
        DfuState::UploadIdle => {
            d.upload(0, 256).unwrap();
        }
        DfuState::Error => {
            assert!(stalled(d.clrstatus()));
        }
        other => unreachable!("{other}"),
    }
    assert_eq!(d.state(), state);
}

/// A request that is not allowed: it stalls, the device enters dfuERROR with
/// errSTALLEDPKT, and CLRSTATUS gets it back to dfuIDLE.
fn not_allowed(
    d: &mut DfuHost<'_, '_>,
    state: DfuState,
    what: &str,
    req: impl FnOnce(&mut DfuHost<'_, '_>) -> bool,
) {
    enter(d, state);
    assert!(req(d), "{what} in {state} should stall");
    let s = d.status();
    assert_eq!(
        (s.status, s.state),
        (Some(DfuError::StalledPkt), DfuState::Error),
        "{what} in {state}"
    );
    d.clrstatus().unwrap();
    assert_eq!(d.state(), DfuState::Idle);
}

type Req = fn(&mut DfuHost<'_, '_>) -> bool;

#[test]
fn requests_not_allowed_stall_into_dfu_error() {
    let dev = ram(64);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        let dnload: Req = |d| stalled(d.dnload(9, &[2; 256]));
        let dnload0: Req = |d| stalled(d.dnload(9, &[]));
        let upload: Req = |d| stalled(d.upload(0, 256));
        let clrstatus: Req = |d| stalled(d.clrstatus());
        let abort: Req = |d| stalled(d.abort());
        let detach: Req = |d| stalled(d.detach());
        let unknown_out: Req = |d| stalled(d.out(7, 0, &[]));
        let unknown_in: Req = |d| stalled(d.inp(7, 0, 4));
        let getstatus_out: Req = |d| stalled(d.out(request::GETSTATUS, 0, &[]));
        let dnload_in: Req = |d| stalled(d.inp(request::DNLOAD, 0, 16));
        let upload_empty: Req = |d| stalled(d.upload(0, 0));
        let upload_big: Req = |d| stalled(d.upload(0, TRANSFER_SIZE + 1));
        let cases: &[(DfuState, &str, Req)] = &[
            (DfuState::Idle, "zero-length DNLOAD", dnload0),
            (DfuState::Idle, "CLRSTATUS", clrstatus),
            (DfuState::Idle, "request 7 (OUT)", unknown_out),
            (DfuState::Idle, "request 7 (IN)", unknown_in),
            (DfuState::Idle, "GETSTATUS as OUT", getstatus_out),
            (DfuState::Idle, "DNLOAD as IN", dnload_in),
            (DfuState::Idle, "UPLOAD of 0 bytes", upload_empty),
            (DfuState::Idle, "UPLOAD above wTransferSize", upload_big),
            (DfuState::DnloadSync, "DNLOAD", dnload),
            (DfuState::DnloadSync, "zero-length DNLOAD", dnload0),
            (DfuState::DnloadSync, "UPLOAD", upload),
            (DfuState::DnloadSync, "ABORT", abort),
            (DfuState::DnloadSync, "CLRSTATUS", clrstatus),
            (DfuState::DnloadSync, "DETACH", detach),
            (DfuState::DnloadIdle, "UPLOAD", upload),
            (DfuState::DnloadIdle, "CLRSTATUS", clrstatus),
            (DfuState::DnloadIdle, "DETACH", detach),
            (DfuState::DnloadIdle, "request 7 (OUT)", unknown_out),
            (DfuState::ManifestSync, "DNLOAD", dnload),
            (DfuState::ManifestSync, "UPLOAD", upload),
            (DfuState::ManifestSync, "ABORT", abort),
            (DfuState::ManifestSync, "CLRSTATUS", clrstatus),
            (DfuState::UploadIdle, "DNLOAD", dnload),
            (DfuState::UploadIdle, "zero-length DNLOAD", dnload0),
            (DfuState::UploadIdle, "CLRSTATUS", clrstatus),
            (DfuState::UploadIdle, "DETACH", detach),
            (
                DfuState::UploadIdle,
                "UPLOAD above wTransferSize",
                upload_big,
            ),
        ];
        for &(state, what, req) in cases {
            not_allowed(d, state, what, req);
        }
    });
}

#[test]
fn dfu_error_keeps_its_status_until_clrstatus() {
    let dev = ram(2);
    with_dfu(vec![block("tiny", &dev, R)], |d| {
        let s = d.download(&image(1536, 19));
        assert_eq!(s.status, Some(DfuError::Address));
        // Requests not allowed in dfuERROR stall; the status stays the first error.
        assert!(stalled(d.dnload(0, &[1; 16])));
        assert!(stalled(d.upload(0, 256)));
        assert!(stalled(d.abort()));
        assert!(stalled(d.detach()));
        assert_eq!(d.state(), DfuState::Error);
        let s = d.status();
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Address), DfuState::Error)
        );
        d.expect_error(DfuError::Address);
        // The status after CLRSTATUS is OK and stays so.
        assert_eq!(d.status().status, None);
    });
}

#[test]
fn dnload_longer_than_the_control_buffer_is_refused() {
    let dev = ram(8);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        // wTransferSize is usb-device's whole control buffer, so a longer DNLOAD never
        // reaches the class (the class's own check is unreachable): usb-device refuses it
        // (on the virtual bus the data stage is never taken and the host gives up; over
        // USB/IP the transfer fails with EPIPE), the DFU state does not change, and the next
        // download works.
        assert!(d.dnload(0, &[1; XFER + 1]).is_err());
        assert_eq!(d.state(), DfuState::Idle);
        assert_eq!(d.status().status, None);
        assert_eq!(contents(&dev), pattern(8));
        let img = image(XFER, 31);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&dev, &img);
    });
}

#[test]
fn upload_to_a_target_without_r_is_err_target() {
    let a = ram(8);
    let b = ram(8);
    with_dfu(vec![block("r", &a, R), block("w", &b, NONE)], |d| {
        assert_ne!(d.functional().attributes & ATTR_CAN_UPLOAD, 0);
        d.set_alt(1).unwrap();
        assert!(stalled(d.upload(0, 256)));
        d.expect_error(DfuError::Target);
        // Download to it works.
        let img = image(512, 20);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&b, &img);
        d.set_alt(0).unwrap();
        assert_eq!(d.upload_all(256), pattern(8));
    });
}

#[test]
fn upload_ends_with_a_short_block() {
    let dev = ram(1);
    with_dfu(vec![block("one", &dev, R)], |d| {
        let b = d.upload(0, 256).unwrap();
        assert_eq!(b.len(), 256);
        assert_eq!(d.state(), DfuState::UploadIdle);
        let b = d.upload(1, 200).unwrap();
        assert_eq!(b.len(), 200);
        let b = d.upload(2, 256).unwrap();
        assert_eq!(b.len(), 56, "the end of the device");
        assert_eq!(d.state(), DfuState::Idle);
        // A new upload starts at 0.
        assert_eq!(d.upload(0, 100).unwrap(), pattern(1)[..100]);
        d.abort().unwrap();
        assert_eq!(d.state(), DfuState::Idle);
    });
    // An empty device: the first UPLOAD is already short.
    let empty: DeviceRef = share(lunbox_storage::RamDisk::new(0).unwrap());
    with_dfu(vec![block("empty", &empty, R)], |d| {
        assert_eq!(d.upload(0, 256).unwrap(), Vec::<u8>::new());
        assert_eq!(d.state(), DfuState::Idle);
    });
}

#[test]
fn zero_length_dnload_ends_the_download_and_manifests() {
    let t = GatedTarget::new("gated");
    let (log, img) = (t.log.clone(), t.image.clone());
    with_dfu(vec![Box::new(t)], |d| {
        d.send_blocks(&image(600, 21), 256).unwrap();
        assert_eq!(*log.borrow(), ["begin", "write", "write", "write"]);
        d.dnload(3, &[]).unwrap();
        assert_eq!(d.state(), DfuState::ManifestSync);
        let s = d.status();
        assert_eq!((s.status, s.state), (None, DfuState::Idle));
        assert_eq!(
            *log.borrow(),
            ["begin", "write", "write", "write", "finish", "committed"]
        );
        assert_eq!(*img.borrow(), image(600, 21));
        // The uploaded image is what was downloaded.
        assert_eq!(d.upload_all(256), image(600, 21));
    });
}

// ---- alternate settings, DETACH, resets ---------------------------------------------------

#[test]
fn set_interface_selects_the_target_only_when_nothing_is_in_progress() {
    let a = ram(8);
    let b = ram(8);
    with_dfu(vec![block("a", &a, RS), block("b", &b, RS)], |d| {
        // Out of range.
        assert!(stalled(d.set_alt(2)));
        assert_eq!(d.get_alt(), 0);
        // During a download: refused, the download goes on.
        d.send_blocks(&image(512, 22), 256).unwrap();
        assert!(stalled(d.set_alt(1)));
        assert_eq!(d.state(), DfuState::DnloadIdle);
        assert_eq!(d.get_alt(), 0);
        // The current setting is always accepted.
        d.set_alt(0).unwrap();
        assert_eq!(d.state(), DfuState::DnloadIdle);
        assert_eq!(d.manifest().state, DfuState::Idle);
        assert_device(&a, &image(512, 22));
        // During an upload: refused.
        d.upload(0, 256).unwrap();
        assert!(stalled(d.set_alt(1)));
        assert_eq!(d.state(), DfuState::UploadIdle);
        d.abort().unwrap();
        // In dfuERROR: accepted (the error stays until CLRSTATUS).
        assert!(stalled(d.clrstatus()));
        d.set_alt(1).unwrap();
        assert_eq!(d.get_alt(), 1);
        d.expect_error(DfuError::StalledPkt);
        // In dfuIDLE: accepted; the download goes to the selected target.
        let img = image(1000, 23);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&b, &img);
        assert_device(&a, &image(512, 22));
    });
}

#[test]
fn detach_in_dfu_mode_does_nothing() {
    let dev = ram(8);
    with_dfu(vec![block("ram0", &dev, R)], |d| {
        d.detach().unwrap();
        let s = d.status();
        assert_eq!((s.status, s.state), (None, DfuState::Idle));
        assert_eq!(d.functional().attributes & ATTR_WILL_DETACH, 0);
    });
}

#[test]
fn bus_reset_and_set_configuration_end_a_download() {
    let dev = ram(16);
    let other = ram(16);
    with_dfu(vec![block("safe", &dev, RS), block("b", &other, R)], |d| {
        d.set_alt(1).unwrap();
        d.set_alt(0).unwrap();
        d.send_blocks(&image(2048, 24), 256).unwrap();
        d.host.port().bus_reset();
        d.descriptors = d.host.enumerate().unwrap();
        let s = d.status();
        assert_eq!((s.status, s.state), (None, DfuState::Idle));
        assert_eq!(contents(&dev), pattern(16), "the staged image was dropped");
        // SET_CONFIGURATION does the same and selects alternate setting 0.
        d.set_alt(1).unwrap();
        d.send_blocks(&image(256, 25), 256).unwrap();
        d.host.set_configuration(1).unwrap();
        assert_eq!(d.state(), DfuState::Idle);
        assert_eq!(d.get_alt(), 0);
        // A full session afterwards works.
        let img = image(1500, 26);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&dev, &img);
    });
}

// ---- sink target --------------------------------------------------------------------------

#[derive(Default)]
struct MemSink {
    staging: Vec<u8>,
    committed: Rc<RefCell<Vec<u8>>>,
    discards: Rc<Cell<u32>>,
    max: Option<u64>,
    readable: bool,
}

impl ImageSink for MemSink {
    fn begin(&mut self) -> Result<(), DfuError> {
        self.staging.clear();
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<Progress, DfuError> {
        self.staging.extend_from_slice(data);
        Ok(Progress::Done)
    }
    fn commit(&mut self) -> Result<Progress, DfuError> {
        if self.staging.first() != Some(&0x7F) {
            return Err(DfuError::File);
        }
        *self.committed.borrow_mut() = std::mem::take(&mut self.staging);
        Ok(Progress::Done)
    }
    fn discard(&mut self) {
        self.staging.clear();
        self.discards.set(self.discards.get() + 1);
    }
    fn max_size(&self) -> Option<u64> {
        self.max
    }
    fn can_read(&self) -> bool {
        self.readable
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let c = self.committed.borrow();
        let start = (offset as usize).min(c.len());
        let n = buf.len().min(c.len() - start);
        buf[..n].copy_from_slice(&c[start..start + n]);
        Ok(n)
    }
}

#[test]
fn sink_target_streams_commits_and_discards() {
    let sink = MemSink {
        max: Some(4096),
        readable: true,
        ..MemSink::default()
    };
    let (committed, discards) = (sink.committed.clone(), sink.discards.clone());
    let closed = MemSink::default();
    let targets: Vec<Box<dyn DfuTarget>> = vec![
        Box::new(SinkTarget::new("firmware", Box::new(sink))),
        Box::new(SinkTarget::new("log", Box::new(closed))),
    ];
    with_dfu(targets, |d| {
        assert_ne!(d.functional().attributes & ATTR_CAN_UPLOAD, 0);
        let mut img = image(3000, 27);
        img[0] = 0x7F;
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_eq!(*committed.borrow(), img);
        assert_eq!(d.upload_all(256), img);
        // Too large.
        let big = image(4097, 28);
        let s = d.download(&big);
        assert_eq!(
            (s.status, s.state),
            (Some(DfuError::Address), DfuState::Error)
        );
        assert_eq!(discards.get(), 1);
        d.expect_error(DfuError::Address);
        // Rejected by the sink's check at commit.
        let mut bad = image(100, 29);
        bad[0] = 0;
        let s = d.download(&bad);
        assert_eq!((s.status, s.state), (Some(DfuError::File), DfuState::Error));
        assert_eq!(discards.get(), 2);
        d.expect_error(DfuError::File);
        // ABORT discards.
        d.send_blocks(&img, 256).unwrap();
        d.abort().unwrap();
        assert_eq!(discards.get(), 3);
        assert_eq!(*committed.borrow(), img);
        // A sink that cannot be read back.
        d.set_alt(1).unwrap();
        assert!(stalled(d.upload(0, 256)));
        d.expect_error(DfuError::Target);
    });
}

// ---- in the composite gadget --------------------------------------------------------------

#[test]
fn composite_with_mass_storage_and_serial_fits_sixteen_targets() {
    use lunbox_gadget::acm::AcmClass;
    use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig};
    use lunbox_platform::coroutine::{self, Completion};
    use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbVidPid};

    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let Ums {
        mut class,
        function,
        ..
    } = Ums::new(
        &alloc,
        UmsConfig::new(vec![LunConfig::new(Some(ram(16)), "ram0")]),
    )
    .unwrap();
    let (mut acm, _serial) = AcmClass::new(
        &alloc,
        true,
        Rc::new(Completion::new()),
        Rc::new(Completion::new()),
    );
    let disks: Vec<DeviceRef> = (0..MAX_TARGETS).map(|_| ram(16)).collect();
    let targets = disks
        .iter()
        .enumerate()
        .map(|(i, d)| block(&format!("sd0.{i}"), d, RS))
        .collect();
    let mut dfu = DfuClass::new(&alloc, targets).unwrap();
    let iface = u16::from(u8::from(dfu.interface()));
    let mut dev = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x1209, 0x0001))
        .composite_with_iads()
        .strings(&[StringDescriptors::default()
            .manufacturer("lunbox")
            .product("lunbox USB gadget")
            .serial_number("LB-0042")])
        .unwrap()
        .max_packet_size_0(64)
        .unwrap()
        .build();
    let task = coroutine::spawn("ums", move || function.run());
    {
        let mut step = || {
            dev.poll(&mut [&mut class, &mut acm, &mut dfu]);
            class.pump();
            acm.pump();
            dfu.pump();
            coroutine::yield_now();
        };
        let mut host = VirtualHost::new(port, &mut step);
        let descriptors = host.enumerate().expect("enumeration");
        // Well under usb-device's control buffer (it would still fit the 256 bytes of
        // `control-buffer-256`).
        assert!(descriptors.config.len() <= 256);
        let alts = descriptors
            .interfaces
            .iter()
            .filter(|i| i.class == (0xFE, 0x01, 0x02))
            .count();
        assert_eq!(alts, MAX_TARGETS);
        let mut d = DfuHost {
            host: &mut host,
            iface,
            descriptors,
        };
        assert_eq!(d.functional().transfer_size, TRANSFER_SIZE);
        d.set_alt(15).unwrap();
        let img = image(XFER + 3000, 30);
        assert_eq!(d.download(&img).state, DfuState::Idle);
        assert_device(&disks[15], &img);
        assert_eq!(contents(&disks[0]), pattern(16));
    }
    task.stop().expect("the UMS coroutine ends cleanly");
}

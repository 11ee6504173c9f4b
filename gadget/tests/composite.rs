//! The composite gadget: mass storage + serial console behind IADs (device class EF/02/01),
//! a device qualifier, descriptors checked field by field at full and high speed, and the
//! serial port moving bytes both ways.

mod common;

use std::rc::Rc;

use common::ram;
use lunbox_gadget::DeviceQualifier;
use lunbox_gadget::acm::{AcmClass, AcmPort};
use lunbox_gadget::testing::{Descriptors, Setup, VirtualBus, VirtualHost};
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig};
use lunbox_platform::coroutine::{self, Completion};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbRev, UsbVidPid};

/// Run `f` with a composite (qualifier, UMS, ACM) enumerated at `high_speed` or full speed.
fn with_composite(high_speed: bool, f: impl FnOnce(&mut VirtualHost<'_>, &Descriptors, &AcmPort)) {
    let (bus, port) = VirtualBus::new();
    let alloc = UsbBusAllocator::new(bus);
    let mut config = UmsConfig::new(vec![LunConfig::new(Some(ram(16)), "ram0")]);
    config.max_packet = if high_speed { 512 } else { 64 };
    let Ums {
        mut class,
        function,
        ..
    } = Ums::new(&alloc, config).unwrap();
    let (mut acm, serial) = AcmClass::new(
        &alloc,
        high_speed,
        Rc::new(Completion::new()),
        Rc::new(Completion::new()),
    );
    let mut qualifier = DeviceQualifier::new((0xEF, 0x02, 0x01), 64);
    let mut dev = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x1209, 0x0001))
        .usb_rev(UsbRev::Usb200)
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
            dev.poll(&mut [&mut qualifier, &mut class, &mut acm]);
            class.pump();
            acm.pump();
            coroutine::yield_now();
        };
        let mut host = VirtualHost::new(port, &mut step);
        let d = host.enumerate().expect("enumeration");
        f(&mut host, &d, &serial);
    }
    task.stop().unwrap();
}

#[test]
fn descriptors_at_high_and_full_speed() {
    for hs in [true, false] {
        with_composite(hs, |host, d, _| {
            let dev = &d.device;
            assert_eq!(u16::from_le_bytes([dev[2], dev[3]]), 0x0200, "bcdUSB 2.0");
            assert_eq!(
                (dev[4], dev[5], dev[6]),
                (0xEF, 0x02, 0x01),
                "IAD device class"
            );
            assert_eq!(dev[7], 64);
            assert_eq!(u16::from_le_bytes([dev[8], dev[9]]), 0x1209);
            assert_eq!(u16::from_le_bytes([dev[10], dev[11]]), 0x0001);
            assert_eq!(dev[17], 1, "one configuration");
            assert_eq!(host.get_string(dev[14]).unwrap(), "lunbox");
            assert_eq!(host.get_string(dev[15]).unwrap(), "lunbox USB gadget");
            assert_eq!(host.get_string(dev[16]).unwrap(), "LB-0042");
            let cfg = &d.config;
            assert_eq!(
                cfg[4], 3,
                "three interfaces: UMS, ACM communications, ACM data"
            );
            // The IAD right before the ACM communications interface.
            let iad = cfg
                .windows(8)
                .position(|w| w[0] == 8 && w[1] == 11)
                .expect("an IAD");
            assert_eq!(
                &cfg[iad + 2..iad + 8],
                &[1, 2, 0x02, 0x02, 0x00, cfg[iad + 7]]
            );
            let ifs = &d.interfaces;
            assert_eq!(ifs[0].class, (0x08, 0x06, 0x50));
            let bulk = if hs { 512 } else { 64 };
            assert!(
                ifs[0]
                    .endpoints
                    .iter()
                    .all(|e| e.kind == 2 && e.max_packet == bulk)
            );
            assert_eq!(ifs[1].class, (0x02, 0x02, 0x00));
            let notify = &ifs[1].endpoints[0];
            assert_eq!(
                (notify.kind, notify.address & 0x80),
                (3, 0x80),
                "interrupt IN"
            );
            if hs {
                assert!(
                    (1..=16).contains(&notify.interval),
                    "valid high-speed bInterval"
                );
            } else {
                assert!(notify.interval >= 1);
            }
            let cs: Vec<u8> = ifs[1]
                .extra
                .iter()
                .map(|(t, b)| if *t == 0x24 { b[2] } else { 0xFF })
                .collect();
            assert_eq!(
                cs,
                [0x00, 0x01, 0x02, 0x06],
                "header, call management, ACM, union"
            );
            assert_eq!(ifs[1].extra[3].1[3..5], [1, 2], "union: comm 1, data 2");
            assert_eq!(ifs[2].class, (0x0A, 0x00, 0x00));
            assert!(
                ifs[2]
                    .endpoints
                    .iter()
                    .all(|e| e.kind == 2 && e.max_packet == bulk)
            );
            assert_eq!(host.get_string(ifs[1].string).unwrap(), "lunbox console");
            // The device qualifier.
            let q = host.get_descriptor(6, 0, 10).unwrap();
            assert_eq!(q, [10, 6, 0x00, 0x02, 0xEF, 0x02, 0x01, 64, 1, 0]);
        });
    }
}

#[test]
fn serial_port_moves_bytes_both_ways() {
    with_composite(true, |host, d, serial| {
        let data_if = &d.interfaces[2];
        let ep_in = data_if
            .endpoints
            .iter()
            .find(|e| e.address & 0x80 != 0)
            .unwrap()
            .address;
        let ep_out = data_if
            .endpoints
            .iter()
            .find(|e| e.address & 0x80 == 0)
            .unwrap()
            .address;
        // Nobody listening: output is dropped.
        serial.write(b"lost");
        assert!(!serial.connected());
        let comm = u16::from(d.interfaces[1].number);
        host.control_out(
            Setup {
                request_type: 0x21,
                request: 0x22,
                value: 1,
                index: comm,
                length: 0,
            },
            &[],
        )
        .unwrap();
        assert!(serial.connected());
        let coding = [0x80, 0x25, 0, 0, 0, 0, 8];
        host.control_out(
            Setup {
                request_type: 0x21,
                request: 0x20,
                value: 0,
                index: comm,
                length: 7,
            },
            &coding,
        )
        .unwrap();
        assert_eq!(serial.line_coding(), coding);
        let back = host
            .control_in(Setup {
                request_type: 0xA1,
                request: 0x21,
                value: 0,
                index: comm,
                length: 7,
            })
            .unwrap();
        assert_eq!(back, coding);
        // Device to host, more than one packet.
        let text: Vec<u8> = (0..1500).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(serial.write(&text), 1500);
        let got = host.bulk_in(ep_in, 512, 2048).unwrap();
        assert_eq!(got, text);
        // Host to device.
        host.bulk_out(ep_out, 512, b"help\r", false).unwrap();
        for _ in 0..10 {
            host.step();
        }
        let mut buf = [0u8; 64];
        let n = serial.read(&mut buf);
        assert_eq!(&buf[..n], b"help\r");
        // A class request for another interface is not ours; a bad one is stalled.
        let bad = host.control_out(
            Setup {
                request_type: 0x21,
                request: 0x7F,
                value: 0,
                index: comm,
                length: 0,
            },
            &[],
        );
        assert!(bad.is_err());
    });
}

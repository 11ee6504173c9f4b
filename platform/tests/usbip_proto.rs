//! Tests of the USB/IP wire codec (`sandbox/usbip/proto.rs`): byte-exact encodings against
//! hand-written PDUs from the protocol description, round trips, incremental parsing, every
//! error path, and property tests that hostile bytes never panic or over-consume.

#[allow(
    unreachable_pub,
    dead_code,
    reason = "the module is public in the crate; included here on its own, not all of it is used"
)]
#[path = "../src/sandbox/usbip/proto.rs"]
mod proto;

use proptest::prelude::*;
use proto::*;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const PATH: &str = "/sys/devices/pci0000:00/0000:00:01.2/usb1/1-1";

fn mass_storage() -> DeviceInfo {
    DeviceInfo {
        path: PATH.into(),
        busid: "1-1".into(),
        busnum: 1,
        devnum: 2,
        speed: SPEED_HIGH,
        id_vendor: 0x1209,
        id_product: 0x4C42,
        bcd_device: 0x0100,
        device_class: 0,
        device_subclass: 0,
        device_protocol: 0,
        configuration_value: 1,
        num_configurations: 1,
        interfaces: vec![(0x08, 0x06, 0x50)],
    }
}

/// `struct usbip_usb_device` of [`mass_storage`], written out field by field.
fn mass_storage_bytes() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(PATH.as_bytes());
    b.resize(256, 0); // path[256]
    b.extend_from_slice(b"1-1");
    b.resize(256 + 32, 0); // busid[32]
    b.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x01, // busnum
        0x00, 0x00, 0x00, 0x02, // devnum
        0x00, 0x00, 0x00, 0x03, // speed HIGH
        0x12, 0x09, // idVendor
        0x4C, 0x42, // idProduct
        0x01, 0x00, // bcdDevice
        0x00, 0x00, 0x00, // class, subclass, protocol
        0x01, // bConfigurationValue
        0x01, // bNumConfigurations
        0x01, // bNumInterfaces
    ]);
    assert_eq!(b.len(), 0x138);
    b
}

/// vhci's first request: GET_DESCRIPTOR(DEVICE, 64) on EP0 IN.
const CMD_GET_DESCRIPTOR: [u8; 48] = [
    0x00, 0x00, 0x00, 0x01, // command CMD_SUBMIT
    0x00, 0x00, 0x00, 0x05, // seqnum
    0x00, 0x01, 0x00, 0x02, // devid 1-2
    0x00, 0x00, 0x00, 0x01, // direction IN
    0x00, 0x00, 0x00, 0x00, // ep 0
    0x00, 0x00, 0x02, 0x00, // transfer_flags URB_DIR_IN
    0x00, 0x00, 0x00, 0x40, // transfer_buffer_length 64
    0x00, 0x00, 0x00, 0x00, // start_frame
    0x00, 0x00, 0x00, 0x00, // number_of_packets
    0x00, 0x00, 0x00, 0x00, // interval
    0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, // setup
];

/// A 31-byte CBW on bulk OUT EP1, `number_of_packets` as the protocol document has it.
fn cmd_cbw_bytes() -> Vec<u8> {
    let mut b = vec![
        0x00, 0x00, 0x00, 0x01, // CMD_SUBMIT
        0x00, 0x00, 0x00, 0x06, // seqnum
        0x00, 0x01, 0x00, 0x02, // devid
        0x00, 0x00, 0x00, 0x00, // direction OUT
        0x00, 0x00, 0x00, 0x01, // ep 1
        0x00, 0x00, 0x00, 0x00, // transfer_flags
        0x00, 0x00, 0x00, 0x1F, // transfer_buffer_length 31
        0x00, 0x00, 0x00, 0x00, // start_frame
        0xFF, 0xFF, 0xFF, 0xFF, // number_of_packets (non-ISO)
        0x00, 0x00, 0x00, 0x00, // interval
        0, 0, 0, 0, 0, 0, 0, 0, // setup
    ];
    b.extend_from_slice(&cbw());
    b
}

fn cbw() -> Vec<u8> {
    let mut cbw = b"USBC".to_vec();
    cbw.extend(1..=27u8);
    cbw
}

const CMD_UNLINK_BYTES: [u8; 48] = [
    0x00, 0x00, 0x00, 0x02, // CMD_UNLINK
    0x00, 0x00, 0x00, 0x09, // seqnum
    0x00, 0x01, 0x00, 0x02, // devid
    0x00, 0x00, 0x00, 0x00, // direction
    0x00, 0x00, 0x00, 0x00, // ep
    0x00, 0x00, 0x00, 0x05, // unlink_seqnum
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn submit(direction: Direction, ep: u8, len: u32, data: Vec<u8>) -> CmdSubmit {
    CmdSubmit {
        seqnum: 42,
        devid: 0x0001_0002,
        direction,
        ep,
        transfer_flags: 0,
        transfer_buffer_length: len,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0; 8],
        data,
    }
}

/// A 48-byte command header with the given fields, everything else zero.
fn header(command: u32, direction: u32, ep: u32, length: i32, packets: i32) -> Vec<u8> {
    let mut b = Vec::new();
    for word in [command, 1, 2, direction, ep] {
        b.extend_from_slice(&word.to_be_bytes());
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&length.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&packets.to_be_bytes());
    b.resize(48, 0);
    b
}

fn dir_by_parity(seqnum: u32) -> Option<Direction> {
    Some(if seqnum % 2 == 1 {
        Direction::In
    } else {
        Direction::Out
    })
}

/// Every strict prefix of `bytes` is incomplete, the whole of it is one message of its length,
/// and so is `bytes` followed by anything.
fn assert_incremental<T: std::fmt::Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, ProtoError>,
) -> T {
    for i in 0..bytes.len() {
        assert!(
            matches!(parse(&bytes[..i]), Ok(None)),
            "prefix of {i}/{} bytes",
            bytes.len()
        );
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xA5; 100]);
    let (_, consumed) = parse(&longer).unwrap().unwrap();
    assert_eq!(consumed, bytes.len());
    let (message, consumed) = parse(bytes).unwrap().unwrap();
    assert_eq!(consumed, bytes.len());
    message
}

// ---------------------------------------------------------------------------------------------
// OP phase
// ---------------------------------------------------------------------------------------------

#[test]
fn devlist_request() {
    let mut out = Vec::new();
    encode_op_request_devlist(&mut out);
    assert_eq!(out, [0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0]);
    let request = assert_incremental(&out, parse_op_request);
    assert_eq!(request, OpRequest::DevList);
}

#[test]
fn import_request() {
    let mut expected = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0, b'1', b'-', b'1'];
    expected.resize(40, 0);
    let mut out = Vec::new();
    encode_op_request_import("1-1", &mut out);
    assert_eq!(out, expected);
    let request = assert_incremental(&out, parse_op_request);
    assert_eq!(
        request,
        OpRequest::Import {
            busid: "1-1".into()
        }
    );
}

#[test]
fn import_request_ignores_status_and_bytes_after_the_nul() {
    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0xDE, 0xAD, 0xBE, 0xEF];
    b.extend_from_slice(b"2-3.1\0garbage\xFF");
    b.resize(40, 0x55);
    let (request, consumed) = parse_op_request(&b).unwrap().unwrap();
    assert_eq!(
        request,
        OpRequest::Import {
            busid: "2-3.1".into()
        }
    );
    assert_eq!(consumed, 40);
    // A busid that fills 31 bytes is fine, and so is an empty one.
    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    b.extend_from_slice(&[b'x'; 31]);
    b.push(0);
    let (request, _) = parse_op_request(&b).unwrap().unwrap();
    assert_eq!(
        request,
        OpRequest::Import {
            busid: "x".repeat(31)
        }
    );
    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    b.resize(40, 0);
    let (request, _) = parse_op_request(&b).unwrap().unwrap();
    assert_eq!(
        request,
        OpRequest::Import {
            busid: String::new()
        }
    );
}

#[test]
fn op_requests_back_to_back() {
    let mut b = Vec::new();
    encode_op_request_devlist(&mut b);
    encode_op_request_import("1-1", &mut b);
    let (first, n) = parse_op_request(&b).unwrap().unwrap();
    assert_eq!((first, n), (OpRequest::DevList, 8));
    let (second, m) = parse_op_request(&b[n..]).unwrap().unwrap();
    assert_eq!(
        second,
        OpRequest::Import {
            busid: "1-1".into()
        }
    );
    assert_eq!(n + m, b.len());
}

#[test]
fn devlist_reply_one_device_one_interface() {
    let mut expected = vec![
        0x01, 0x11, 0x00, 0x05, // version, OP_REP_DEVLIST
        0x00, 0x00, 0x00, 0x00, // status ST_OK
        0x00, 0x00, 0x00, 0x01, // ndev
    ];
    expected.extend_from_slice(&mass_storage_bytes());
    expected.extend_from_slice(&[0x08, 0x06, 0x50, 0x00]); // class, subclass, protocol, pad
    let mut out = Vec::new();
    encode_devlist_reply(&[mass_storage()], &mut out);
    assert_eq!(out.len(), 12 + 0x138 + 4);
    assert_eq!(out, expected);
    // Offsets as the notes give them (struct at 0x0C in DEVLIST).
    assert_eq!(&out[0x0C + 0x100..0x0C + 0x104], b"1-1\0");
    assert_eq!(
        &out[0x0C + 0x120..0x0C + 0x12C],
        &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
    );
    assert_eq!(out[0x0C + 0x137], 1);

    let reply = assert_incremental(&out, parse_op_reply);
    assert_eq!(
        reply,
        OpReply::DevList {
            status: ST_OK,
            devices: vec![mass_storage()]
        }
    );
}

#[test]
fn devlist_reply_empty_and_several() {
    let mut out = Vec::new();
    encode_devlist_reply(&[], &mut out);
    assert_eq!(out, [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        assert_incremental(&out, parse_op_reply),
        OpReply::DevList {
            status: ST_OK,
            devices: vec![]
        }
    );

    let mut second = mass_storage();
    second.busid = "1-2".into();
    second.interfaces = vec![(0x02, 0x02, 0x01), (0x0A, 0x00, 0x00), (0xFE, 0x01, 0x01)];
    let mut third = mass_storage();
    third.interfaces.clear();
    let devices = vec![mass_storage(), second, third];
    let mut out = Vec::new();
    encode_devlist_reply(&devices, &mut out);
    assert_eq!(out.len(), 12 + 3 * 0x138 + 4 * 4);
    assert_eq!(
        assert_incremental(&out, parse_op_reply),
        OpReply::DevList {
            status: ST_OK,
            devices
        }
    );
}

#[test]
fn import_reply_ok() {
    let mut expected = vec![0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0];
    expected.extend_from_slice(&mass_storage_bytes());
    let mut out = Vec::new();
    encode_import_reply(ST_OK, Some(&mass_storage()), &mut out);
    assert_eq!(out, expected);
    assert_eq!(&out[0x08 + 0x100..0x08 + 0x104], b"1-1\0");
    let reply = assert_incremental(&out, parse_op_reply);
    let mut device = mass_storage();
    device.interfaces.clear();
    assert_eq!(
        reply,
        OpReply::Import {
            status: ST_OK,
            device: Some(device),
            num_interfaces: 1
        }
    );
}

#[test]
fn import_reply_errors_are_header_only() {
    for status in [ST_NA, ST_DEV_BUSY, ST_DEV_ERR, ST_NODEV, ST_ERROR] {
        let mut out = Vec::new();
        encode_import_reply(status, Some(&mass_storage()), &mut out);
        assert_eq!(out, [0x01, 0x11, 0x00, 0x03, 0, 0, 0, status as u8]);
        assert_eq!(
            assert_incremental(&out, parse_op_reply),
            OpReply::Import {
                status,
                device: None,
                num_interfaces: 0
            }
        );
    }
    // ST_OK without a device would desynchronise the client: it goes out as ST_NODEV.
    let mut out = Vec::new();
    encode_import_reply(ST_OK, None, &mut out);
    assert_eq!(out, [0x01, 0x11, 0x00, 0x03, 0, 0, 0, 4]);
    // A non-OK DEVLIST reply ends after its header too.
    let b = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 5, 0xFF, 0xFF];
    assert_eq!(
        parse_op_reply(&b),
        Ok(Some((
            OpReply::DevList {
                status: ST_ERROR,
                devices: vec![]
            },
            8
        )))
    );
}

#[test]
fn device_strings_are_truncated_at_char_boundaries() {
    let mut device = mass_storage();
    device.path = "é".repeat(200); // 400 bytes
    device.busid = "ü".repeat(20); // 40 bytes
    let mut out = Vec::new();
    device.encode_usb_device(&mut out);
    assert_eq!(out.len(), 0x138);
    assert_eq!(out[254..256], [0, 0], "127 two-byte chars, then NULs");
    assert_eq!(
        out[0x100 + 30..0x100 + 32],
        [0, 0],
        "15 two-byte chars, then NULs"
    );
    let (parsed, _) = DeviceInfo::decode_usb_device(out.as_slice().try_into().unwrap()).unwrap();
    assert_eq!(parsed.path, "é".repeat(127));
    assert_eq!(parsed.busid, "ü".repeat(15));

    device.path = "p".repeat(300);
    device.busid = "b".repeat(32);
    let mut out = Vec::new();
    device.encode_usb_device(&mut out);
    let (parsed, _) = DeviceInfo::decode_usb_device(out.as_slice().try_into().unwrap()).unwrap();
    assert_eq!(parsed.path, "p".repeat(255));
    assert_eq!(parsed.busid, "b".repeat(31));

    let mut out = Vec::new();
    encode_op_request_import(&"ä".repeat(16), &mut out);
    assert_eq!(out.len(), 40);
    let (request, _) = parse_op_request(&out).unwrap().unwrap();
    assert_eq!(
        request,
        OpRequest::Import {
            busid: "ä".repeat(15)
        }
    );
}

#[test]
fn more_than_255_interfaces_are_capped_consistently() {
    let mut device = mass_storage();
    device.interfaces = (0..300u32).map(|i| (i as u8, 1, 2)).collect();
    assert_eq!(device.num_interfaces(), 255);
    let mut out = Vec::new();
    encode_devlist_reply(&[device.clone(), mass_storage()], &mut out);
    assert_eq!(out.len(), 12 + 2 * 0x138 + 255 * 4 + 4);
    let (reply, consumed) = parse_op_reply(&out).unwrap().unwrap();
    assert_eq!(consumed, out.len());
    device.interfaces.truncate(255);
    assert_eq!(
        reply,
        OpReply::DevList {
            status: ST_OK,
            devices: vec![device, mass_storage()]
        }
    );
}

#[test]
fn op_request_errors() {
    assert_eq!(
        parse_op_request(&[0x01, 0x06, 0x80, 0x05, 0, 0, 0, 0]),
        Err(ProtoError::BadVersion(0x0106))
    );
    assert_eq!(
        parse_op_request(&[0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0]),
        Err(ProtoError::UnknownOpCode(0x0005))
    );
    assert_eq!(
        parse_op_request(&[0x01, 0x11, 0x12, 0x34, 0, 0, 0, 0]),
        Err(ProtoError::UnknownOpCode(0x1234))
    );
    // URB-phase bytes where an OP request is expected.
    assert_eq!(
        parse_op_request(&CMD_GET_DESCRIPTOR),
        Err(ProtoError::BadVersion(0))
    );

    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    b.extend_from_slice(&[b'a'; 32]);
    assert_eq!(
        parse_op_request(&b),
        Err(ProtoError::StringNotTerminated("busid"))
    );
    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0, b'1', 0xFF, b'1'];
    b.resize(40, 0);
    assert_eq!(
        parse_op_request(&b),
        Err(ProtoError::StringNotUtf8("busid"))
    );
    // An incomplete IMPORT is not an error yet, even though its busid would be bad.
    assert_eq!(parse_op_request(&b[..39]), Ok(None));
}

#[test]
fn op_reply_errors() {
    assert_eq!(
        parse_op_reply(&[0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0]),
        Err(ProtoError::BadVersion(0x0100))
    );
    assert_eq!(
        parse_op_reply(&[0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0]),
        Err(ProtoError::UnknownOpCode(0x8005))
    );
    let reply = |device: &[u8]| {
        let mut b = vec![0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0];
        b.extend_from_slice(device);
        parse_op_reply(&b)
    };
    let mut device = mass_storage_bytes();
    device[..256].fill(b'/');
    assert_eq!(reply(&device), Err(ProtoError::StringNotTerminated("path")));
    device[0] = 0xC3; // a lead byte without its continuation
    device[1] = 0;
    assert_eq!(reply(&device), Err(ProtoError::StringNotUtf8("path")));
    let mut device = mass_storage_bytes();
    device[0x100..0x120].fill(b'1');
    assert_eq!(
        reply(&device),
        Err(ProtoError::StringNotTerminated("busid"))
    );
    device[0x100] = 0xFF;
    device[0x101] = 0;
    assert_eq!(reply(&device), Err(ProtoError::StringNotUtf8("busid")));
}

#[test]
fn huge_device_count_does_not_allocate_or_fail_early() {
    let mut b = vec![0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(parse_op_reply(&b), Ok(None));
    b.extend_from_slice(&mass_storage_bytes());
    b.extend_from_slice(&[8, 6, 0x50, 0]);
    assert_eq!(parse_op_reply(&b), Ok(None));
}

// ---------------------------------------------------------------------------------------------
// URB phase: commands
// ---------------------------------------------------------------------------------------------

#[test]
fn cmd_submit_control_in() {
    let command = assert_incremental(&CMD_GET_DESCRIPTOR, parse_command);
    let expected = CmdSubmit {
        seqnum: 5,
        devid: 0x0001_0002,
        direction: Direction::In,
        ep: 0,
        transfer_flags: URB_DIR_IN,
        transfer_buffer_length: 64,
        start_frame: 0,
        number_of_packets: 0,
        interval: 0,
        setup: [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00],
        data: vec![],
    };
    assert_eq!(command, Command::Submit(expected.clone()));
    assert_eq!(command_len(&CMD_GET_DESCRIPTOR), Ok(Some(48)));
    let mut out = Vec::new();
    encode_cmd_submit(&expected, &mut out);
    assert_eq!(out, CMD_GET_DESCRIPTOR);
}

#[test]
fn cmd_submit_bulk_out_with_payload() {
    let bytes = cmd_cbw_bytes();
    assert_eq!(bytes.len(), 48 + 31);
    assert_eq!(command_len(&bytes[..48]), Ok(Some(79)));
    let command = assert_incremental(&bytes, parse_command);
    let mut expected = submit(Direction::Out, 1, 31, cbw());
    expected.seqnum = 6;
    expected.number_of_packets = NON_ISO_PACKETS;
    assert_eq!(command, Command::Submit(expected.clone()));
    assert!(!expected.short_not_ok() && !expected.zero_packet());
    assert_eq!(expected.iso_packets(), 0);
    let mut out = Vec::new();
    encode_cmd_submit(&expected, &mut out);
    assert_eq!(out, bytes);
}

#[test]
fn cmd_unlink() {
    let command = assert_incremental(&CMD_UNLINK_BYTES, parse_command);
    let expected = CmdUnlink {
        seqnum: 9,
        devid: 0x0001_0002,
        direction: Direction::Out,
        ep: 0,
        unlink_seqnum: 5,
    };
    assert_eq!(command, Command::Unlink(expected));
    let mut out = Vec::new();
    encode_cmd_unlink(&expected, &mut out);
    assert_eq!(out, CMD_UNLINK_BYTES);
}

#[test]
fn commands_back_to_back() {
    let mut stream = cmd_cbw_bytes();
    stream.extend_from_slice(&CMD_GET_DESCRIPTOR);
    stream.extend_from_slice(&CMD_UNLINK_BYTES);
    let out_zlp = submit(Direction::Out, 2, 0, vec![]);
    encode_cmd_submit(&out_zlp, &mut stream);
    let mut seen = Vec::new();
    let mut pos = 0;
    // Feed the stream one byte at a time, as a socket might.
    for end in 1..=stream.len() {
        while let Some((command, n)) = parse_command(&stream[pos..end]).unwrap() {
            pos += n;
            seen.push(command);
        }
    }
    assert_eq!(pos, stream.len());
    let kinds: Vec<_> = seen
        .iter()
        .map(|c| match c {
            Command::Submit(s) => (s.seqnum, s.direction, s.data.len()),
            Command::Unlink(u) => (u.seqnum, u.direction, 0),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (6, Direction::Out, 31),
            (5, Direction::In, 0),
            (9, Direction::Out, 0),
            (42, Direction::Out, 0)
        ]
    );
}

#[test]
fn command_flags() {
    let mut cmd = submit(Direction::In, 1, 512, vec![]);
    cmd.transfer_flags = URB_SHORT_NOT_OK | URB_DIR_IN;
    assert!(cmd.short_not_ok() && !cmd.zero_packet());
    cmd.transfer_flags = URB_ZERO_PACKET;
    assert!(!cmd.short_not_ok() && cmd.zero_packet());
}

#[test]
fn iso_descriptors_are_skipped() {
    // OUT: header, payload, then 2 descriptors.
    let mut b = header(1, 0, 3, 4, 2);
    b.extend_from_slice(&[1, 2, 3, 4]);
    b.extend_from_slice(&[0xEE; 32]);
    let command = assert_incremental(&b, parse_command);
    let Command::Submit(cmd) = command else {
        panic!("not a submit")
    };
    assert_eq!((cmd.number_of_packets, cmd.iso_packets()), (2, 2));
    assert_eq!(cmd.data, [1, 2, 3, 4]);
    // IN: header, then descriptors (no payload).
    let mut b = header(1, 1, 3, 1024, 3);
    b.extend_from_slice(&[0xEE; 48]);
    assert_eq!(command_len(&b), Ok(Some(96)));
    assert_incremental(&b, parse_command);
    // The maximum count, and the encoder writes zeroed descriptors that round-trip.
    let mut cmd = submit(Direction::Out, 5, 3, vec![7, 8, 9]);
    cmd.number_of_packets = MAX_ISO_PACKETS as i32;
    let mut out = Vec::new();
    encode_cmd_submit(&cmd, &mut out);
    assert_eq!(out.len(), 48 + 3 + 16 * 1024);
    assert_eq!(
        parse_command(&out),
        Ok(Some((Command::Submit(cmd), out.len())))
    );
}

#[test]
fn max_transfer_length_is_accepted() {
    let b = header(1, 0, 1, MAX_TRANSFER_LENGTH as i32, 0);
    assert_eq!(command_len(&b), Ok(Some(48 + MAX_TRANSFER_LENGTH as usize)));
    assert_eq!(
        parse_command(&b),
        Ok(None),
        "waits for the payload without copying it"
    );
    let b = header(1, 1, 1, MAX_TRANSFER_LENGTH as i32, 0);
    assert!(matches!(
        parse_command(&b),
        Ok(Some((Command::Submit(_), 48)))
    ));
}

#[test]
fn command_errors() {
    let cases: [(Vec<u8>, ProtoError); 14] = [
        (header(0, 0, 0, 0, 0), ProtoError::UnknownCommand(0)),
        (header(3, 0, 0, 0, 0), ProtoError::UnknownCommand(3)),
        (header(4, 0, 0, 0, 0), ProtoError::UnknownCommand(4)),
        (
            header(0x0111_8005, 0, 0, 0, 0),
            ProtoError::UnknownCommand(0x0111_8005),
        ),
        (header(1, 2, 0, 0, 0), ProtoError::BadDirection(2)),
        (
            header(2, 0xFFFF_FFFF, 0, 0, 0),
            ProtoError::BadDirection(0xFFFF_FFFF),
        ),
        (header(1, 1, 16, 0, 0), ProtoError::BadEndpoint(16)),
        (header(2, 0, 0x80, 0, 0), ProtoError::BadEndpoint(0x80)),
        (header(1, 0, 1, -1, 0), ProtoError::NegativeLength(-1)),
        (
            header(1, 1, 1, i32::MIN, 0),
            ProtoError::NegativeLength(i32::MIN),
        ),
        (
            header(1, 0, 1, MAX_TRANSFER_LENGTH as i32 + 1, 0),
            ProtoError::TransferTooLarge(MAX_TRANSFER_LENGTH + 1),
        ),
        (
            header(1, 1, 1, i32::MAX, 0),
            ProtoError::TransferTooLarge(i32::MAX as u32),
        ),
        (header(1, 0, 1, 8, -2), ProtoError::BadPacketCount(-2)),
        (header(1, 1, 1, 8, 1025), ProtoError::BadPacketCount(1025)),
    ];
    for (bytes, error) in cases {
        assert_eq!(parse_command(&bytes), Err(error.clone()), "{bytes:02x?}");
        assert_eq!(command_len(&bytes), Err(error.clone()));
        // The header alone decides: more bytes change nothing, fewer are just incomplete.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 64]);
        assert_eq!(parse_command(&longer), Err(error));
        assert_eq!(parse_command(&bytes[..47]), Ok(None));
    }
    // CMD_UNLINK ignores the SUBMIT-only fields.
    assert!(parse_command(&header(2, 1, 15, -1, -5)).unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// URB phase: replies
// ---------------------------------------------------------------------------------------------

#[test]
fn ret_submit_in_with_data() {
    let expected = [
        0x00, 0x00, 0x00, 0x03, // RET_SUBMIT
        0x00, 0x00, 0x12, 0x35, // seqnum
        0x00, 0x00, 0x00, 0x00, // devid
        0x00, 0x00, 0x00, 0x00, // direction
        0x00, 0x00, 0x00, 0x00, // ep
        0x00, 0x00, 0x00, 0x00, // status
        0x00, 0x00, 0x00, 0x04, // actual_length
        0x00, 0x00, 0x00, 0x00, // start_frame
        0x00, 0x00, 0x00, 0x00, // number_of_packets
        0x00, 0x00, 0x00, 0x00, // error_count
        0, 0, 0, 0, 0, 0, 0, 0, // padding
        0xDE, 0xAD, 0xBE, 0xEF, // IN payload
    ];
    let mut out = Vec::new();
    encode_ret_submit(0x1235, 0, 4, Some(&[0xDE, 0xAD, 0xBE, 0xEF]), &mut out);
    assert_eq!(out, expected);
    let ret = assert_incremental(&out, |b| parse_ret(b, dir_by_parity));
    assert_eq!(
        ret,
        Ret::Submit(RetSubmit {
            seqnum: 0x1235,
            devid: 0,
            direction: 0,
            ep: 0,
            status: 0,
            actual_length: 4,
            start_frame: 0,
            number_of_packets: 0,
            error_count: 0,
            data: vec![0xDE, 0xAD, 0xBE, 0xEF],
        })
    );
}

#[test]
fn ret_submit_out_and_errors_have_no_payload() {
    let mut out = Vec::new();
    encode_ret_submit(6, 0, 31, None, &mut out);
    let mut expected = vec![0, 0, 0, 3, 0, 0, 0, 6];
    expected.resize(24, 0);
    expected.extend_from_slice(&[0, 0, 0, 31]);
    expected.resize(48, 0);
    assert_eq!(out, expected);
    let ret = assert_incremental(&out, |b| parse_ret(b, |_| Some(Direction::Out)));
    let Ret::Submit(ret) = ret else {
        panic!("not a submit")
    };
    assert_eq!((ret.seqnum, ret.actual_length, ret.data.len()), (6, 31, 0));

    // A stalled control IN: status -EPIPE (0xffffffe0), nothing transferred.
    let mut out = Vec::new();
    encode_ret_submit(5, EPIPE, 0, Some(&[]), &mut out);
    assert_eq!(out.len(), 48);
    assert_eq!(out[20..28], [0xFF, 0xFF, 0xFF, 0xE0, 0, 0, 0, 0]);
    let (ret, n) = parse_ret(&out, |_| Some(Direction::In)).unwrap().unwrap();
    assert_eq!(n, 48);
    let Ret::Submit(ret) = ret else {
        panic!("not a submit")
    };
    assert_eq!((ret.status, ret.actual_length), (EPIPE, 0));
}

#[test]
fn ret_submit_payload_is_clamped_to_the_buffer() {
    // actual_length shorter than the buffer: only actual_length bytes go out.
    let mut out = Vec::new();
    encode_ret_submit(1, 0, 2, Some(&[1, 2, 3, 4]), &mut out);
    assert_eq!(out.len(), 50);
    assert_eq!(out[24..28], [0, 0, 0, 2]);
    assert_eq!(out[48..], [1, 2]);
    // actual_length beyond the buffer: the header follows the bytes really sent.
    let mut out = Vec::new();
    encode_ret_submit(1, EOVERFLOW, 9, Some(&[1, 2, 3]), &mut out);
    assert_eq!(out.len(), 51);
    assert_eq!(out[20..28], [0xFF, 0xFF, 0xFF, 0xB5, 0, 0, 0, 3]);
}

#[test]
fn ret_unlink() {
    let expected = [
        0x00, 0x00, 0x00, 0x04, // RET_UNLINK
        0x00, 0x00, 0x00, 0x09, // seqnum of the CMD_UNLINK
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // devid, direction, ep
        0xFF, 0xFF, 0xFF, 0x98, // status -ECONNRESET
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut out = Vec::new();
    encode_ret_unlink(9, ECONNRESET, &mut out);
    assert_eq!(out, expected);
    let ret = assert_incremental(&out, |b| parse_ret(b, |_| None));
    assert_eq!(
        ret,
        Ret::Unlink(RetUnlink {
            seqnum: 9,
            devid: 0,
            direction: 0,
            ep: 0,
            status: -104
        })
    );
    let mut out = Vec::new();
    encode_ret_unlink(10, 0, &mut out);
    assert_eq!(out[20..24], [0, 0, 0, 0]);
}

#[test]
fn rets_back_to_back() {
    let mut stream = Vec::new();
    encode_ret_submit(1, 0, 3, Some(&[7, 7, 7]), &mut stream);
    encode_ret_submit(2, 0, 512, None, &mut stream);
    encode_ret_unlink(3, 0, &mut stream);
    encode_ret_submit(5, EOVERFLOW, 0, Some(&[]), &mut stream);
    let mut pos = 0;
    let mut seqnums = Vec::new();
    while let Some((ret, n)) = parse_ret(&stream[pos..], dir_by_parity).unwrap() {
        pos += n;
        seqnums.push(match ret {
            Ret::Submit(r) => r.seqnum,
            Ret::Unlink(r) => r.seqnum,
        });
    }
    assert_eq!(pos, stream.len());
    assert_eq!(seqnums, [1, 2, 3, 5]);
}

#[test]
fn ret_errors() {
    let ret = |command: u32, length: i32, packets: i32| {
        let mut b = header(command, 0, 0, 0, packets);
        b[24..28].copy_from_slice(&length.to_be_bytes());
        b
    };
    let cases = [
        (ret(1, 0, 0), ProtoError::UnknownCommand(1)),
        (ret(2, 0, 0), ProtoError::UnknownCommand(2)),
        (ret(3, -4, 0), ProtoError::NegativeLength(-4)),
        (
            ret(3, MAX_TRANSFER_LENGTH as i32 + 1, 0),
            ProtoError::TransferTooLarge(MAX_TRANSFER_LENGTH + 1),
        ),
        (ret(3, 0, -3), ProtoError::BadPacketCount(-3)),
        (ret(3, 0, 5000), ProtoError::BadPacketCount(5000)),
    ];
    for (bytes, error) in cases {
        assert_eq!(parse_ret(&bytes, dir_by_parity), Err(error));
    }
    // header() puts seqnum 1 in.
    assert_eq!(
        parse_ret(&ret(3, 0, 0), |_| None),
        Err(ProtoError::UnknownSeqnum(1))
    );
    // ISO descriptors after an IN payload are skipped.
    let mut b = ret(3, 2, 1);
    b.extend_from_slice(&[0xAB, 0xCD]);
    b.extend_from_slice(&[0; 16]);
    let r = assert_incremental(&b, |x| parse_ret(x, |_| Some(Direction::In)));
    let Ret::Submit(r) = r else {
        panic!("not a submit")
    };
    assert_eq!((r.data, r.number_of_packets), (vec![0xAB, 0xCD], 1));
}

#[test]
fn errors_display() {
    let cases = [
        (
            ProtoError::BodyTooLong {
                expected: 512,
                got: 600,
            },
            "600 bytes given after a header that 512 bytes follow",
        ),
        (
            ProtoError::BadVersion(0x0106),
            "bad USB/IP version 0x0106 (expected 0x0111)",
        ),
        (
            ProtoError::UnknownOpCode(0x1234),
            "unknown or unexpected OP code 0x1234",
        ),
        (
            ProtoError::UnknownCommand(7),
            "unknown or unexpected URB command 0x7",
        ),
        (
            ProtoError::BadDirection(2),
            "bad direction value 2 (expected 0 or 1)",
        ),
        (
            ProtoError::BadEndpoint(16),
            "bad endpoint number 16 (expected 0..=15)",
        ),
        (
            ProtoError::NegativeLength(-1),
            "negative transfer length -1",
        ),
        (
            ProtoError::TransferTooLarge(1 << 30),
            "oversized transfer of 1073741824 bytes (max 16777216)",
        ),
        (
            ProtoError::BadPacketCount(-2),
            "bogus number_of_packets -2 (expected 0, -1 or 1..=1024)",
        ),
        (
            ProtoError::StringNotTerminated("busid"),
            "busid is not NUL-terminated",
        ),
        (ProtoError::StringNotUtf8("path"), "path is not UTF-8"),
        (
            ProtoError::UnknownSeqnum(3),
            "RET_SUBMIT for unknown seqnum 3",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
        let _: &dyn std::error::Error = &error;
    }
}

#[test]
fn direction_wire_values() {
    assert_eq!(Direction::from_wire(0), Some(Direction::Out));
    assert_eq!(Direction::from_wire(1), Some(Direction::In));
    assert_eq!(Direction::from_wire(2), None);
    assert_eq!((Direction::Out.to_wire(), Direction::In.to_wire()), (0, 1));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn check_never_panics(data: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(Some((_, n))) = parse_op_request(data) {
        prop_assert!(n > 0 && n <= data.len());
    }
    if let Ok(Some((_, n))) = parse_op_reply(data) {
        prop_assert!(n > 0 && n <= data.len());
    }
    let parsed = parse_command(data);
    let len = command_len(data);
    match &parsed {
        Ok(Some((Command::Submit(cmd), n))) => {
            prop_assert!(*n >= 48 && *n <= data.len());
            prop_assert_eq!(len.clone(), Ok(Some(*n)));
            prop_assert!(cmd.ep <= 15 && cmd.transfer_buffer_length <= MAX_TRANSFER_LENGTH);
            let expected = match cmd.direction {
                Direction::Out => cmd.transfer_buffer_length as usize,
                Direction::In => 0,
            };
            prop_assert_eq!(cmd.data.len(), expected);
            // Re-encoding gives back the same message.
            let mut out = Vec::new();
            encode_cmd_submit(cmd, &mut out);
            prop_assert_eq!(out.len(), *n);
            prop_assert_eq!(parse_command(&out), parsed.clone());
        }
        Ok(Some((Command::Unlink(_), n))) => {
            prop_assert_eq!(*n, 48);
            prop_assert_eq!(len.clone(), Ok(Some(48)));
        }
        Ok(None) => prop_assert!(data.len() < 48 || matches!(len, Ok(Some(l)) if l > data.len())),
        Err(e) => prop_assert_eq!(&len, &Err(e.clone())),
    }
    // The same message with its header and body in separate buffers parses the same.
    if let Some(header) = data.first_chunk::<48>() {
        let split = |body: &[u8]| parse_command_split(header, body.to_vec());
        match (&parsed, &len) {
            (Ok(Some((cmd, n))), _) => {
                prop_assert_eq!(split(&data[48..*n]), Ok(Some(cmd.clone())));
                if *n > 48 {
                    prop_assert_eq!(split(&data[48..*n - 1]), Ok(None));
                }
                if *n < data.len() {
                    prop_assert_eq!(
                        split(&data[48..*n + 1]),
                        Err(ProtoError::BodyTooLong {
                            expected: *n - 48,
                            got: *n + 1 - 48
                        })
                    );
                }
            }
            (Ok(None), _) => prop_assert_eq!(split(&data[48..]), Ok(None)),
            (Err(e), _) => prop_assert_eq!(split(&data[48..]), Err(e.clone())),
        }
    }
    if let Ok(Some((_, n))) = parse_ret(data, dir_by_parity) {
        prop_assert!(n >= 48 && n <= data.len());
    }
    Ok(())
}

/// A command header with plausible-to-hostile field values, then random bytes.
fn command_like() -> impl Strategy<Value = Vec<u8>> {
    (
        0u32..6,
        any::<u32>(),
        prop_oneof![Just(0u32), Just(1), Just(2), any::<u32>()],
        prop_oneof![0u32..17, any::<u32>()],
        prop_oneof![
            0i32..600,
            Just(MAX_TRANSFER_LENGTH as i32),
            Just(-1),
            any::<i32>()
        ],
        prop_oneof![
            Just(0i32),
            Just(-1),
            1i32..4,
            Just(1024),
            Just(1025),
            any::<i32>()
        ],
        proptest::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(command, seqnum, direction, ep, length, packets, tail)| {
            let mut b = header(command, direction, ep, length, packets);
            b[4..8].copy_from_slice(&seqnum.to_be_bytes());
            b.extend_from_slice(&tail);
            b
        })
}

/// An OP header with plausible-to-hostile field values, then random bytes.
fn op_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(USBIP_VERSION), any::<u16>()],
        prop_oneof![
            Just(OP_REQ_DEVLIST),
            Just(OP_REQ_IMPORT),
            Just(OP_REP_DEVLIST),
            Just(OP_REP_IMPORT),
            any::<u16>()
        ],
        prop_oneof![Just(0u32), Just(1), Just(2), any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..1000),
    )
        .prop_map(|(version, code, status, tail)| {
            let mut b = version.to_be_bytes().to_vec();
            b.extend_from_slice(&code.to_be_bytes());
            b.extend_from_slice(&status.to_be_bytes());
            b.extend_from_slice(&tail);
            b
        })
}

fn any_submit() -> impl Strategy<Value = CmdSubmit> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u8..16,
            any::<u32>(),
        ),
        (
            any::<i32>(),
            prop_oneof![Just(0i32), Just(-1), 1i32..8],
            any::<i32>(),
        ),
        any::<[u8; 8]>(),
        proptest::collection::vec(any::<u8>(), 0..300),
        0u32..300,
    )
        .prop_map(
            |(
                (seqnum, devid, dir_in, ep, flags),
                (start, packets, interval),
                setup,
                data,
                in_len,
            )| {
                let direction = if dir_in {
                    Direction::In
                } else {
                    Direction::Out
                };
                let (length, data) = if dir_in {
                    (in_len, vec![])
                } else {
                    (data.len() as u32, data)
                };
                CmdSubmit {
                    seqnum,
                    devid,
                    direction,
                    ep,
                    transfer_flags: flags,
                    transfer_buffer_length: length,
                    start_frame: start,
                    number_of_packets: packets,
                    interval,
                    setup,
                    data,
                }
            },
        )
}

fn any_device() -> impl Strategy<Value = DeviceInfo> {
    (
        ("\\PC{0,60}", "[a-z0-9.:-]{0,31}"),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        any::<[u8; 5]>(),
        proptest::collection::vec(any::<(u8, u8, u8)>(), 0..6),
    )
        .prop_map(
            |((path, busid), (busnum, devnum, speed), (vid, pid, bcd), b, interfaces)| DeviceInfo {
                path,
                busid,
                busnum,
                devnum,
                speed,
                id_vendor: vid,
                id_product: pid,
                bcd_device: bcd,
                device_class: b[0],
                device_subclass: b[1],
                device_protocol: b[2],
                configuration_value: b[3],
                num_configurations: b[4],
                interfaces,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        check_never_panics(&data)?;
    }

    #[test]
    fn command_like_bytes_never_panic(data in command_like()) {
        check_never_panics(&data)?;
    }

    #[test]
    fn op_like_bytes_never_panic(data in op_like()) {
        check_never_panics(&data)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn submit_round_trip(cmd in any_submit(), extra in proptest::collection::vec(any::<u8>(), 0..60)) {
        let mut out = Vec::new();
        encode_cmd_submit(&cmd, &mut out);
        let total = out.len();
        prop_assert_eq!(command_len(&out), Ok(Some(total)));
        for i in 0..total {
            prop_assert_eq!(parse_command(&out[..i]), Ok(None));
        }
        // Header and body apart: the body becomes the payload as it is.
        let header: [u8; 48] = out[..48].try_into().unwrap();
        let body = out[48..].to_vec();
        prop_assert_eq!(
            parse_command_split(&header, body),
            Ok(Some(Command::Submit(cmd.clone())))
        );
        out.extend_from_slice(&extra);
        prop_assert_eq!(parse_command(&out), Ok(Some((Command::Submit(cmd), total))));
    }

    #[test]
    fn unlink_round_trip(seqnum: u32, devid: u32, dir_in: bool, ep in 0u8..16, unlink_seqnum: u32) {
        let direction = if dir_in { Direction::In } else { Direction::Out };
        let cmd = CmdUnlink { seqnum, devid, direction, ep, unlink_seqnum };
        let mut out = Vec::new();
        encode_cmd_unlink(&cmd, &mut out);
        prop_assert_eq!(parse_command(&out), Ok(Some((Command::Unlink(cmd), 48))));
    }

    #[test]
    fn ret_round_trip(
        seqnum: u32,
        status: i32,
        data in proptest::collection::vec(any::<u8>(), 0..300),
        out_len in 0u32..100_000,
        dir_in: bool,
    ) {
        let mut out = Vec::new();
        let direction = if dir_in { Direction::In } else { Direction::Out };
        let (actual, payload) = if dir_in { (data.len() as u32, Some(&data[..])) } else { (out_len, None) };
        encode_ret_submit(seqnum, status, actual, payload, &mut out);
        encode_ret_unlink(seqnum.wrapping_add(1), status, &mut out);
        let first = out.len() - 48;
        for i in 0..first {
            prop_assert_eq!(parse_ret(&out[..i], |_| Some(direction)), Ok(None));
        }
        let (ret, n) = parse_ret(&out, |s| (s == seqnum).then_some(direction)).unwrap().unwrap();
        prop_assert_eq!(n, first);
        let Ret::Submit(ret) = ret else { panic!("not a submit") };
        prop_assert_eq!((ret.seqnum, ret.status, ret.actual_length), (seqnum, status, actual));
        prop_assert_eq!(ret.data, if dir_in { data } else { vec![] });
        let (ret, n) = parse_ret(&out[first..], |_| None).unwrap().unwrap();
        prop_assert_eq!(n, 48);
        prop_assert_eq!(
            ret,
            Ret::Unlink(RetUnlink { seqnum: seqnum.wrapping_add(1), devid: 0, direction: 0, ep: 0, status })
        );
    }

    #[test]
    fn devlist_round_trip(devices in proptest::collection::vec(any_device(), 0..4)) {
        let mut out = Vec::new();
        encode_devlist_reply(&devices, &mut out);
        let (reply, n) = parse_op_reply(&out).unwrap().unwrap();
        prop_assert_eq!(n, out.len());
        for i in (0..out.len()).step_by(7) {
            prop_assert_eq!(parse_op_reply(&out[..i]), Ok(None));
        }
        prop_assert_eq!(reply, OpReply::DevList { status: ST_OK, devices: devices.clone() });

        for device in &devices {
            let mut out = Vec::new();
            encode_import_reply(ST_OK, Some(device), &mut out);
            let (reply, n) = parse_op_reply(&out).unwrap().unwrap();
            prop_assert_eq!(n, 8 + 0x138);
            let mut expected = device.clone();
            expected.interfaces.clear();
            prop_assert_eq!(
                reply,
                OpReply::Import {
                    status: ST_OK,
                    device: Some(expected),
                    num_interfaces: device.interfaces.len() as u8,
                }
            );
        }
    }

    #[test]
    fn import_request_round_trip(busid in "[^\\x00]{0,10}") {
        let mut out = Vec::new();
        encode_op_request_import(&busid, &mut out);
        prop_assert_eq!(out.len(), 40);
        let (request, n) = parse_op_request(&out).unwrap().unwrap();
        prop_assert_eq!(n, 40);
        let OpRequest::Import { busid: parsed } = request else { panic!("not an import") };
        // At most 31 bytes survive, cut at a character boundary.
        prop_assert!(busid.starts_with(&parsed) && parsed.len() <= 31);
        prop_assert!(parsed.len() == busid.len() || parsed.len() + 4 > 31);
    }
}

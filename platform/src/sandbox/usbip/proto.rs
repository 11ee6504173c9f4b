//! USB/IP wire codec (protocol version 0x0111, as Linux `usbip`/`vhci-hcd` speak it): pure
//! encoders and incremental parsers for the OP phase (`OP_REQ/REP_DEVLIST`, `OP_REQ/REP_IMPORT`)
//! and the URB phase (`CMD/RET_SUBMIT`, `CMD/RET_UNLINK`). No I/O, no `unsafe`, big-endian
//! everywhere.
//!
//! Parsers take the bytes received so far and return `Ok(None)` while a message is incomplete,
//! `Ok(Some((message, consumed)))` once it is whole (`consumed` never exceeds the input), or a
//! [`ProtoError`] for input no conforming peer sends (the caller then closes the connection; the
//! parsers do not resynchronise). They never panic and never allocate more than the bytes they
//! were given: a header announcing a huge transfer is rejected from its 48 bytes
//! ([`MAX_TRANSFER_LENGTH`]), and a payload is only copied once it has fully arrived.
//!
//! Isochronous URBs: a `number_of_packets` of 0 or -1 (`0xffffffff`) means "not ISO"; a count
//! `1..=MAX_ISO_PACKETS` makes the parsers skip that many 16-byte ISO descriptors after the
//! payload (the message is accepted and the count reported, so a device without ISO endpoints
//! can fail the URB cleanly); any other count is an error. The encoders never emit ISO
//! descriptors except [`encode_cmd_submit`], which writes zeroed ones so round trips hold.

use std::fmt;
use std::string::String;
use std::vec::Vec;

/// Protocol version carried by every OP message (USB/IP 1.1.1).
pub const USBIP_VERSION: u16 = 0x0111;

/// OP code of a device-list request.
pub const OP_REQ_DEVLIST: u16 = 0x8005;
/// OP code of a device-list reply.
pub const OP_REP_DEVLIST: u16 = 0x0005;
/// OP code of an import request.
pub const OP_REQ_IMPORT: u16 = 0x8003;
/// OP code of an import reply.
pub const OP_REP_IMPORT: u16 = 0x0003;

/// URB-phase command: submit a URB (client → device).
pub const USBIP_CMD_SUBMIT: u32 = 1;
/// URB-phase command: unlink a submitted URB (client → device).
pub const USBIP_CMD_UNLINK: u32 = 2;
/// URB-phase reply: a URB completed (device → client).
pub const USBIP_RET_SUBMIT: u32 = 3;
/// URB-phase reply: an unlink was handled (device → client).
pub const USBIP_RET_UNLINK: u32 = 4;

/// OP status: request completed successfully.
pub const ST_OK: u32 = 0;
/// OP status: request not available.
pub const ST_NA: u32 = 1;
/// OP status: device busy (already exported/imported).
pub const ST_DEV_BUSY: u32 = 2;
/// OP status: device in error state.
pub const ST_DEV_ERR: u32 = 3;
/// OP status: no such device (unknown busid).
pub const ST_NODEV: u32 = 4;
/// OP status: unexpected failure.
pub const ST_ERROR: u32 = 5;

/// URB status `-EPIPE`: endpoint stalled / control request error.
pub const EPIPE: i32 = -32;
/// URB status `-ECONNRESET`: URB unlinked before completion (in `RET_UNLINK`).
pub const ECONNRESET: i32 = -104;
/// URB status `-EOVERFLOW`: babble, the device had more data than fits the URB.
pub const EOVERFLOW: i32 = -75;
/// URB status `-EPROTO`: protocol error (e.g. URB for an endpoint that does not exist).
pub const EPROTO: i32 = -71;

/// `enum usb_device_speed`: unknown (rejected by vhci's `attach`).
pub const SPEED_UNKNOWN: u32 = 0;
/// `enum usb_device_speed`: low speed (1.5 Mbit/s).
pub const SPEED_LOW: u32 = 1;
/// `enum usb_device_speed`: full speed (12 Mbit/s).
pub const SPEED_FULL: u32 = 2;
/// `enum usb_device_speed`: high speed (480 Mbit/s).
pub const SPEED_HIGH: u32 = 3;
/// `enum usb_device_speed`: wireless.
pub const SPEED_WIRELESS: u32 = 4;
/// `enum usb_device_speed`: SuperSpeed (vhci attaches it to its SuperSpeed root hub).
pub const SPEED_SUPER: u32 = 5;
/// `enum usb_device_speed`: SuperSpeed Plus (recent kernels only).
pub const SPEED_SUPER_PLUS: u32 = 6;

/// Transfer flag: a short IN transfer is an error (`-EREMOTEIO` on the host).
pub const URB_SHORT_NOT_OK: u32 = 0x1;
/// Transfer flag: terminate an OUT transfer that is a multiple of wMaxPacketSize with a ZLP.
pub const URB_ZERO_PACKET: u32 = 0x40;
/// Transfer flag: the URB is IN (mirrors the header's direction; a cross-check only).
pub const URB_DIR_IN: u32 = 0x200;

/// Length of an OP header (`version, code, status`) and of a whole `OP_REQ_DEVLIST`.
pub const OP_HEADER_LEN: usize = 8;
/// Length of a whole `OP_REQ_IMPORT` (header + `busid[32]`).
pub const OP_REQ_IMPORT_LEN: usize = OP_HEADER_LEN + BUSID_LEN;
/// Size of the `path` field of `usbip_usb_device`.
pub const PATH_LEN: usize = 256;
/// Size of a `busid` field.
pub const BUSID_LEN: usize = 32;
/// Size of `struct usbip_usb_device`.
pub const USB_DEVICE_LEN: usize = 0x138;
/// Size of one interface entry after a device in `OP_REP_DEVLIST`.
pub const INTERFACE_ENTRY_LEN: usize = 4;
/// Size of every URB-phase header.
pub const URB_HEADER_LEN: usize = 48;
/// Size of one ISO packet descriptor.
pub const ISO_DESCRIPTOR_LEN: usize = 16;

/// Largest `transfer_buffer_length`/`actual_length` accepted (16 MiB; Linux usb-storage URBs are
/// at most 1 MiB, usbfs caps all buffers at 16 MiB by default). Anything larger is an error, so a
/// hostile header cannot make anyone buffer gigabytes.
pub const MAX_TRANSFER_LENGTH: u32 = 16 * 1024 * 1024;
/// Largest ISO packet count accepted (its descriptors are skipped: at most 16 KiB).
pub const MAX_ISO_PACKETS: u32 = 1024;

/// `number_of_packets` value the protocol document prescribes for non-ISO URBs (`0xffffffff`);
/// Linux vhci sends 0. Both mean "not ISO".
pub const NON_ISO_PACKETS: i32 = -1;

/// A malformed message: the peer is not speaking USB/IP 1.1.1 (correctly). Close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// OP message with a version other than [`USBIP_VERSION`].
    BadVersion(u16),
    /// OP message with a code this side does not accept (a reply code where a request is
    /// expected included).
    UnknownOpCode(u16),
    /// URB-phase message with a command this side does not accept (a RET where a CMD is
    /// expected included).
    UnknownCommand(u32),
    /// URB header direction other than 0 (OUT) or 1 (IN).
    BadDirection(u32),
    /// URB header endpoint number above 15.
    BadEndpoint(u32),
    /// `transfer_buffer_length` or `actual_length` negative as the protocol's `s32`.
    NegativeLength(i32),
    /// `transfer_buffer_length` or `actual_length` above [`MAX_TRANSFER_LENGTH`].
    TransferTooLarge(u32),
    /// `number_of_packets` negative (other than -1) or above [`MAX_ISO_PACKETS`].
    BadPacketCount(i32),
    /// A fixed-size string field (`busid`, `path`) without a terminating NUL.
    StringNotTerminated(&'static str),
    /// A fixed-size string field (`busid`, `path`) that is not UTF-8.
    StringNotUtf8(&'static str),
    /// `RET_SUBMIT` for a seqnum the caller has no URB for (see [`parse_ret`]).
    UnknownSeqnum(u32),
    /// [`parse_command_split`]: more bytes after the header than the message has (`got`;
    /// the header says `expected`).
    BodyTooLong {
        /// Bytes the header says follow it.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadVersion(v) => {
                write!(
                    f,
                    "bad USB/IP version {v:#06x} (expected {USBIP_VERSION:#06x})"
                )
            }
            Self::UnknownOpCode(c) => write!(f, "unknown or unexpected OP code {c:#06x}"),
            Self::UnknownCommand(c) => write!(f, "unknown or unexpected URB command {c:#x}"),
            Self::BadDirection(d) => write!(f, "bad direction value {d} (expected 0 or 1)"),
            Self::BadEndpoint(ep) => write!(f, "bad endpoint number {ep} (expected 0..=15)"),
            Self::NegativeLength(n) => write!(f, "negative transfer length {n}"),
            Self::TransferTooLarge(n) => {
                write!(
                    f,
                    "oversized transfer of {n} bytes (max {MAX_TRANSFER_LENGTH})"
                )
            }
            Self::BadPacketCount(n) => write!(
                f,
                "bogus number_of_packets {n} (expected 0, -1 or 1..={MAX_ISO_PACKETS})"
            ),
            Self::StringNotTerminated(field) => write!(f, "{field} is not NUL-terminated"),
            Self::StringNotUtf8(field) => write!(f, "{field} is not UTF-8"),
            Self::UnknownSeqnum(s) => write!(f, "RET_SUBMIT for unknown seqnum {s}"),
            Self::BodyTooLong { expected, got } => write!(
                f,
                "{got} bytes given after a header that {expected} bytes follow"
            ),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Data direction of a URB, as in the header's `direction` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host to device (wire value 0).
    Out,
    /// Device to host (wire value 1).
    In,
}

impl Direction {
    /// The direction for a wire value, `None` unless 0 or 1.
    pub fn from_wire(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::Out),
            1 => Some(Self::In),
            _ => None,
        }
    }

    /// The wire value: 0 for OUT, 1 for IN.
    pub fn to_wire(self) -> u32 {
        match self {
            Self::Out => 0,
            Self::In => 1,
        }
    }
}

/// An exported device as `OP_REP_DEVLIST`/`OP_REP_IMPORT` describe it (`struct usbip_usb_device`
/// plus, for the device list, its interfaces).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInfo {
    /// Sysfs-like path, informational (at most 255 bytes are sent).
    pub path: String,
    /// Bus id the client imports by, e.g. `"1-1"` (at most 31 bytes are sent).
    pub busid: String,
    /// Bus number; the client passes it on as a `u8`, keep it below 256.
    pub busnum: u32,
    /// Device number; the client passes it on as a `u8`, keep it below 256.
    pub devnum: u32,
    /// One of the `SPEED_*` constants.
    pub speed: u32,
    /// `idVendor`.
    pub id_vendor: u16,
    /// `idProduct`.
    pub id_product: u16,
    /// `bcdDevice`.
    pub bcd_device: u16,
    /// `bDeviceClass`.
    pub device_class: u8,
    /// `bDeviceSubClass`.
    pub device_subclass: u8,
    /// `bDeviceProtocol`.
    pub device_protocol: u8,
    /// `bConfigurationValue` of the active configuration.
    pub configuration_value: u8,
    /// `bNumConfigurations`.
    pub num_configurations: u8,
    /// `(bInterfaceClass, bInterfaceSubClass, bInterfaceProtocol)` per interface; its length is
    /// sent as `bNumInterfaces` (at most 255 are sent).
    pub interfaces: Vec<(u8, u8, u8)>,
}

impl DeviceInfo {
    /// Appends the 0x138-byte `struct usbip_usb_device` (without the interface list).
    ///
    /// `path` and `busid` are truncated at a character boundary so that a NUL always follows
    /// them (255 and 31 bytes at most), `bNumInterfaces` is `min(interfaces.len(), 255)`.
    pub fn encode_usb_device(&self, out: &mut Vec<u8>) {
        put_c_string(out, &self.path, PATH_LEN);
        put_c_string(out, &self.busid, BUSID_LEN);
        out.extend_from_slice(&self.busnum.to_be_bytes());
        out.extend_from_slice(&self.devnum.to_be_bytes());
        out.extend_from_slice(&self.speed.to_be_bytes());
        out.extend_from_slice(&self.id_vendor.to_be_bytes());
        out.extend_from_slice(&self.id_product.to_be_bytes());
        out.extend_from_slice(&self.bcd_device.to_be_bytes());
        out.extend_from_slice(&[
            self.device_class,
            self.device_subclass,
            self.device_protocol,
            self.configuration_value,
            self.num_configurations,
            self.num_interfaces(),
        ]);
    }

    /// `bNumInterfaces` as sent: the number of interfaces, capped at 255.
    pub fn num_interfaces(&self) -> u8 {
        u8::try_from(self.interfaces.len()).unwrap_or(u8::MAX)
    }

    /// Parses a `struct usbip_usb_device`; returns the device (with an empty interface list) and
    /// its `bNumInterfaces`.
    pub fn decode_usb_device(raw: &[u8; USB_DEVICE_LEN]) -> Result<(Self, u8), ProtoError> {
        let device = Self {
            path: c_string(&raw[..PATH_LEN], "path")?,
            busid: c_string(&raw[PATH_LEN..PATH_LEN + BUSID_LEN], "busid")?,
            busnum: be_u32(raw, 0x120),
            devnum: be_u32(raw, 0x124),
            speed: be_u32(raw, 0x128),
            id_vendor: be_u16(raw, 0x12C),
            id_product: be_u16(raw, 0x12E),
            bcd_device: be_u16(raw, 0x130),
            device_class: raw[0x132],
            device_subclass: raw[0x133],
            device_protocol: raw[0x134],
            configuration_value: raw[0x135],
            num_configurations: raw[0x136],
            interfaces: Vec::new(),
        };
        Ok((device, raw[0x137]))
    }
}

// ---------------------------------------------------------------------------------------------
// OP phase
// ---------------------------------------------------------------------------------------------

/// A request of the OP phase (client → server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpRequest {
    /// `OP_REQ_DEVLIST`: list the exported devices.
    DevList,
    /// `OP_REQ_IMPORT`: attach the device with this bus id; on success the connection switches
    /// to the URB phase.
    Import {
        /// The requested bus id (the bytes before the first NUL of the 32-byte field).
        busid: String,
    },
}

/// Parses one OP request from the start of `buf`.
///
/// `Ok(None)` until the whole message (8 bytes for DEVLIST, 40 for IMPORT) is there. The header's
/// status field is ignored (clients send 0). Errors: [`ProtoError::BadVersion`],
/// [`ProtoError::UnknownOpCode`] (reply codes included), and for IMPORT a busid without NUL in its
/// 32 bytes ([`ProtoError::StringNotTerminated`]) or not UTF-8 ([`ProtoError::StringNotUtf8`]).
pub fn parse_op_request(buf: &[u8]) -> Result<Option<(OpRequest, usize)>, ProtoError> {
    let Some(header) = buf.first_chunk::<OP_HEADER_LEN>() else {
        return Ok(None);
    };
    match op_header(header)? {
        (OP_REQ_DEVLIST, _) => Ok(Some((OpRequest::DevList, OP_HEADER_LEN))),
        (OP_REQ_IMPORT, _) => {
            let Some(msg) = buf.first_chunk::<OP_REQ_IMPORT_LEN>() else {
                return Ok(None);
            };
            let busid = c_string(&msg[OP_HEADER_LEN..], "busid")?;
            Ok(Some((OpRequest::Import { busid }, OP_REQ_IMPORT_LEN)))
        }
        (code, _) => Err(ProtoError::UnknownOpCode(code)),
    }
}

/// Appends an `OP_REQ_DEVLIST` (8 bytes).
pub fn encode_op_request_devlist(out: &mut Vec<u8>) {
    put_op_header(out, OP_REQ_DEVLIST, ST_OK);
}

/// Appends an `OP_REQ_IMPORT` (40 bytes); `busid` is truncated to 31 bytes at a character
/// boundary and NUL-padded.
pub fn encode_op_request_import(busid: &str, out: &mut Vec<u8>) {
    put_op_header(out, OP_REQ_IMPORT, ST_OK);
    put_c_string(out, busid, BUSID_LEN);
}

/// Appends an `OP_REP_DEVLIST` with status [`ST_OK`]: the header, the device count, then each
/// device's `usbip_usb_device` followed by `bNumInterfaces` × `{class, subclass, protocol, 0}`.
pub fn encode_devlist_reply(devices: &[DeviceInfo], out: &mut Vec<u8>) {
    put_op_header(out, OP_REP_DEVLIST, ST_OK);
    let count = u32::try_from(devices.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for device in devices.iter().take(count as usize) {
        device.encode_usb_device(out);
        let sent = usize::from(device.num_interfaces());
        for &(class, subclass, protocol) in device.interfaces.iter().take(sent) {
            out.extend_from_slice(&[class, subclass, protocol, 0]);
        }
    }
}

/// Appends an `OP_REP_IMPORT`: the 8-byte header, and iff `status` is [`ST_OK`] the device's
/// `usbip_usb_device` (no interface list). `ST_OK` without a device would be a reply the client
/// cannot parse, so it is sent as [`ST_NODEV`]; with any other status `device` is ignored.
pub fn encode_import_reply(status: u32, device: Option<&DeviceInfo>, out: &mut Vec<u8>) {
    match (status, device) {
        (ST_OK, Some(device)) => {
            put_op_header(out, OP_REP_IMPORT, ST_OK);
            device.encode_usb_device(out);
        }
        (ST_OK, None) => put_op_header(out, OP_REP_IMPORT, ST_NODEV),
        (status, _) => put_op_header(out, OP_REP_IMPORT, status),
    }
}

/// A reply of the OP phase (server → client), for test clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpReply {
    /// `OP_REP_DEVLIST`; a non-OK reply ends after its 8-byte header (`devices` empty).
    DevList {
        /// One of the `ST_*` values.
        status: u32,
        /// The exported devices with their interfaces.
        devices: Vec<DeviceInfo>,
    },
    /// `OP_REP_IMPORT`.
    Import {
        /// One of the `ST_*` values.
        status: u32,
        /// The imported device iff `status` is [`ST_OK`]; its `interfaces` is empty (the reply
        /// has no interface list).
        device: Option<DeviceInfo>,
        /// The device's `bNumInterfaces` (0 without a device).
        num_interfaces: u8,
    },
}

/// Parses one OP reply from the start of `buf` (client side).
///
/// `Ok(None)` until the whole reply is there. A reply with a status other than [`ST_OK`] is
/// taken to end after its 8-byte header (what the Linux tools do). Errors:
/// [`ProtoError::BadVersion`], [`ProtoError::UnknownOpCode`] (request codes included), and
/// `path`/`busid` fields without NUL or not UTF-8. The device count of a DEVLIST reply does not
/// drive any allocation: devices are only collected as their bytes arrive.
pub fn parse_op_reply(buf: &[u8]) -> Result<Option<(OpReply, usize)>, ProtoError> {
    let Some(header) = buf.first_chunk::<OP_HEADER_LEN>() else {
        return Ok(None);
    };
    match op_header(header)? {
        (OP_REP_IMPORT, status) if status != ST_OK => Ok(Some((
            OpReply::Import {
                status,
                device: None,
                num_interfaces: 0,
            },
            OP_HEADER_LEN,
        ))),
        (OP_REP_IMPORT, status) => {
            let Some(raw) = buf[OP_HEADER_LEN..].first_chunk::<USB_DEVICE_LEN>() else {
                return Ok(None);
            };
            let (device, num_interfaces) = DeviceInfo::decode_usb_device(raw)?;
            Ok(Some((
                OpReply::Import {
                    status,
                    device: Some(device),
                    num_interfaces,
                },
                OP_HEADER_LEN + USB_DEVICE_LEN,
            )))
        }
        (OP_REP_DEVLIST, status) if status != ST_OK => Ok(Some((
            OpReply::DevList {
                status,
                devices: Vec::new(),
            },
            OP_HEADER_LEN,
        ))),
        (OP_REP_DEVLIST, status) => {
            let Some(count) = buf.first_chunk::<{ OP_HEADER_LEN + 4 }>() else {
                return Ok(None);
            };
            let count = be_u32(count, OP_HEADER_LEN);
            let mut pos = OP_HEADER_LEN + 4;
            let fits = (buf.len() - pos) / USB_DEVICE_LEN;
            let mut devices = Vec::with_capacity(fits.min(count as usize));
            for _ in 0..count {
                let Some(raw) = buf[pos..].first_chunk::<USB_DEVICE_LEN>() else {
                    return Ok(None);
                };
                let (mut device, num_interfaces) = DeviceInfo::decode_usb_device(raw)?;
                pos += USB_DEVICE_LEN;
                let list_len = usize::from(num_interfaces) * INTERFACE_ENTRY_LEN;
                let Some(list) = buf[pos..].get(..list_len) else {
                    return Ok(None);
                };
                device.interfaces = list
                    .chunks_exact(INTERFACE_ENTRY_LEN)
                    .map(|entry| (entry[0], entry[1], entry[2]))
                    .collect();
                pos += list_len;
                devices.push(device);
            }
            Ok(Some((OpReply::DevList { status, devices }, pos)))
        }
        (code, _) => Err(ProtoError::UnknownOpCode(code)),
    }
}

// ---------------------------------------------------------------------------------------------
// URB phase
// ---------------------------------------------------------------------------------------------

/// `USBIP_CMD_SUBMIT`: a URB to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdSubmit {
    /// Sequence number the reply must carry (increasing with gaps; shared with UNLINKs).
    pub seqnum: u32,
    /// `busnum << 16 | devnum` of the attached device.
    pub devid: u32,
    /// Pipe direction (for control URBs: that of the data stage).
    pub direction: Direction,
    /// Endpoint number 0..=15 (no 0x80 bit).
    pub ep: u8,
    /// URB transfer flags (`URB_*`).
    pub transfer_flags: u32,
    /// Buffer length: bytes to send (OUT) or the most to return (IN); at most
    /// [`MAX_TRANSFER_LENGTH`].
    pub transfer_buffer_length: u32,
    /// ISO start frame (meaningless otherwise).
    pub start_frame: i32,
    /// 0 or -1 ([`NON_ISO_PACKETS`]) for non-ISO URBs, else the ISO packet count (whose
    /// descriptors the parser skipped).
    pub number_of_packets: i32,
    /// Polling interval (meaningless here).
    pub interval: i32,
    /// The SETUP packet for control URBs, zeros otherwise.
    pub setup: [u8; 8],
    /// OUT payload: exactly `transfer_buffer_length` bytes when parsed; empty for IN.
    pub data: Vec<u8>,
}

impl CmdSubmit {
    /// Number of ISO packets (0 for a non-ISO URB).
    pub fn iso_packets(&self) -> u32 {
        u32::try_from(self.number_of_packets).unwrap_or(0)
    }

    /// Whether `URB_SHORT_NOT_OK` is set.
    pub fn short_not_ok(&self) -> bool {
        self.transfer_flags & URB_SHORT_NOT_OK != 0
    }

    /// Whether `URB_ZERO_PACKET` is set.
    pub fn zero_packet(&self) -> bool {
        self.transfer_flags & URB_ZERO_PACKET != 0
    }
}

/// `USBIP_CMD_UNLINK`: cancel the URB with `unlink_seqnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdUnlink {
    /// Sequence number of this UNLINK; the RET_UNLINK carries it.
    pub seqnum: u32,
    /// `busnum << 16 | devnum` of the attached device.
    pub devid: u32,
    /// Header direction (vhci sends 0).
    pub direction: Direction,
    /// Header endpoint (vhci sends 0).
    pub ep: u8,
    /// Sequence number of the CMD_SUBMIT to cancel.
    pub unlink_seqnum: u32,
}

/// A URB-phase command (client → device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USBIP_CMD_SUBMIT`.
    Submit(CmdSubmit),
    /// `USBIP_CMD_UNLINK`.
    Unlink(CmdUnlink),
}

/// Parses one URB-phase command from the start of `buf`.
///
/// `Ok(None)` while fewer than 48 bytes, or fewer than the whole message (header, OUT payload of
/// `transfer_buffer_length` bytes, ISO descriptors), are there; the header alone is validated as
/// soon as it is complete. The OUT payload is copied only once fully received. Errors:
/// [`ProtoError::UnknownCommand`] (anything but 1 and 2), [`ProtoError::BadDirection`],
/// [`ProtoError::BadEndpoint`], [`ProtoError::NegativeLength`],
/// [`ProtoError::TransferTooLarge`], [`ProtoError::BadPacketCount`].
pub fn parse_command(buf: &[u8]) -> Result<Option<(Command, usize)>, ProtoError> {
    let Some(header) = buf.first_chunk::<URB_HEADER_LEN>() else {
        return Ok(None);
    };
    let (basic, payload_len, total) = command_layout(header)?;
    if buf.len() < total {
        return Ok(None);
    }
    let data = buf[URB_HEADER_LEN..URB_HEADER_LEN + payload_len].to_vec();
    Ok(Some((command(header, basic, data), total)))
}

/// [`parse_command`] for a message whose header and the bytes after it (`body`: the OUT
/// payload, then any ISO descriptors) are in separate buffers. A reader that learns the
/// message's length from [`command_len`] can read a large payload straight into a buffer of
/// its own, which becomes the command's `data` without a copy. `Ok(None)` while `body` is
/// shorter than the header says; [`ProtoError::BodyTooLong`] if it is longer (the rest
/// belongs to the next message); the header's errors as for [`parse_command`].
pub fn parse_command_split(
    header: &[u8; URB_HEADER_LEN],
    mut body: Vec<u8>,
) -> Result<Option<Command>, ProtoError> {
    let (basic, payload_len, total) = command_layout(header)?;
    let expected = total - URB_HEADER_LEN;
    if body.len() > expected {
        return Err(ProtoError::BodyTooLong {
            expected,
            got: body.len(),
        });
    }
    if body.len() < expected {
        return Ok(None);
    }
    body.truncate(payload_len);
    Ok(Some(command(header, basic, body)))
}

/// The command of a validated header, with `data` (the OUT payload of a submit).
fn command(header: &[u8; URB_HEADER_LEN], basic: BasicHeader, data: Vec<u8>) -> Command {
    if basic.command == USBIP_CMD_SUBMIT {
        Command::Submit(CmdSubmit {
            seqnum: basic.seqnum,
            devid: basic.devid,
            direction: basic.direction,
            ep: basic.ep,
            transfer_flags: be_u32(header, 0x14),
            transfer_buffer_length: be_u32(header, 0x18),
            start_frame: be_i32(header, 0x1C),
            number_of_packets: be_i32(header, 0x20),
            interval: be_i32(header, 0x24),
            setup: copy_array(header, 0x28),
            data,
        })
    } else {
        Command::Unlink(CmdUnlink {
            seqnum: basic.seqnum,
            devid: basic.devid,
            direction: basic.direction,
            ep: basic.ep,
            unlink_seqnum: be_u32(header, 0x14),
        })
    }
}

/// The total length of the command starting at `buf` (header, payload, ISO descriptors), as soon
/// as its 48-byte header is there (`Ok(None)` before); the same validation and errors as
/// [`parse_command`]. Lets a reader size its buffer before the payload arrives.
pub fn command_len(buf: &[u8]) -> Result<Option<usize>, ProtoError> {
    let Some(header) = buf.first_chunk::<URB_HEADER_LEN>() else {
        return Ok(None);
    };
    command_layout(header).map(|(_, _, total)| Some(total))
}

/// Appends a `USBIP_CMD_SUBMIT` (test clients). Fields are written verbatim; `data` follows the
/// header iff `direction` is OUT (a well-formed message has `data.len() ==
/// transfer_buffer_length`), then, for `number_of_packets` in `1..=MAX_ISO_PACKETS`, that many
/// zeroed ISO descriptors.
pub fn encode_cmd_submit(cmd: &CmdSubmit, out: &mut Vec<u8>) {
    put_basic_header(
        out,
        USBIP_CMD_SUBMIT,
        cmd.seqnum,
        cmd.devid,
        cmd.direction.to_wire(),
        cmd.ep,
    );
    out.extend_from_slice(&cmd.transfer_flags.to_be_bytes());
    out.extend_from_slice(&cmd.transfer_buffer_length.to_be_bytes());
    out.extend_from_slice(&cmd.start_frame.to_be_bytes());
    out.extend_from_slice(&cmd.number_of_packets.to_be_bytes());
    out.extend_from_slice(&cmd.interval.to_be_bytes());
    out.extend_from_slice(&cmd.setup);
    if cmd.direction == Direction::Out {
        out.extend_from_slice(&cmd.data);
    }
    let iso = cmd.iso_packets();
    if iso <= MAX_ISO_PACKETS {
        out.resize(out.len() + iso as usize * ISO_DESCRIPTOR_LEN, 0);
    }
}

/// Appends a `USBIP_CMD_UNLINK` (48 bytes; test clients).
pub fn encode_cmd_unlink(cmd: &CmdUnlink, out: &mut Vec<u8>) {
    put_basic_header(
        out,
        USBIP_CMD_UNLINK,
        cmd.seqnum,
        cmd.devid,
        cmd.direction.to_wire(),
        cmd.ep,
    );
    out.extend_from_slice(&cmd.unlink_seqnum.to_be_bytes());
    out.resize(out.len() + 24, 0);
}

/// Appends a `USBIP_RET_SUBMIT`: the 48-byte header (devid, direction, ep, start_frame,
/// number_of_packets, error_count zero), then the IN payload.
///
/// For an OUT URB pass `data_in = None`: `actual_length` is the number of bytes consumed and no
/// payload follows. For an IN URB pass `Some(buffer)`: the payload is
/// `buffer[..min(actual_length, buffer.len())]` and the header's `actual_length` is that length,
/// so header and payload always agree (the URB's `transfer_buffer_length` is the caller's to
/// respect).
pub fn encode_ret_submit(
    seqnum: u32,
    status: i32,
    actual_length: u32,
    data_in: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let payload = data_in.map(|data| {
        let len = data
            .len()
            .min(usize::try_from(actual_length).unwrap_or(usize::MAX));
        &data[..len]
    });
    let actual_length = payload.map_or(actual_length, |p| u32::try_from(p.len()).unwrap_or(0));
    put_basic_header(out, USBIP_RET_SUBMIT, seqnum, 0, 0, 0);
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&actual_length.to_be_bytes());
    out.resize(out.len() + 20, 0); // start_frame, number_of_packets, error_count, pad[8]
    if let Some(payload) = payload {
        out.extend_from_slice(payload);
    }
}

/// Appends a `USBIP_RET_UNLINK` (48 bytes; devid, direction, ep zero). `seqnum` is that of the
/// CMD_UNLINK; `status` is [`ECONNRESET`] if the URB was removed unanswered, 0 if it had already
/// been answered.
pub fn encode_ret_unlink(seqnum: u32, status: i32, out: &mut Vec<u8>) {
    put_basic_header(out, USBIP_RET_UNLINK, seqnum, 0, 0, 0);
    out.extend_from_slice(&status.to_be_bytes());
    out.resize(out.len() + 24, 0);
}

/// `USBIP_RET_SUBMIT` as parsed by a test client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetSubmit {
    /// Seqnum of the completed CMD_SUBMIT.
    pub seqnum: u32,
    /// Header devid as sent (should be 0).
    pub devid: u32,
    /// Header direction as sent (should be 0).
    pub direction: u32,
    /// Header ep as sent (should be 0).
    pub ep: u32,
    /// 0 or a negative errno.
    pub status: i32,
    /// Bytes transferred.
    pub actual_length: u32,
    /// ISO start frame.
    pub start_frame: i32,
    /// ISO packet count (0 or -1 for non-ISO; descriptors skipped).
    pub number_of_packets: i32,
    /// ISO error count.
    pub error_count: i32,
    /// IN payload (`actual_length` bytes); empty for OUT.
    pub data: Vec<u8>,
}

/// `USBIP_RET_UNLINK` as parsed by a test client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetUnlink {
    /// Seqnum of the CMD_UNLINK.
    pub seqnum: u32,
    /// Header devid as sent (should be 0).
    pub devid: u32,
    /// Header direction as sent (should be 0).
    pub direction: u32,
    /// Header ep as sent (should be 0).
    pub ep: u32,
    /// [`ECONNRESET`] (URB removed) or 0 (already answered).
    pub status: i32,
}

/// A URB-phase reply (device → client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// `USBIP_RET_SUBMIT`.
    Submit(RetSubmit),
    /// `USBIP_RET_UNLINK`.
    Unlink(RetUnlink),
}

/// Parses one URB-phase reply from the start of `buf` (client side).
///
/// Whether a RET_SUBMIT carries a payload depends on the direction of the URB it answers, which
/// only the client knows: once the header is complete, `direction_of(seqnum)` is asked (possibly
/// again on a later call while the payload is incomplete); `None` means no such URB is pending
/// ([`ProtoError::UnknownSeqnum`]). IN replies carry `actual_length` bytes, OUT replies none; the
/// header's direction/ep fields are not interpreted (vhci ignores them too). Errors:
/// [`ProtoError::UnknownCommand`] (anything but 3 and 4), [`ProtoError::NegativeLength`],
/// [`ProtoError::TransferTooLarge`], [`ProtoError::BadPacketCount`],
/// [`ProtoError::UnknownSeqnum`]. Checking `actual_length` against the URB's buffer is the
/// caller's business.
pub fn parse_ret(
    buf: &[u8],
    direction_of: impl FnOnce(u32) -> Option<Direction>,
) -> Result<Option<(Ret, usize)>, ProtoError> {
    let Some(header) = buf.first_chunk::<URB_HEADER_LEN>() else {
        return Ok(None);
    };
    let command = be_u32(header, 0);
    let seqnum = be_u32(header, 4);
    let devid = be_u32(header, 8);
    let direction = be_u32(header, 0x0C);
    let ep = be_u32(header, 0x10);
    let status = be_i32(header, 0x14);
    match command {
        USBIP_RET_SUBMIT => {
            let actual_length = checked_length(be_i32(header, 0x18))?;
            let number_of_packets = be_i32(header, 0x20);
            let iso_len = iso_descriptors_len(number_of_packets)?;
            let direction_of_urb = direction_of(seqnum).ok_or(ProtoError::UnknownSeqnum(seqnum))?;
            let payload_len = match direction_of_urb {
                Direction::In => actual_length as usize,
                Direction::Out => 0,
            };
            let total = URB_HEADER_LEN + payload_len + iso_len;
            if buf.len() < total {
                return Ok(None);
            }
            let ret = RetSubmit {
                seqnum,
                devid,
                direction,
                ep,
                status,
                actual_length,
                start_frame: be_i32(header, 0x1C),
                number_of_packets,
                error_count: be_i32(header, 0x24),
                data: buf[URB_HEADER_LEN..URB_HEADER_LEN + payload_len].to_vec(),
            };
            Ok(Some((Ret::Submit(ret), total)))
        }
        USBIP_RET_UNLINK => Ok(Some((
            Ret::Unlink(RetUnlink {
                seqnum,
                devid,
                direction,
                ep,
                status,
            }),
            URB_HEADER_LEN,
        ))),
        other => Err(ProtoError::UnknownCommand(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The validated `usbip_header_basic` of a command.
struct BasicHeader {
    command: u32,
    seqnum: u32,
    devid: u32,
    direction: Direction,
    ep: u8,
}

fn basic_header(header: &[u8; URB_HEADER_LEN]) -> Result<BasicHeader, ProtoError> {
    let command = be_u32(header, 0);
    if command != USBIP_CMD_SUBMIT && command != USBIP_CMD_UNLINK {
        return Err(ProtoError::UnknownCommand(command));
    }
    let raw_direction = be_u32(header, 0x0C);
    let direction =
        Direction::from_wire(raw_direction).ok_or(ProtoError::BadDirection(raw_direction))?;
    let raw_ep = be_u32(header, 0x10);
    let ep = u8::try_from(raw_ep)
        .ok()
        .filter(|&ep| ep <= 15)
        .ok_or(ProtoError::BadEndpoint(raw_ep))?;
    Ok(BasicHeader {
        command,
        seqnum: be_u32(header, 4),
        devid: be_u32(header, 8),
        direction,
        ep,
    })
}

/// Validates a command header; returns it with the OUT payload length and the total message
/// length.
fn command_layout(
    header: &[u8; URB_HEADER_LEN],
) -> Result<(BasicHeader, usize, usize), ProtoError> {
    let basic = basic_header(header)?;
    if basic.command == USBIP_CMD_UNLINK {
        return Ok((basic, 0, URB_HEADER_LEN));
    }
    let length = checked_length(be_i32(header, 0x18))?;
    let iso_len = iso_descriptors_len(be_i32(header, 0x20))?;
    let payload_len = match basic.direction {
        Direction::Out => length as usize,
        Direction::In => 0,
    };
    Ok((basic, payload_len, URB_HEADER_LEN + payload_len + iso_len))
}

/// A wire `s32` length, checked to be in `0..=MAX_TRANSFER_LENGTH`.
fn checked_length(raw: i32) -> Result<u32, ProtoError> {
    let length = u32::try_from(raw).map_err(|_| ProtoError::NegativeLength(raw))?;
    if length > MAX_TRANSFER_LENGTH {
        return Err(ProtoError::TransferTooLarge(length));
    }
    Ok(length)
}

/// Bytes of ISO descriptors that follow a message with this `number_of_packets`.
fn iso_descriptors_len(number_of_packets: i32) -> Result<usize, ProtoError> {
    match number_of_packets {
        0 | NON_ISO_PACKETS => Ok(0),
        n if n > 0 && n as u32 <= MAX_ISO_PACKETS => Ok(n as usize * ISO_DESCRIPTOR_LEN),
        n => Err(ProtoError::BadPacketCount(n)),
    }
}

/// Checks the version of an OP header; returns (code, status).
fn op_header(header: &[u8; OP_HEADER_LEN]) -> Result<(u16, u32), ProtoError> {
    let version = be_u16(header, 0);
    if version != USBIP_VERSION {
        return Err(ProtoError::BadVersion(version));
    }
    Ok((be_u16(header, 2), be_u32(header, 4)))
}

fn put_op_header(out: &mut Vec<u8>, code: u16, status: u32) {
    out.extend_from_slice(&USBIP_VERSION.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
}

fn put_basic_header(out: &mut Vec<u8>, command: u32, seqnum: u32, devid: u32, dir: u32, ep: u8) {
    for word in [command, seqnum, devid, dir, u32::from(ep)] {
        out.extend_from_slice(&word.to_be_bytes());
    }
}

/// Appends `s` as a NUL-padded field of `len` bytes, truncated at a character boundary so that
/// at least one NUL follows.
fn put_c_string(out: &mut Vec<u8>, s: &str, len: usize) {
    let mut end = s.len().min(len - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&s.as_bytes()[..end]);
    out.resize(out.len() + len - end, 0);
}

/// The bytes of a NUL-terminated fixed-size field before the first NUL, as UTF-8.
fn c_string(field: &[u8], name: &'static str) -> Result<String, ProtoError> {
    let end = field
        .iter()
        .position(|&b| b == 0)
        .ok_or(ProtoError::StringNotTerminated(name))?;
    std::str::from_utf8(&field[..end])
        .map(String::from)
        .map_err(|_| ProtoError::StringNotUtf8(name))
}

fn copy_array<const N: usize>(buf: &[u8], offset: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&buf[offset..offset + N]);
    bytes
}

fn be_u16(buf: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes(copy_array(buf, offset))
}

fn be_u32(buf: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(copy_array(buf, offset))
}

fn be_i32(buf: &[u8], offset: usize) -> i32 {
    i32::from_be_bytes(copy_array(buf, offset))
}

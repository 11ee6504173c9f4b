//! DFU 1.1 on the wire: class codes, requests, states, status codes, the GETSTATUS answer
//! and the functional descriptor. Shared by the device class and by host-side code (tests,
//! the PC harness).

use core::fmt;

/// Interface class: application specific.
pub const CLASS_APP_SPECIFIC: u8 = 0xFE;
/// Interface subclass: device firmware upgrade.
pub const SUBCLASS_DFU: u8 = 0x01;
/// Interface protocol: DFU mode (runtime mode would be 01h).
pub const PROTOCOL_DFU_MODE: u8 = 0x02;
/// Descriptor type of the DFU functional descriptor.
pub const DESCRIPTOR_FUNCTIONAL: u8 = 0x21;
/// bcdDFUVersion: DFU 1.1.
pub const DFU_VERSION: u16 = 0x0110;
/// wTransferSize: the most a DNLOAD or UPLOAD moves, which is usb-device's control buffer
/// with its `control-buffer-4096` feature (enabled by this crate; a lunbox patch of
/// usb-device 0.3.2, see `third_party/usb-device/LUNBOX-PATCH.md`). Each block costs the host
/// a DNLOAD and a GETSTATUS round trip, so the block size sets the download rate over USB/IP.
pub const TRANSFER_SIZE: u16 = 4096;
/// wDetachTimeOut in milliseconds. Only meaningful for a runtime-mode interface: in DFU mode
/// DETACH has nothing to do (see [`DfuClass`](super::DfuClass)).
pub const DETACH_TIMEOUT_MS: u16 = 1000;

/// bmAttributes bit 0: the device accepts DNLOAD.
pub const ATTR_CAN_DOWNLOAD: u8 = 1 << 0;
/// bmAttributes bit 1: the device answers UPLOAD.
pub const ATTR_CAN_UPLOAD: u8 = 1 << 1;
/// bmAttributes bit 2: the device answers requests after manifestation (no reset needed).
pub const ATTR_MANIFESTATION_TOLERANT: u8 = 1 << 2;
/// bmAttributes bit 3: the device detaches and re-attaches by itself on DETACH.
pub const ATTR_WILL_DETACH: u8 = 1 << 3;

/// The class requests (bRequest).
pub mod request {
    /// DFU_DETACH (host to device).
    pub const DETACH: u8 = 0;
    /// DFU_DNLOAD (host to device, wValue block number, data = the block).
    pub const DNLOAD: u8 = 1;
    /// DFU_UPLOAD (device to host, wValue block number).
    pub const UPLOAD: u8 = 2;
    /// DFU_GETSTATUS (device to host, 6 bytes).
    pub const GETSTATUS: u8 = 3;
    /// DFU_CLRSTATUS (host to device).
    pub const CLRSTATUS: u8 = 4;
    /// DFU_GETSTATE (device to host, 1 byte).
    pub const GETSTATE: u8 = 5;
    /// DFU_ABORT (host to device).
    pub const ABORT: u8 = 6;
}

/// The DFU states (bState). [`DfuClass`](super::DfuClass) is a DFU-mode interface and never
/// enters `AppIdle` or `AppDetach`; they are here so host-side code can decode every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DfuState {
    /// appIDLE (0): runtime mode, idle.
    AppIdle = 0,
    /// appDETACH (1): runtime mode, waiting for the reset after DETACH.
    AppDetach = 1,
    /// dfuIDLE (2): waiting for requests.
    Idle = 2,
    /// dfuDNLOAD-SYNC (3): a block arrived; waiting for GETSTATUS.
    DnloadSync = 3,
    /// dfuDNBUSY (4): the block is being written; the host waits bwPollTimeout.
    DnBusy = 4,
    /// dfuDNLOAD-IDLE (5): ready for the next DNLOAD block.
    DnloadIdle = 5,
    /// dfuMANIFEST-SYNC (6): the download ended; waiting for GETSTATUS.
    ManifestSync = 6,
    /// dfuMANIFEST (7): the image is being made to take effect; the host waits bwPollTimeout.
    Manifest = 7,
    /// dfuMANIFEST-WAIT-RESET (8): waiting for a reset (not used: the device is
    /// manifestation tolerant).
    ManifestWaitReset = 8,
    /// dfuUPLOAD-IDLE (9): an upload is in progress.
    UploadIdle = 9,
    /// dfuERROR (10): an error happened; CLRSTATUS returns to dfuIDLE.
    Error = 10,
}

impl DfuState {
    /// The state with wire value `v`.
    pub fn from_u8(v: u8) -> Option<Self> {
        use DfuState::*;
        Some(match v {
            0 => AppIdle,
            1 => AppDetach,
            2 => Idle,
            3 => DnloadSync,
            4 => DnBusy,
            5 => DnloadIdle,
            6 => ManifestSync,
            7 => Manifest,
            8 => ManifestWaitReset,
            9 => UploadIdle,
            10 => Error,
            _ => return None,
        })
    }

    /// The spec's name, e.g. `dfuDNLOAD-IDLE`.
    pub fn name(self) -> &'static str {
        use DfuState::*;
        match self {
            AppIdle => "appIDLE",
            AppDetach => "appDETACH",
            Idle => "dfuIDLE",
            DnloadSync => "dfuDNLOAD-SYNC",
            DnBusy => "dfuDNBUSY",
            DnloadIdle => "dfuDNLOAD-IDLE",
            ManifestSync => "dfuMANIFEST-SYNC",
            Manifest => "dfuMANIFEST",
            ManifestWaitReset => "dfuMANIFEST-WAIT-RESET",
            UploadIdle => "dfuUPLOAD-IDLE",
            Error => "dfuERROR",
        }
    }
}

impl fmt::Display for DfuState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A DFU error status (bStatus other than OK). Targets return these; the device reports
/// them in GETSTATUS and stays in dfuERROR until CLRSTATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DfuError {
    /// errTARGET (01h): the file is not targeted for this device (or this target refuses the
    /// operation, e.g. UPLOAD without the `r` flag).
    Target = 0x01,
    /// errFILE (02h): the file is for this device but fails a vendor-specific check.
    File = 0x02,
    /// errWRITE (03h): the device cannot write memory (write error, read-only, no medium).
    Write = 0x03,
    /// errERASE (04h): memory erase failed.
    Erase = 0x04,
    /// errCHECK_ERASED (05h): the erase check failed.
    CheckErased = 0x05,
    /// errPROG (06h): the program memory function failed.
    Prog = 0x06,
    /// errVERIFY (07h): the programmed memory failed verification.
    Verify = 0x07,
    /// errADDRESS (08h): an address out of range (a download larger than the target).
    Address = 0x08,
    /// errNOTDONE (09h): a zero-length DNLOAD came, but the image is not complete.
    NotDone = 0x09,
    /// errFIRMWARE (0Ah): the firmware is corrupt; the device cannot return to run-time.
    Firmware = 0x0A,
    /// errVENDOR (0Bh): a vendor-specific error.
    Vendor = 0x0B,
    /// errUSBR (0Ch): an unexpected USB reset.
    Usbr = 0x0C,
    /// errPOR (0Dh): an unexpected power-on reset.
    Por = 0x0D,
    /// errUNKNOWN (0Eh): something went wrong (a read error while uploading, for one).
    Unknown = 0x0E,
    /// errSTALLEDPKT (0Fh): the device stalled an unexpected request.
    StalledPkt = 0x0F,
}

impl DfuError {
    /// The bStatus value.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The error with bStatus `v` (`None` for OK, 00h, and unknown values).
    pub fn from_code(v: u8) -> Option<Self> {
        use DfuError::*;
        Some(match v {
            0x01 => Target,
            0x02 => File,
            0x03 => Write,
            0x04 => Erase,
            0x05 => CheckErased,
            0x06 => Prog,
            0x07 => Verify,
            0x08 => Address,
            0x09 => NotDone,
            0x0A => Firmware,
            0x0B => Vendor,
            0x0C => Usbr,
            0x0D => Por,
            0x0E => Unknown,
            0x0F => StalledPkt,
            _ => return None,
        })
    }

    /// The spec's name, e.g. `errADDRESS`.
    pub fn name(self) -> &'static str {
        use DfuError::*;
        match self {
            Target => "errTARGET",
            File => "errFILE",
            Write => "errWRITE",
            Erase => "errERASE",
            CheckErased => "errCHECK_ERASED",
            Prog => "errPROG",
            Verify => "errVERIFY",
            Address => "errADDRESS",
            NotDone => "errNOTDONE",
            Firmware => "errFIRMWARE",
            Vendor => "errVENDOR",
            Usbr => "errUSBR",
            Por => "errPOR",
            Unknown => "errUNKNOWN",
            StalledPkt => "errSTALLEDPKT",
        }
    }
}

impl fmt::Display for DfuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::error::Error for DfuError {}

/// The most bwPollTimeout can say (it is 24 bits wide).
pub const MAX_POLL_TIMEOUT_MS: u32 = 0x00FF_FFFF;

/// The 6-byte answer to GETSTATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusReport {
    /// bStatus: `None` for OK.
    pub status: Option<DfuError>,
    /// bwPollTimeout: milliseconds the host waits before its next GETSTATUS.
    pub poll_timeout_ms: u32,
    /// bState: the state the device is in after answering.
    pub state: DfuState,
    /// iString: a string describing the status (0: none).
    pub string: u8,
}

impl StatusReport {
    /// The bytes on the wire (bwPollTimeout clamped to 24 bits).
    pub fn to_bytes(&self) -> [u8; 6] {
        let t = self.poll_timeout_ms.min(MAX_POLL_TIMEOUT_MS).to_le_bytes();
        [
            self.status.map_or(0, DfuError::code),
            t[0],
            t[1],
            t[2],
            self.state as u8,
            self.string,
        ]
    }

    /// Decode an answer; `None` if it is not 6 bytes or holds unknown values.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b: &[u8; 6] = b.try_into().ok()?;
        let status = match b[0] {
            0 => None,
            v => Some(DfuError::from_code(v)?),
        };
        Some(StatusReport {
            status,
            poll_timeout_ms: u32::from_le_bytes([b[1], b[2], b[3], 0]),
            state: DfuState::from_u8(b[4])?,
            string: b[5],
        })
    }
}

/// The DFU functional descriptor (type 21h, 9 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionalDescriptor {
    /// bmAttributes (`ATTR_*` bits).
    pub attributes: u8,
    /// wDetachTimeOut in milliseconds.
    pub detach_timeout_ms: u16,
    /// wTransferSize in bytes.
    pub transfer_size: u16,
    /// bcdDFUVersion.
    pub dfu_version: u16,
}

impl FunctionalDescriptor {
    /// The body after bLength and bDescriptorType (what `DescriptorWriter::write` takes).
    pub fn body(&self) -> [u8; 7] {
        let d = self.detach_timeout_ms.to_le_bytes();
        let t = self.transfer_size.to_le_bytes();
        let v = self.dfu_version.to_le_bytes();
        [self.attributes, d[0], d[1], t[0], t[1], v[0], v[1]]
    }

    /// The whole descriptor, bLength and bDescriptorType included.
    pub fn to_bytes(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[0] = 9;
        out[1] = DESCRIPTOR_FUNCTIONAL;
        out[2..].copy_from_slice(&self.body());
        out
    }

    /// Decode a whole descriptor; `None` if it is not a 9-byte type-21h descriptor.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() != 9 || b[0] != 9 || b[1] != DESCRIPTOR_FUNCTIONAL {
            return None;
        }
        Some(FunctionalDescriptor {
            attributes: b[2],
            detach_timeout_ms: u16::from_le_bytes([b[3], b[4]]),
            transfer_size: u16::from_le_bytes([b[5], b[6]]),
            dfu_version: u16::from_le_bytes([b[7], b[8]]),
        })
    }
}

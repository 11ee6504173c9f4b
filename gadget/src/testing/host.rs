//! The host controller driver side: control and bulk transfers, enumeration, halts.

use std::fmt;
use std::string::String;
use std::vec::Vec;

use super::bus::{HostPort, PortError};

/// Steps without progress before a transfer is declared dead.
const PATIENCE: usize = 100_000;

/// Why a host transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The endpoint answered STALL; `data` is what moved before it.
    Stalled {
        /// Bytes moved before the stall.
        data: Vec<u8>,
    },
    /// The device did not move anything for a long time.
    Timeout(&'static str),
    /// A descriptor did not parse.
    BadDescriptor(&'static str),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Stalled { data } => write!(f, "STALL after {} bytes", data.len()),
            HostError::Timeout(what) => write!(f, "device did not respond ({what})"),
            HostError::BadDescriptor(what) => write!(f, "bad descriptor: {what}"),
        }
    }
}

/// A SETUP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// bmRequestType.
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
    /// wLength.
    pub length: u16,
}

impl Setup {
    /// The 8 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = self.length.to_le_bytes();
        [
            self.request_type,
            self.request,
            v[0],
            v[1],
            i[0],
            i[1],
            l[0],
            l[1],
        ]
    }
}

/// An endpoint from a configuration descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// bEndpointAddress (0x80 bit for IN).
    pub address: u8,
    /// bmAttributes & 3: 2 bulk, 3 interrupt.
    pub kind: u8,
    /// wMaxPacketSize.
    pub max_packet: u16,
    /// bInterval.
    pub interval: u8,
}

/// An interface (alternate setting) from a configuration descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alt: u8,
    /// bInterfaceClass, bInterfaceSubClass, bInterfaceProtocol.
    pub class: (u8, u8, u8),
    /// iInterface.
    pub string: u8,
    /// Its endpoints.
    pub endpoints: Vec<EndpointInfo>,
    /// Class-specific descriptors after the interface descriptor (type, bytes).
    pub extra: Vec<(u8, Vec<u8>)>,
}

/// What enumeration read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptors {
    /// The device descriptor (18 bytes).
    pub device: Vec<u8>,
    /// The whole configuration descriptor.
    pub config: Vec<u8>,
    /// The interfaces in it.
    pub interfaces: Vec<InterfaceInfo>,
}

impl Descriptors {
    /// Parse a configuration descriptor into interfaces and endpoints.
    pub fn parse_config(config: &[u8]) -> Result<Vec<InterfaceInfo>, HostError> {
        let mut out: Vec<InterfaceInfo> = Vec::new();
        let mut at = 0;
        while at < config.len() {
            let len = usize::from(config[at]);
            if len < 2 || at + len > config.len() {
                return Err(HostError::BadDescriptor("descriptor length"));
            }
            let d = &config[at..at + len];
            match d[1] {
                4 if len >= 9 => out.push(InterfaceInfo {
                    number: d[2],
                    alt: d[3],
                    class: (d[5], d[6], d[7]),
                    string: d[8],
                    endpoints: Vec::new(),
                    extra: Vec::new(),
                }),
                5 if len >= 7 => {
                    let ep = EndpointInfo {
                        address: d[2],
                        kind: d[3] & 3,
                        max_packet: u16::from_le_bytes([d[4], d[5]]),
                        interval: d[6],
                    };
                    out.last_mut()
                        .ok_or(HostError::BadDescriptor("endpoint before interface"))?
                        .endpoints
                        .push(ep);
                }
                2 | 11 => {}
                kind => {
                    if let Some(i) = out.last_mut() {
                        i.extra.push((kind, d.to_vec()));
                    }
                }
            }
            at += len;
        }
        Ok(out)
    }
}

/// Drives a [`HostPort`]; `step` polls the device once (and lets coroutines run).
pub struct VirtualHost<'s> {
    port: HostPort,
    step: &'s mut dyn FnMut(),
    /// Max packet size of endpoint 0 (from the device descriptor; 64 until then).
    pub ep0_max_packet: usize,
}

impl<'s> VirtualHost<'s> {
    /// A host on `port` that calls `step` to let the device run.
    pub fn new(port: HostPort, step: &'s mut dyn FnMut()) -> Self {
        VirtualHost {
            port,
            step,
            ep0_max_packet: 64,
        }
    }

    /// The port (for statistics and direct packet access).
    pub fn port(&self) -> &HostPort {
        &self.port
    }

    /// Let the device run once.
    pub fn step(&mut self) {
        (self.step)();
    }

    /// Send one packet on OUT endpoint `ep`, waiting until the device has room.
    fn send_packet(&mut self, ep: usize, data: &[u8]) -> Result<(), PortError> {
        for _ in 0..PATIENCE {
            match self.port.send(ep, data) {
                Err(PortError::NotYet) => self.step(),
                other => return other,
            }
        }
        Err(PortError::NotYet)
    }

    /// Take one packet from IN endpoint `ep`, waiting until the device sends one.
    fn receive_packet(&mut self, ep: usize) -> Result<Vec<u8>, PortError> {
        for _ in 0..PATIENCE {
            match self.port.receive(ep) {
                Err(PortError::NotYet) => self.step(),
                other => return other,
            }
        }
        Err(PortError::NotYet)
    }

    /// Wait until the device took the last packet sent on `ep`.
    fn flush_out(&mut self, ep: usize) -> Result<(), HostError> {
        for _ in 0..PATIENCE {
            // A halt drops the waiting packet: the host saw a STALL handshake, not an ACK.
            if self.port.halted(ep as u8) {
                return Err(HostError::Stalled { data: Vec::new() });
            }
            if self.port.out_taken(ep) {
                return Ok(());
            }
            self.step();
        }
        Err(HostError::Timeout("OUT packet not taken"))
    }

    /// A control transfer with an IN (or no) data stage; returns the data.
    pub fn control_in(&mut self, setup: Setup) -> Result<Vec<u8>, HostError> {
        self.port.setup(setup.to_bytes());
        let mut data = Vec::new();
        let mps = self.ep0_max_packet;
        while data.len() < usize::from(setup.length) {
            match self.receive_packet(0) {
                Ok(p) => {
                    let short = p.len() < mps;
                    data.extend_from_slice(&p);
                    if short {
                        break;
                    }
                }
                Err(PortError::Stalled) => return Err(HostError::Stalled { data }),
                Err(PortError::NotYet) => return Err(HostError::Timeout("control IN data")),
            }
        }
        if data.len() > usize::from(setup.length) {
            return Err(HostError::BadDescriptor("device sent more than wLength"));
        }
        // Status stage: a zero-length OUT packet.
        match self.send_packet(0, &[]) {
            Ok(()) => {}
            Err(PortError::Stalled) => return Err(HostError::Stalled { data }),
            Err(PortError::NotYet) => return Err(HostError::Timeout("control status OUT")),
        }
        self.flush_out(0)?;
        Ok(data)
    }

    /// A control transfer with an OUT (or no) data stage.
    pub fn control_out(&mut self, setup: Setup, data: &[u8]) -> Result<(), HostError> {
        self.port.setup(setup.to_bytes());
        let mps = self.ep0_max_packet;
        for chunk in data.chunks(mps) {
            match self.send_packet(0, chunk) {
                Ok(()) => {}
                Err(PortError::Stalled) => return Err(HostError::Stalled { data: Vec::new() }),
                Err(PortError::NotYet) => return Err(HostError::Timeout("control OUT data")),
            }
        }
        // Status stage: a zero-length IN packet.
        match self.receive_packet(0) {
            Ok(p) if p.is_empty() => Ok(()),
            Ok(_) => Err(HostError::BadDescriptor("status stage carried data")),
            Err(PortError::Stalled) => Err(HostError::Stalled { data: Vec::new() }),
            Err(PortError::NotYet) => Err(HostError::Timeout("control status IN")),
        }
    }

    /// GET_DESCRIPTOR.
    pub fn get_descriptor(
        &mut self,
        kind: u8,
        index: u8,
        length: u16,
    ) -> Result<Vec<u8>, HostError> {
        self.control_in(Setup {
            request_type: 0x80,
            request: 6,
            value: u16::from(kind) << 8 | u16::from(index),
            index: 0,
            length,
        })
    }

    /// A string descriptor in US English, decoded.
    pub fn get_string(&mut self, index: u8) -> Result<String, HostError> {
        let raw = self.control_in(Setup {
            request_type: 0x80,
            request: 6,
            value: 0x0300 | u16::from(index),
            index: 0x0409,
            length: 255,
        })?;
        if raw.len() < 2 || raw[1] != 3 {
            return Err(HostError::BadDescriptor("string descriptor"));
        }
        let units: Vec<u16> = raw[2..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(String::from_utf16_lossy(&units))
    }

    /// Enumerate as Linux does: device descriptor (64), SET_ADDRESS, device descriptor (18),
    /// configuration (9, then all), SET_CONFIGURATION(1).
    pub fn enumerate(&mut self) -> Result<Descriptors, HostError> {
        // Let the device see the attach reset first.
        self.step();
        let first = self.get_descriptor(1, 0, 64)?;
        if first.len() < 8 || first[1] != 1 {
            return Err(HostError::BadDescriptor("device descriptor"));
        }
        self.ep0_max_packet = usize::from(first[7]);
        self.control_out(
            Setup {
                request_type: 0,
                request: 5,
                value: 7,
                index: 0,
                length: 0,
            },
            &[],
        )?;
        // The device takes the address after the status stage; give it a pass.
        self.step();
        let device = self.get_descriptor(1, 0, 18)?;
        if device.len() != 18 {
            return Err(HostError::BadDescriptor("device descriptor length"));
        }
        let head = self.get_descriptor(2, 0, 9)?;
        if head.len() != 9 || head[1] != 2 {
            return Err(HostError::BadDescriptor("configuration descriptor"));
        }
        let total = u16::from_le_bytes([head[2], head[3]]);
        let config = self.get_descriptor(2, 0, total)?;
        if config.len() != usize::from(total) {
            return Err(HostError::BadDescriptor("configuration wTotalLength"));
        }
        let interfaces = Descriptors::parse_config(&config)?;
        self.set_configuration(1)?;
        Ok(Descriptors {
            device,
            config,
            interfaces,
        })
    }

    /// SET_CONFIGURATION.
    pub fn set_configuration(&mut self, value: u8) -> Result<(), HostError> {
        self.control_out(
            Setup {
                request_type: 0,
                request: 9,
                value: value.into(),
                index: 0,
                length: 0,
            },
            &[],
        )
    }

    /// CLEAR_FEATURE(ENDPOINT_HALT) on endpoint `addr`.
    pub fn clear_halt(&mut self, addr: u8) -> Result<(), HostError> {
        self.control_out(
            Setup {
                request_type: 0x02,
                request: 1,
                value: 0,
                index: addr.into(),
                length: 0,
            },
            &[],
        )
    }

    /// GET_STATUS of endpoint `addr`: whether it is halted.
    pub fn endpoint_halted(&mut self, addr: u8) -> Result<bool, HostError> {
        let s = self.control_in(Setup {
            request_type: 0x82,
            request: 0,
            value: 0,
            index: addr.into(),
            length: 2,
        })?;
        Ok(s.first().is_some_and(|b| b & 1 != 0))
    }

    /// Send `data` on bulk OUT endpoint `addr` in `mps`-byte packets, with a zero-length
    /// packet at the end if `zlp` and the length is a whole number of packets. Returns the
    /// bytes the device took; a STALL gives `Stalled` with nothing in `data`.
    pub fn bulk_out(
        &mut self,
        addr: u8,
        mps: usize,
        data: &[u8],
        zlp: bool,
    ) -> Result<usize, HostError> {
        let ep = usize::from(addr & 0x0F);
        let mut sent = 0;
        let mut chunks: Vec<&[u8]> = data.chunks(mps).collect();
        if zlp && data.len().is_multiple_of(mps) {
            chunks.push(&[]);
        }
        for chunk in chunks {
            match self.send_packet(ep, chunk) {
                Ok(()) => sent += chunk.len(),
                Err(PortError::Stalled) => return Err(HostError::Stalled { data: Vec::new() }),
                Err(PortError::NotYet) => return Err(HostError::Timeout("bulk OUT")),
            }
        }
        // The last packet counts once the device took it (or the endpoint halted instead).
        match self.flush_out(ep) {
            Ok(()) => Ok(sent),
            Err(HostError::Stalled { .. }) => Err(HostError::Stalled { data: Vec::new() }),
            Err(e) => Err(e),
        }
    }

    /// Receive up to `max` bytes from bulk IN endpoint `addr`: until a short packet or `max`.
    pub fn bulk_in(&mut self, addr: u8, mps: usize, max: usize) -> Result<Vec<u8>, HostError> {
        let ep = usize::from(addr & 0x0F);
        let mut data = Vec::with_capacity(max);
        while data.len() < max {
            match self.receive_packet(ep) {
                Ok(p) => {
                    if data.len() + p.len() > max {
                        return Err(HostError::BadDescriptor("babble: more than asked for"));
                    }
                    let short = p.len() < mps;
                    data.extend_from_slice(&p);
                    if short {
                        break;
                    }
                }
                Err(PortError::Stalled) => return Err(HostError::Stalled { data }),
                Err(PortError::NotYet) => return Err(HostError::Timeout("bulk IN")),
            }
        }
        Ok(data)
    }
}

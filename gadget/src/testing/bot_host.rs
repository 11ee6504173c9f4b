//! A Bulk-Only Transport host, as Linux usb-storage drives a device: CBW, data, CSW, with
//! halts cleared and Reset Recovery when things go wrong.

use std::fmt;
use std::vec::Vec;

use super::host::{HostError, InterfaceInfo, Setup, VirtualHost};
use crate::ums::{CBW_LEN, CSW_LEN, Cbw, Csw};

/// The data phase of a command, as the host expects it.
#[derive(Debug, Clone, Copy)]
pub enum DataPhase<'a> {
    /// No data.
    None,
    /// Read up to this many bytes.
    In(u32),
    /// Send these bytes.
    Out(&'a [u8]),
}

/// What a command brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotResult {
    /// Data received (IN) or empty.
    pub data: Vec<u8>,
    /// Bytes the device took (OUT).
    pub sent: usize,
    /// The data phase ended with a STALL (cleared since).
    pub data_stalled: bool,
    /// The status wrapper.
    pub csw: Csw,
}

/// Why a command failed at the transport level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotError {
    /// A host transfer failed.
    Host(HostError),
    /// The CBW was refused with a STALL (the device is wedged until Reset Recovery).
    CbwStalled,
    /// The status wrapper did not parse or its tag was wrong.
    BadCsw(Vec<u8>),
}

impl From<HostError> for BotError {
    fn from(e: HostError) -> Self {
        BotError::Host(e)
    }
}

impl fmt::Display for BotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BotError::Host(e) => write!(f, "{e}"),
            BotError::CbwStalled => f.write_str("CBW stalled"),
            BotError::BadCsw(b) => write!(f, "bad CSW {b:02x?}"),
        }
    }
}

/// A BOT host for one mass-storage interface.
pub struct BotHost {
    /// Interface number.
    pub interface: u8,
    /// Bulk-In address.
    pub ep_in: u8,
    /// Bulk-Out address.
    pub ep_out: u8,
    /// Bulk max packet size.
    pub mps: usize,
    tag: u32,
}

impl BotHost {
    /// The BOT host for the first mass-storage interface in `interfaces`.
    pub fn find(interfaces: &[InterfaceInfo]) -> Option<BotHost> {
        let i = interfaces.iter().find(|i| i.class == (0x08, 0x06, 0x50))?;
        let ep_in = i
            .endpoints
            .iter()
            .find(|e| e.address & 0x80 != 0 && e.kind == 2)?;
        let ep_out = i
            .endpoints
            .iter()
            .find(|e| e.address & 0x80 == 0 && e.kind == 2)?;
        Some(BotHost {
            interface: i.number,
            ep_in: ep_in.address,
            ep_out: ep_out.address,
            mps: usize::from(ep_in.max_packet),
            tag: 0x1000,
        })
    }

    /// GET MAX LUN.
    pub fn get_max_lun(&self, host: &mut VirtualHost<'_>) -> Result<u8, HostError> {
        let setup = Setup {
            request_type: 0xA1,
            request: 0xFE,
            value: 0,
            index: self.interface.into(),
            length: 1,
        };
        let d = host.control_in(setup)?;
        d.first()
            .copied()
            .ok_or(HostError::BadDescriptor("GET MAX LUN returned nothing"))
    }

    /// Reset Recovery: Bulk-Only Mass Storage Reset, then clear both halts.
    pub fn reset_recovery(&self, host: &mut VirtualHost<'_>) -> Result<(), HostError> {
        let setup = Setup {
            request_type: 0x21,
            request: 0xFF,
            value: 0,
            index: self.interface.into(),
            length: 0,
        };
        host.control_out(setup, &[])?;
        host.clear_halt(self.ep_in)?;
        host.clear_halt(self.ep_out)
    }

    /// Send raw CBW bytes (for invalid-CBW tests).
    pub fn send_raw_cbw(&self, host: &mut VirtualHost<'_>, bytes: &[u8]) -> Result<(), BotError> {
        match host.bulk_out(self.ep_out, self.mps, bytes, false) {
            Ok(_) => Ok(()),
            Err(HostError::Stalled { .. }) => Err(BotError::CbwStalled),
            Err(e) => Err(e.into()),
        }
    }

    /// Run one command: CBW, data phase, CSW. A stalled data phase is cleared and the CSW
    /// read; a stalled CSW read is cleared and retried once (as Linux does).
    pub fn command(
        &mut self,
        host: &mut VirtualHost<'_>,
        lun: u8,
        cdb: &[u8],
        phase: DataPhase<'_>,
    ) -> Result<BotResult, BotError> {
        self.tag = self.tag.wrapping_add(1);
        let mut cb = [0u8; 16];
        cb[..cdb.len()].copy_from_slice(cdb);
        let (data_len, data_in) = match phase {
            DataPhase::None => (0, false),
            DataPhase::In(n) => (n, true),
            DataPhase::Out(d) => (d.len() as u32, false),
        };
        let cbw = Cbw {
            tag: self.tag,
            data_len,
            data_in,
            lun,
            cb,
            cb_len: cdb.len() as u8,
        };
        self.send_raw_cbw(host, &cbw.to_bytes())?;
        debug_assert_eq!(cbw.to_bytes().len(), CBW_LEN);
        let mut result = BotResult {
            data: Vec::new(),
            sent: 0,
            data_stalled: false,
            csw: Csw {
                tag: 0,
                residue: 0,
                status: crate::ums::CswStatus::Passed,
            },
        };
        match phase {
            DataPhase::None => {}
            DataPhase::In(n) => match host.bulk_in(self.ep_in, self.mps, n as usize) {
                Ok(d) => result.data = d,
                Err(HostError::Stalled { data }) => {
                    result.data = data;
                    result.data_stalled = true;
                    host.clear_halt(self.ep_in)?;
                }
                Err(e) => return Err(e.into()),
            },
            DataPhase::Out(d) => match host.bulk_out(self.ep_out, self.mps, d, false) {
                Ok(n) => result.sent = n,
                Err(HostError::Stalled { .. }) => {
                    result.data_stalled = true;
                    host.clear_halt(self.ep_out)?;
                }
                Err(e) => return Err(e.into()),
            },
        }
        let raw = match host.bulk_in(self.ep_in, self.mps, CSW_LEN) {
            Ok(raw) => raw,
            Err(HostError::Stalled { .. }) => {
                host.clear_halt(self.ep_in)?;
                host.bulk_in(self.ep_in, self.mps, CSW_LEN)?
            }
            Err(e) => return Err(e.into()),
        };
        match Csw::parse(&raw) {
            Some(csw) if csw.tag == self.tag => {
                result.csw = csw;
                Ok(result)
            }
            _ => Err(BotError::BadCsw(raw)),
        }
    }
}

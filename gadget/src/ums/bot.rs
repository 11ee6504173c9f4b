//! Bulk-Only Transport 1.0: command and status wrappers, and the thirteen host/device
//! expectation cases (§6.7).

/// `dCBWSignature`: "USBC".
pub const CBW_SIGNATURE: u32 = 0x4342_5355;
/// `dCSWSignature`: "USBS".
pub const CSW_SIGNATURE: u32 = 0x5342_5355;
/// A CBW is exactly this long.
pub const CBW_LEN: usize = 31;
/// A CSW is exactly this long.
pub const CSW_LEN: usize = 13;

/// A valid, meaningful Command Block Wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cbw {
    /// Echoed in the CSW.
    pub tag: u32,
    /// Bytes the host expects to move.
    pub data_len: u32,
    /// Direction of the data (when `data_len > 0`): true = device to host.
    pub data_in: bool,
    /// Logical unit.
    pub lun: u8,
    /// The command block (only `cb_len` bytes are meaningful, the rest is zero).
    pub cb: [u8; 16],
    /// Length of the command block (1–16).
    pub cb_len: u8,
}

/// Why a CBW is not valid or not meaningful (§6.2): the device then stalls both bulk
/// endpoints until Reset Recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CbwError {
    /// Not 31 bytes.
    Length(usize),
    /// Wrong signature.
    Signature(u32),
    /// Reserved bits set in the flags or LUN byte.
    Reserved,
    /// LUN above the highest one.
    Lun(u8),
    /// Command block length 0 or above 16.
    CbLength(u8),
}

impl Cbw {
    /// Parse and check a received CBW against the highest LUN.
    pub fn parse(bytes: &[u8], max_lun: u8) -> Result<Cbw, CbwError> {
        if bytes.len() != CBW_LEN {
            return Err(CbwError::Length(bytes.len()));
        }
        let le32 = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let signature = le32(0);
        if signature != CBW_SIGNATURE {
            return Err(CbwError::Signature(signature));
        }
        let flags = bytes[12];
        let lun_byte = bytes[13];
        let cb_len = bytes[14];
        if flags & 0x7F != 0 || lun_byte & 0xF0 != 0 || cb_len & 0xE0 != 0 {
            return Err(CbwError::Reserved);
        }
        if lun_byte > max_lun {
            return Err(CbwError::Lun(lun_byte));
        }
        if cb_len == 0 || cb_len > 16 {
            return Err(CbwError::CbLength(cb_len));
        }
        let mut cb = [0u8; 16];
        cb[..cb_len as usize].copy_from_slice(&bytes[15..15 + cb_len as usize]);
        Ok(Cbw {
            tag: le32(4),
            data_len: le32(8),
            data_in: flags & 0x80 != 0,
            lun: lun_byte,
            cb,
            cb_len,
        })
    }

    /// What the host expects.
    pub fn host(&self) -> Xfer {
        match (self.data_len, self.data_in) {
            (0, _) => Xfer::None,
            (n, true) => Xfer::In(u64::from(n)),
            (n, false) => Xfer::Out(u64::from(n)),
        }
    }

    /// Serialise (for hosts and tests).
    pub fn to_bytes(&self) -> [u8; CBW_LEN] {
        let mut b = [0u8; CBW_LEN];
        b[0..4].copy_from_slice(&CBW_SIGNATURE.to_le_bytes());
        b[4..8].copy_from_slice(&self.tag.to_le_bytes());
        b[8..12].copy_from_slice(&self.data_len.to_le_bytes());
        b[12] = if self.data_in { 0x80 } else { 0 };
        b[13] = self.lun;
        b[14] = self.cb_len;
        b[15..31].copy_from_slice(&self.cb);
        b
    }
}

/// CSW status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CswStatus {
    /// Command passed.
    Passed = 0,
    /// Command failed (sense data says why).
    Failed = 1,
    /// Phase error: the host must do Reset Recovery.
    PhaseError = 2,
}

/// A Command Status Wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csw {
    /// The CBW's tag.
    pub tag: u32,
    /// Bytes of the host's expectation not moved (or not processed).
    pub residue: u32,
    /// Outcome.
    pub status: CswStatus,
}

impl Csw {
    /// Serialise.
    pub fn to_bytes(&self) -> [u8; CSW_LEN] {
        let mut b = [0u8; CSW_LEN];
        b[0..4].copy_from_slice(&CSW_SIGNATURE.to_le_bytes());
        b[4..8].copy_from_slice(&self.tag.to_le_bytes());
        b[8..12].copy_from_slice(&self.residue.to_le_bytes());
        b[12] = self.status as u8;
        b
    }

    /// Parse (for hosts and tests); `None` if it is not a CSW.
    pub fn parse(b: &[u8]) -> Option<Csw> {
        if b.len() != CSW_LEN || b[0..4] != CSW_SIGNATURE.to_le_bytes() {
            return None;
        }
        let status = match b[12] {
            0 => CswStatus::Passed,
            1 => CswStatus::Failed,
            2 => CswStatus::PhaseError,
            _ => return None,
        };
        Some(Csw {
            tag: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            residue: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            status,
        })
    }
}

/// A data phase: direction and byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xfer {
    /// No data.
    None,
    /// Device to host.
    In(u64),
    /// Host to device.
    Out(u64),
}

/// What to do with a command, from the host's expectation and the device's intent (the
/// thirteen cases of BOT §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Cases 1, 4, 5, 6, 9, 11, 12: run the command, moving `moved` bytes in the device's
    /// direction; then end the host's data phase as `ending` says.
    Run {
        /// Bytes to move (never more than the host expects).
        moved: u64,
        /// What to do after the data.
        ending: Ending,
    },
    /// Cases 7 and 13: the host expects less than the command moves; move `moved` bytes (the
    /// host's amount) without completing the command, then report a phase error.
    Truncate {
        /// Bytes to move.
        moved: u64,
    },
    /// Cases 2, 3, 8, 10: directions disagree; move nothing, stall the endpoint of the
    /// host's data phase (if any) and report a phase error.
    Refuse,
}

/// How the device ends a data phase the command did not fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Exactly what the host expects was moved (or nothing was expected).
    Exact,
    /// Less was sent than the host expects (cases 4, 5): end Bulk-In (short packet, else
    /// STALL).
    ShortIn,
    /// Less was received than the host sends (cases 9, 11): STALL Bulk-Out.
    ShortOut,
}

/// Decide the case for `host` expectation and `device` intent.
pub fn plan(host: Xfer, device: Xfer) -> Plan {
    use Xfer::*;
    match (host, device) {
        (None, None) => Plan::Run {
            moved: 0,
            ending: Ending::Exact,
        }, // 1
        (None, In(0) | Out(0)) => Plan::Run {
            moved: 0,
            ending: Ending::Exact,
        },
        (None, In(_) | Out(_)) => Plan::Refuse, // 2, 3
        (In(_), None | In(0)) => Plan::Run {
            moved: 0,
            ending: Ending::ShortIn,
        }, // 4
        (In(h), In(d)) if d < h => Plan::Run {
            moved: d,
            ending: Ending::ShortIn,
        }, // 5
        (In(h), In(d)) if d == h => Plan::Run {
            moved: d,
            ending: Ending::Exact,
        }, // 6
        (In(h), In(_)) => Plan::Truncate { moved: h }, // 7
        (In(_), Out(0)) => Plan::Run {
            moved: 0,
            ending: Ending::ShortIn,
        },
        (In(_), Out(_)) => Plan::Refuse, // 8
        (Out(_), None | Out(0)) => Plan::Run {
            moved: 0,
            ending: Ending::ShortOut,
        }, // 9
        (Out(_), In(0)) => Plan::Run {
            moved: 0,
            ending: Ending::ShortOut,
        },
        (Out(_), In(_)) => Plan::Refuse, // 10
        (Out(h), Out(d)) if d < h => Plan::Run {
            moved: d,
            ending: Ending::ShortOut,
        }, // 11
        (Out(h), Out(d)) if d == h => Plan::Run {
            moved: d,
            ending: Ending::Exact,
        }, // 12
        (Out(h), Out(_)) => Plan::Truncate { moved: h }, // 13
    }
}

//! Logical units: what each LUN exports, its SCSI state (sense, unit attention, prevent),
//! and the runtime control API the console uses while a host is attached.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use lunbox_storage::{DeviceRef, StorageError};

use super::scsi::{Identity, Sense, ascii_field, sense};

/// How one LUN starts.
#[derive(Clone)]
pub struct LunConfig {
    /// The device it exports (`None`: no medium until one is inserted).
    pub backend: Option<DeviceRef>,
    /// The device's name, for listings (`img0`, `sd0.1`).
    pub name: String,
    /// Refuse writes whatever the device allows.
    pub read_only: bool,
    /// Removable medium (the host may eject it, and sees insertions).
    pub removable: bool,
    /// INQUIRY vendor (up to 8 characters).
    pub vendor: String,
    /// INQUIRY product (up to 16 characters).
    pub product: String,
    /// INQUIRY revision (up to 4 characters).
    pub revision: String,
    /// Unit serial number (VPD page 80h).
    pub serial: String,
}

impl LunConfig {
    /// A removable, writable LUN exporting `backend` called `name`, with lunbox's identity.
    pub fn new(backend: Option<DeviceRef>, name: &str) -> Self {
        LunConfig {
            backend,
            name: String::from(name),
            read_only: false,
            removable: true,
            vendor: String::from("lunbox"),
            product: String::from("USB Mass Storage"),
            revision: String::from(env!("CARGO_PKG_VERSION")),
            serial: String::new(),
        }
    }
}

/// One LUN's state.
pub(crate) struct Lun {
    pub(crate) backend: Option<DeviceRef>,
    pub(crate) name: String,
    /// The medium the host (or the console) ejected, kept for a LOAD.
    pub(crate) ejected: Option<(DeviceRef, String)>,
    pub(crate) read_only: bool,
    pub(crate) removable: bool,
    pub(crate) prevent: bool,
    pub(crate) sense: Sense,
    pub(crate) unit_attention: Option<Sense>,
    pub(crate) identity: Identity,
}

impl Lun {
    pub(crate) fn new(index: usize, c: LunConfig) -> Lun {
        let serial = if c.serial.is_empty() {
            alloc::format!("LUNBOX{index:02}")
        } else {
            c.serial
        };
        Lun {
            backend: c.backend,
            name: c.name,
            ejected: None,
            read_only: c.read_only,
            removable: c.removable,
            prevent: false,
            sense: sense::NONE,
            unit_attention: Some(sense::POWER_ON_RESET),
            identity: Identity {
                vendor: ascii_field(&c.vendor),
                product: ascii_field(&c.product),
                revision: ascii_field(&c.revision),
                serial: serial
                    .bytes()
                    .filter(|b| (0x20..0x7F).contains(b))
                    .collect(),
            },
        }
    }
}

/// The LUN table, shared by the UMS function and its control handles.
pub(crate) type Luns = Rc<RefCell<Vec<Lun>>>;

/// What a LUN exports now, for `lun` listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunInfo {
    /// LUN number.
    pub lun: usize,
    /// Name of the device exported; empty when none is (ejected, removed). A device without a
    /// medium (an empty card slot) keeps its name, with `present` false.
    pub name: String,
    /// Name of the ejected medium a LOAD (`load`) would put back; empty when there is none.
    pub ejected: String,
    /// Whether a medium is present: a device, holding a medium.
    pub present: bool,
    /// Size in blocks (0 without a medium).
    pub blocks: u64,
    /// Bytes per block.
    pub block_size: u32,
    /// Whether the host sees it write-protected.
    pub read_only: bool,
    /// Whether it is removable.
    pub removable: bool,
    /// Whether the host prevents removal.
    pub prevented: bool,
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No LUN with that number.
    NoSuchLun {
        /// Asked for.
        lun: usize,
        /// LUNs there are.
        count: usize,
    },
    /// The host prevents medium removal (PREVENT ALLOW MEDIUM REMOVAL).
    RemovalPrevented(usize),
    /// The LUN has no medium.
    NoMedium(usize),
    /// The LUN is not removable: its medium cannot be ejected or swapped while attached.
    NotRemovable(usize),
    /// Flushing the medium before taking it out failed.
    Flush(StorageError),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NoSuchLun { lun, count } => {
                write!(
                    f,
                    "no LUN {lun}: this gadget has LUNs 0..{}",
                    count.saturating_sub(1)
                )
            }
            ControlError::RemovalPrevented(l) => write!(
                f,
                "LUN {l}: the host prevents medium removal (unmount it on the host, or force)"
            ),
            ControlError::NoMedium(l) => write!(f, "LUN {l} has no medium"),
            ControlError::NotRemovable(l) => write!(f, "LUN {l} is not removable"),
            ControlError::Flush(e) => write!(f, "flushing the medium failed: {e}"),
        }
    }
}

/// Runtime control of the LUNs while a host is attached (for the console). Every change the
/// host should notice raises UNIT ATTENTION (MEDIUM MAY HAVE CHANGED) on that LUN.
///
/// The number of LUNs is fixed while the gadget runs (the host asked GET MAX LUN once); a LUN
/// without a medium is how a LUN is "added" later.
#[derive(Clone)]
pub struct UmsControl {
    pub(crate) luns: Luns,
}

impl UmsControl {
    fn with<R>(
        &self,
        lun: usize,
        f: impl FnOnce(&mut Lun) -> Result<R, ControlError>,
    ) -> Result<R, ControlError> {
        let mut luns = self.luns.borrow_mut();
        let count = luns.len();
        let l = luns
            .get_mut(lun)
            .ok_or(ControlError::NoSuchLun { lun, count })?;
        f(l)
    }

    /// Number of LUNs.
    pub fn lun_count(&self) -> usize {
        self.luns.borrow().len()
    }

    /// What every LUN exports.
    pub fn list(&self) -> Vec<LunInfo> {
        // Devices are locked (which may block) only after the table borrow is released.
        let snapshot: Vec<_> = self
            .luns
            .borrow()
            .iter()
            .map(|l| {
                (
                    l.backend.clone(),
                    l.name.clone(),
                    l.ejected
                        .as_ref()
                        .map(|(_, n)| n.clone())
                        .unwrap_or_default(),
                    l.read_only,
                    l.removable,
                    l.prevent,
                )
            })
            .collect();
        snapshot
            .into_iter()
            .enumerate()
            .map(
                |(i, (backend, name, ejected, read_only, removable, prevented))| {
                    let (present, blocks, block_size, dev_ro) = match &backend {
                        Some(d) => {
                            let d = d.lock();
                            let present = d.media_present();
                            let blocks = if present { d.num_blocks() } else { 0 };
                            (present, blocks, d.block_size(), d.is_read_only())
                        }
                        None => (false, 0, lunbox_storage::BLOCK_SIZE, false),
                    };
                    LunInfo {
                        lun: i,
                        name: if backend.is_some() {
                            name
                        } else {
                            String::new()
                        },
                        ejected,
                        present,
                        blocks,
                        block_size,
                        read_only: read_only || dev_ro,
                        removable,
                        prevented,
                    }
                },
            )
            .collect()
    }

    /// Check that the medium of `lun` may be taken out and flush it. The table is not
    /// borrowed while the flush runs (it may block while the UMS function uses the device).
    fn release_medium(
        &self,
        lun: usize,
        force: bool,
        need_removable: bool,
    ) -> Result<Option<DeviceRef>, ControlError> {
        let old = self.with(lun, |l| {
            if l.backend.is_some() && need_removable && !l.removable {
                return Err(ControlError::NotRemovable(lun));
            }
            if l.backend.is_some() && l.prevent && !force {
                return Err(ControlError::RemovalPrevented(lun));
            }
            Ok(l.backend.clone())
        })?;
        if let Some(dev) = &old {
            // A device without a medium (an empty card slot) has nothing to flush.
            let mut dev = dev.lock();
            if dev.media_present() {
                dev.flush().map_err(ControlError::Flush)?;
            }
        }
        Ok(old)
    }

    /// Export `backend` (called `name`) on `lun`, replacing what it exported. The host sees
    /// a medium change. A non-removable LUN only accepts this while it has no medium.
    pub fn set_backend(
        &self,
        lun: usize,
        backend: DeviceRef,
        name: &str,
        read_only: bool,
        force: bool,
    ) -> Result<(), ControlError> {
        self.release_medium(lun, force, true)?;
        self.with(lun, |l| {
            l.backend = Some(backend);
            l.name = String::from(name);
            l.ejected = None;
            l.read_only = read_only;
            l.unit_attention = Some(sense::MEDIUM_CHANGED);
            Ok(())
        })
    }

    /// Take the medium out of `lun` (flushed first); it stays remembered for [`Self::load`].
    pub fn eject(&self, lun: usize, force: bool) -> Result<(), ControlError> {
        let Some(dev) = self.release_medium(lun, force, false)? else {
            return Err(ControlError::NoMedium(lun));
        };
        self.with(lun, |l| {
            l.ejected = Some((dev, core::mem::take(&mut l.name)));
            l.backend = None;
            l.prevent = false;
            l.unit_attention = Some(sense::MEDIUM_CHANGED);
            Ok(())
        })
    }

    /// Put the last ejected medium back into `lun`.
    pub fn load(&self, lun: usize) -> Result<(), ControlError> {
        self.with(lun, |l| {
            if l.backend.is_some() {
                return Ok(());
            }
            let Some((dev, name)) = l.ejected.take() else {
                return Err(ControlError::NoMedium(lun));
            };
            l.backend = Some(dev);
            l.name = name;
            l.unit_attention = Some(sense::MEDIUM_CHANGED);
            Ok(())
        })
    }

    /// Eject and forget the medium of `lun`: it has none until [`Self::set_backend`].
    pub fn remove(&self, lun: usize, force: bool) -> Result<(), ControlError> {
        self.eject(lun, force)?;
        self.with(lun, |l| {
            l.ejected = None;
            Ok(())
        })
    }

    /// Make `lun` read-only or writable; the host sees a medium change (and re-reads the
    /// write-protect bit).
    pub fn set_read_only(&self, lun: usize, read_only: bool) -> Result<(), ControlError> {
        self.with(lun, |l| {
            if l.read_only != read_only {
                l.read_only = read_only;
                l.unit_attention = Some(sense::MEDIUM_CHANGED);
            }
            Ok(())
        })
    }
}

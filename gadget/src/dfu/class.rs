//! The DFU interface as a `usb-device` class: descriptors, strings, the class requests and
//! the DFU 1.1 state machine, and the pump that runs the targets' work between requests.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use usb_device::class_prelude::*;
use usb_device::control::{Recipient, Request, RequestType};

use super::protocol::{
    ATTR_CAN_DOWNLOAD, ATTR_CAN_UPLOAD, ATTR_MANIFESTATION_TOLERANT, CLASS_APP_SPECIFIC,
    DESCRIPTOR_FUNCTIONAL, DETACH_TIMEOUT_MS, DFU_VERSION, DfuError, DfuState,
    FunctionalDescriptor, PROTOCOL_DFU_MODE, SUBCLASS_DFU, StatusReport, TRANSFER_SIZE, request,
};
use super::{DfuTarget, Progress};

/// Most targets (alternate settings) one interface carries: with them the whole configuration
/// descriptor fits 256 bytes, well within usb-device's control buffer (see the module docs).
pub const MAX_TARGETS: usize = 16;

/// bwPollTimeout when the host asks before the target even started (cannot happen with
/// usb-device, which calls the class's `poll` right after the request; kept for safety).
const QUEUED_POLL_TIMEOUT_MS: u32 = 1;

/// Why a [`DfuClass`] cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DfuConfigError {
    /// No targets, or more than [`MAX_TARGETS`].
    TargetCount(usize),
}

impl fmt::Display for DfuConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DfuConfigError::TargetCount(n) => {
                write!(f, "{n} DFU targets: use 1 to {MAX_TARGETS}")
            }
        }
    }
}

impl core::error::Error for DfuConfigError {}

/// What the current job asks of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    /// Write the block in `DfuClass::block` at `offset`; `begin` first if it starts the
    /// download.
    Write { begin: bool, offset: u64 },
    /// Manifestation.
    Manifest,
}

/// How far the current job got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not started: the next pump starts it.
    Queued,
    /// Started, not finished; the target's estimate of the time left.
    Pending(u32),
    Done,
    Failed(DfuError),
}

#[derive(Debug, Clone, Copy)]
struct Job {
    /// Index of the target.
    target: usize,
    kind: JobKind,
    phase: Phase,
}

/// The DFU-mode interface. See the [module docs](super) for the descriptors, the state
/// machine and where the targets' work runs.
///
/// Besides [`UsbDevice::poll`](usb_device::device::UsbDevice::poll), the USB controller
/// poller calls [`DfuClass::pump`] on every pass (and does not sleep while
/// [`DfuClass::is_busy`]).
pub struct DfuClass<'a, B: UsbBus> {
    interface: InterfaceNumber,
    /// iInterface of each alternate setting.
    strings: Vec<StringIndex>,
    targets: Vec<Box<dyn DfuTarget>>,
    /// Some target allows upload (bitCanUpload).
    can_upload: bool,
    /// The selected alternate setting (index into `targets`).
    alt: u8,
    state: DfuState,
    /// bStatus: `None` is OK.
    status: Option<DfuError>,
    /// Bytes moved so far in the current download or upload.
    offset: u64,
    /// Target of the download in progress (begun and not finished or aborted).
    downloading: Option<usize>,
    /// The last DNLOAD block (the current write job's data), or the UPLOAD buffer.
    block: Vec<u8>,
    job: Option<Job>,
    /// A target whose download was abandoned: the next pump calls its `abort`.
    abort: Option<usize>,
    _alloc: PhantomData<&'a UsbBusAllocator<B>>,
}

impl<'a, B: UsbBus> DfuClass<'a, B> {
    /// Allocate the interface and one string per target on `alloc`. Alternate setting `i`
    /// is `targets[i]`.
    pub fn new(
        alloc: &'a UsbBusAllocator<B>,
        targets: Vec<Box<dyn DfuTarget>>,
    ) -> Result<Self, DfuConfigError> {
        if targets.is_empty() || targets.len() > MAX_TARGETS {
            return Err(DfuConfigError::TargetCount(targets.len()));
        }
        let interface = alloc.interface();
        let strings = targets.iter().map(|_| alloc.string()).collect();
        let can_upload = targets.iter().any(|t| t.can_upload());
        Ok(DfuClass {
            interface,
            strings,
            targets,
            can_upload,
            alt: 0,
            state: DfuState::Idle,
            status: None,
            offset: 0,
            downloading: None,
            block: Vec::with_capacity(usize::from(TRANSFER_SIZE)),
            job: None,
            abort: None,
            _alloc: PhantomData,
        })
    }

    /// The interface number.
    pub fn interface(&self) -> InterfaceNumber {
        self.interface
    }

    /// The current DFU state.
    pub fn state(&self) -> DfuState {
        self.state
    }

    /// The current status (`None`: OK).
    pub fn status(&self) -> Option<DfuError> {
        self.status
    }

    /// The selected alternate setting (the target's index).
    pub fn alt_setting(&self) -> u8 {
        self.alt
    }

    /// The number of targets (alternate settings).
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// The functional descriptor this interface reports.
    pub fn functional_descriptor(&self) -> FunctionalDescriptor {
        let upload = if self.can_upload { ATTR_CAN_UPLOAD } else { 0 };
        FunctionalDescriptor {
            attributes: ATTR_CAN_DOWNLOAD | upload | ATTR_MANIFESTATION_TOLERANT,
            detach_timeout_ms: DETACH_TIMEOUT_MS,
            transfer_size: TRANSFER_SIZE,
            dfu_version: DFU_VERSION,
        }
    }

    /// Whether target work is waiting for [`DfuClass::pump`].
    pub fn is_busy(&self) -> bool {
        self.abort.is_some()
            || self
                .job
                .is_some_and(|j| matches!(j.phase, Phase::Queued | Phase::Pending(_)))
    }

    /// Run one step of the targets' work: a pending abort, then the current job (a block
    /// write, manifestation, or one bounded step of either). May wait for a device mutex
    /// (see the module docs); returns whether work is left ([`DfuClass::is_busy`]).
    pub fn pump(&mut self) -> bool {
        if let Some(t) = self.abort.take() {
            self.targets[t].abort();
        }
        let Some(job) = self.job.as_mut() else {
            return false;
        };
        let target = &mut self.targets[job.target];
        let result = match (job.phase, job.kind) {
            (Phase::Queued, JobKind::Write { begin, offset }) => {
                let begun = if begin {
                    target.begin_download()
                } else {
                    Ok(())
                };
                begun.and_then(|()| target.write(offset, &self.block))
            }
            (Phase::Queued, JobKind::Manifest) => target.finish_download(),
            (Phase::Pending(_), _) => target.resume(),
            (Phase::Done | Phase::Failed(_), _) => return false,
        };
        job.phase = match result {
            Ok(Progress::Done) => Phase::Done,
            Ok(Progress::Pending { poll_timeout_ms }) => Phase::Pending(poll_timeout_ms),
            Err(e) => Phase::Failed(e),
        };
        matches!(job.phase, Phase::Pending(_))
    }

    /// End a download that will not finish: drop the job and have the target abort.
    fn abandon(&mut self) {
        self.job = None;
        if let Some(t) = self.downloading.take() {
            self.abort = Some(t);
        }
        self.offset = 0;
    }

    /// Enter dfuERROR with `e`.
    fn fail(&mut self, e: DfuError) {
        self.abandon();
        self.status = Some(e);
        self.state = DfuState::Error;
    }

    /// A request not allowed now: dfuERROR, errSTALLEDPKT unless already in error. The
    /// caller stalls.
    fn stalled(&mut self) {
        if self.state == DfuState::Error {
            return;
        }
        self.fail(DfuError::StalledPkt);
    }

    /// Back to dfuIDLE after a bus reset or SET_CONFIGURATION.
    fn reset_function(&mut self) {
        self.abandon();
        self.state = DfuState::Idle;
        self.status = None;
        self.alt = 0;
    }

    fn is_ours(&self, req: &Request) -> bool {
        req.request_type == RequestType::Class
            && req.recipient == Recipient::Interface
            && req.index == u16::from(u8::from(self.interface))
    }

    /// GETSTATUS: the state transition it causes and the answer.
    fn get_status(&mut self) -> StatusReport {
        let mut poll_timeout_ms = 0;
        let phase = self.job.map_or(Phase::Done, |j| j.phase);
        match self.state {
            DfuState::DnloadSync | DfuState::DnBusy => match phase {
                Phase::Done => {
                    self.job = None;
                    self.state = DfuState::DnloadIdle;
                }
                Phase::Failed(e) => self.fail(e),
                Phase::Pending(t) => {
                    poll_timeout_ms = t;
                    self.state = DfuState::DnBusy;
                }
                Phase::Queued => {
                    poll_timeout_ms = QUEUED_POLL_TIMEOUT_MS;
                    self.state = DfuState::DnBusy;
                }
            },
            DfuState::ManifestSync | DfuState::Manifest => match phase {
                Phase::Done => {
                    // Manifestation tolerant: straight back to dfuIDLE.
                    self.job = None;
                    self.downloading = None;
                    self.offset = 0;
                    self.state = DfuState::Idle;
                }
                Phase::Failed(e) => self.fail(e),
                Phase::Pending(t) => {
                    poll_timeout_ms = t;
                    self.state = DfuState::Manifest;
                }
                Phase::Queued => {
                    poll_timeout_ms = QUEUED_POLL_TIMEOUT_MS;
                    self.state = DfuState::Manifest;
                }
            },
            _ => {}
        }
        StatusReport {
            status: self.status,
            poll_timeout_ms,
            state: self.state,
            string: 0,
        }
    }

    fn upload(&mut self, xfer: ControlIn<'_, '_, '_, B>) {
        let len = usize::from(xfer.request().length);
        let allowed = match self.state {
            DfuState::Idle => self.can_upload,
            DfuState::UploadIdle => true,
            _ => false,
        };
        if !allowed || len == 0 || len > usize::from(TRANSFER_SIZE) {
            self.stalled();
            let _ = xfer.reject();
            return;
        }
        let target = usize::from(self.alt);
        if self.state == DfuState::Idle {
            if !self.targets[target].can_upload() {
                self.fail(DfuError::Target);
                let _ = xfer.reject();
                return;
            }
            self.offset = 0;
        }
        self.block.clear();
        self.block.resize(len, 0);
        match self.targets[target].read(self.offset, &mut self.block) {
            Ok(n) => {
                let n = n.min(len);
                if n < len {
                    // A short block ends the upload.
                    self.offset = 0;
                    self.state = DfuState::Idle;
                } else {
                    self.offset += n as u64;
                    self.state = DfuState::UploadIdle;
                }
                let _ = xfer.accept_with(&self.block[..n]);
            }
            Err(e) => {
                self.fail(e);
                let _ = xfer.reject();
            }
        }
    }

    fn dnload(&mut self, xfer: ControlOut<'_, '_, '_, B>) {
        let data = xfer.data();
        let len = data.len();
        if len > usize::from(TRANSFER_SIZE) {
            self.stalled();
            let _ = xfer.reject();
            return;
        }
        let target = usize::from(self.alt);
        let kind = match (self.state, len) {
            (DfuState::Idle, 1..) => {
                self.offset = 0;
                self.downloading = Some(target);
                JobKind::Write {
                    begin: true,
                    offset: 0,
                }
            }
            (DfuState::DnloadIdle, 0) => JobKind::Manifest,
            (DfuState::DnloadIdle, _) => JobKind::Write {
                begin: false,
                offset: self.offset,
            },
            _ => {
                self.stalled();
                let _ = xfer.reject();
                return;
            }
        };
        self.block.clear();
        self.block.extend_from_slice(data);
        self.offset += len as u64;
        self.job = Some(Job {
            target,
            kind,
            phase: Phase::Queued,
        });
        self.state = match kind {
            JobKind::Write { .. } => DfuState::DnloadSync,
            JobKind::Manifest => DfuState::ManifestSync,
        };
        let _ = xfer.accept();
    }

    fn set_interface(&mut self, xfer: ControlOut<'_, '_, '_, B>) {
        let alt = xfer.request().value;
        let Ok(alt) = u8::try_from(alt) else {
            let _ = xfer.reject();
            return;
        };
        if usize::from(alt) >= self.targets.len() {
            let _ = xfer.reject();
            return;
        }
        if alt != self.alt {
            if !matches!(self.state, DfuState::Idle | DfuState::Error) {
                // A transfer is in progress on the current target.
                let _ = xfer.reject();
                return;
            }
            self.alt = alt;
            self.offset = 0;
        }
        let _ = xfer.accept();
    }
}

impl<B: UsbBus> UsbClass<B> for DfuClass<'_, B> {
    fn get_configuration_descriptors(
        &self,
        writer: &mut DescriptorWriter<'_>,
    ) -> usb_device::Result<()> {
        for (alt, string) in self.strings.iter().enumerate() {
            writer.interface_alt(
                self.interface,
                alt as u8,
                CLASS_APP_SPECIFIC,
                SUBCLASS_DFU,
                PROTOCOL_DFU_MODE,
                Some(*string),
            )?;
        }
        writer.write(DESCRIPTOR_FUNCTIONAL, &self.functional_descriptor().body())
    }

    fn get_string(&self, index: StringIndex, _lang_id: LangID) -> Option<&str> {
        let i = self.strings.iter().position(|&s| s == index)?;
        Some(self.targets[i].name())
    }

    fn reset(&mut self) {
        self.reset_function();
    }

    fn poll(&mut self) {
        // Start the work of a request accepted in this `UsbDevice::poll` before the host's
        // next request is handled.
        self.pump();
    }

    fn get_alt_setting(&mut self, interface: InterfaceNumber) -> Option<u8> {
        (interface == self.interface).then_some(self.alt)
    }

    fn control_in(&mut self, xfer: ControlIn<'_, '_, '_, B>) {
        let req = *xfer.request();
        // GET_DESCRIPTOR(DFU functional), to the device or to this interface.
        if req.request_type == RequestType::Standard
            && req.request == Request::GET_DESCRIPTOR
            && (req.value >> 8) as u8 == DESCRIPTOR_FUNCTIONAL
            && (req.recipient == Recipient::Device
                || (req.recipient == Recipient::Interface
                    && req.index == u16::from(u8::from(self.interface))))
        {
            let _ = xfer.accept_with(&self.functional_descriptor().to_bytes());
            return;
        }
        if !self.is_ours(&req) {
            return;
        }
        match req.request {
            // Allowed in every state this interface enters (in dfuDNBUSY and dfuMANIFEST it
            // ends the poll timeout).
            request::GETSTATUS => {
                let report = self.get_status();
                let _ = xfer.accept_with(&report.to_bytes());
            }
            request::GETSTATE if self.state.allows_getstate() => {
                let _ = xfer.accept_with(&[self.state as u8]);
            }
            request::UPLOAD => self.upload(xfer),
            _ => {
                self.stalled();
                let _ = xfer.reject();
            }
        }
    }

    fn control_out(&mut self, xfer: ControlOut<'_, '_, '_, B>) {
        let req = *xfer.request();
        if req.request_type == RequestType::Standard {
            if req.recipient == Recipient::Device && req.request == Request::SET_CONFIGURATION {
                // (Re)configured: alternate settings return to 0. usb-device answers.
                self.reset_function();
            } else if req.recipient == Recipient::Interface
                && req.request == Request::SET_INTERFACE
                && req.index == u16::from(u8::from(self.interface))
            {
                self.set_interface(xfer);
            }
            return;
        }
        if !self.is_ours(&req) {
            return;
        }
        match (req.request, self.state) {
            (request::DNLOAD, _) => self.dnload(xfer),
            (request::CLRSTATUS, DfuState::Error) => {
                self.status = None;
                self.state = DfuState::Idle;
                let _ = xfer.accept();
            }
            (request::ABORT, DfuState::Idle | DfuState::DnloadIdle | DfuState::UploadIdle) => {
                self.abandon();
                self.state = DfuState::Idle;
                let _ = xfer.accept();
            }
            // Nothing to detach from in DFU mode (module docs).
            (request::DETACH, DfuState::Idle) => {
                let _ = xfer.accept();
            }
            _ => {
                self.stalled();
                let _ = xfer.reject();
            }
        }
    }
}

impl DfuState {
    /// Whether GETSTATE is allowed here (not while the host should be waiting out a poll
    /// timeout).
    fn allows_getstate(self) -> bool {
        matches!(
            self,
            DfuState::Idle
                | DfuState::DnloadSync
                | DfuState::DnloadIdle
                | DfuState::ManifestSync
                | DfuState::UploadIdle
                | DfuState::Error
        )
    }
}

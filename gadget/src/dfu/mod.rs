//! USB Device Firmware Upgrade 1.1, DFU-mode interface: `dfu-util` downloads images to (and
//! uploads them from) lunbox's *targets*: block devices, partitions, the firmware.
//!
//! # Parts
//!
//! - [`DfuClass`]: the `usb-device` class: one interface (class FEh, subclass 01h, protocol
//!   02h) with one alternate setting per target, whose iInterface string is the target's
//!   name; after the last alternate setting one DFU functional descriptor (as TinyUSB,
//!   Zephyr and the STM32 bootloaders place it; `dfu-util` finds it there). It speaks the
//!   protocol and owns the state machine, and knows nothing about what a target is.
//! - [`DfuTarget`]: what a target does with the bytes (policy). [`targets`] has the block
//!   device targets ([`BlockTarget`], direct or *safe*) and [`SinkTarget`], which hands a
//!   streamed image to an app-provided [`ImageSink`] (the firmware file, later).
//!
//! # Functional descriptor
//!
//! bmAttributes: bitCanDnload; bitCanUpload only if some target allows upload (a target
//! without the `r` flag still answers UPLOAD with a stall and errTARGET);
//! bitManifestationTolerant (the device keeps answering after manifestation, so
//! dfuMANIFEST-WAIT-RESET is never used); bitWillDetach clear (DETACH has nothing to do in
//! DFU mode, see below). wDetachTimeOut [`DETACH_TIMEOUT_MS`], wTransferSize
//! [`TRANSFER_SIZE`] = 4096: usb-device's control buffer with `control-buffer-4096`, a
//! feature of lunbox's patched usb-device 0.3.2 (`third_party/usb-device/LUNBOX-PATCH.md`;
//! upstream stops at 256 bytes). The host pays a round trip for each DNLOAD and each
//! GETSTATUS, so the block size sets the download rate over USB/IP (256-byte blocks gave
//! `dfu-util -D` about 200 KB/s). 4096 is also the most libusb (`dfu-util`) moves in one
//! control transfer. The buffer costs 3.75 KiB more RAM than the 256-byte one, inside the
//! `UsbDevice`, and [`DfuClass`] keeps a block buffer of the same size (allocated when it is
//! built).
//!
//! The configuration descriptor is built in the same control buffer. The targets are limited
//! to [`MAX_TARGETS`] = 16 (9 bytes per alternate setting plus the 9-byte functional
//! descriptor): with the mass-storage and CDC-ACM functions that still fits 256 bytes, the
//! buffer this limit was set for.
//!
//! # State machine
//!
//! DFU 1.1 appendix A.2, for the DFU-mode states (appIDLE and appDETACH are not used):
//!
//! | state | request | next state |
//! |---|---|---|
//! | dfuIDLE | DNLOAD (wLength > 0) | dfuDNLOAD-SYNC (a new download starts at offset 0) |
//! | dfuIDLE | UPLOAD | dfuUPLOAD-IDLE, or stays dfuIDLE if the first block is already short; errTARGET if the target has no `r` flag |
//! | dfuIDLE | ABORT, GETSTATUS, GETSTATE, DETACH | dfuIDLE |
//! | dfuDNLOAD-SYNC | GETSTATUS | dfuDNLOAD-IDLE (block written), dfuDNBUSY (still being written; bwPollTimeout says how long), dfuERROR (the target failed) |
//! | dfuDNLOAD-SYNC | GETSTATE | dfuDNLOAD-SYNC |
//! | dfuDNBUSY | GETSTATUS | as in dfuDNLOAD-SYNC (the host's poll ends the wait) |
//! | dfuDNLOAD-IDLE | DNLOAD (wLength > 0) | dfuDNLOAD-SYNC |
//! | dfuDNLOAD-IDLE | DNLOAD (wLength = 0) | dfuMANIFEST-SYNC (manifestation starts) |
//! | dfuDNLOAD-IDLE | ABORT | dfuIDLE (the target drops the download) |
//! | dfuDNLOAD-IDLE | GETSTATUS, GETSTATE | dfuDNLOAD-IDLE |
//! | dfuMANIFEST-SYNC | GETSTATUS | dfuIDLE (done), dfuMANIFEST (in progress; bwPollTimeout), dfuERROR (failed) |
//! | dfuMANIFEST-SYNC | GETSTATE | dfuMANIFEST-SYNC |
//! | dfuMANIFEST | GETSTATUS | as in dfuMANIFEST-SYNC |
//! | dfuUPLOAD-IDLE | UPLOAD | dfuUPLOAD-IDLE (full block), dfuIDLE (short block: the end) |
//! | dfuUPLOAD-IDLE | ABORT | dfuIDLE |
//! | dfuUPLOAD-IDLE | GETSTATUS, GETSTATE | dfuUPLOAD-IDLE |
//! | dfuERROR | GETSTATUS, GETSTATE | dfuERROR |
//! | dfuERROR | CLRSTATUS | dfuIDLE (status OK) |
//! | any | any other request | STALL, dfuERROR, errSTALLEDPKT |
//!
//! Notes:
//! - In dfuDNBUSY and dfuMANIFEST the spec has the device leave the state when
//!   bwPollTimeout elapses; here the host's next GETSTATUS (which it sends after waiting
//!   bwPollTimeout) is that event: it is answered as in the SYNC state, and if the work is
//!   still not done the answer is dfuDNBUSY / dfuMANIFEST again with a fresh bwPollTimeout
//!   (as u-boot does; `dfu-util` just polls again). Every other request in those states
//!   stalls.
//! - A request that stalls in dfuERROR keeps the status that put the device there (the
//!   first error is the interesting one); elsewhere the status becomes errSTALLEDPKT.
//! - An error during a download (a target error or a stalled request) ends the download:
//!   the target's [`DfuTarget::abort`] runs.
//! - DNLOAD longer than wTransferSize never reaches the class: wTransferSize is
//!   usb-device's whole control buffer, and usb-device refuses a control OUT transfer that
//!   does not fit it (the data stage stalls, so the host sees the transfer fail; over USB/IP
//!   the URB ends with EPIPE), and the DFU state does not change. UPLOAD with wLength 0 or
//!   above wTransferSize stalls (errSTALLEDPKT).
//! - Downloads and uploads are sequential: the byte offset is the sum of the earlier
//!   blocks' lengths (wValue, the block number, is not used to place data).
//! - DETACH in dfuIDLE is accepted and does nothing: this interface is always in DFU mode,
//!   there is no run-time interface to detach from (bitWillDetach is clear).
//! - SET_INTERFACE selects the target. It is refused (STALL, the DFU state unchanged) while
//!   a download, upload or manifestation is in progress; it is accepted in dfuIDLE and in
//!   dfuERROR (nothing is in progress there, and `dfu-util` sets the alternate setting
//!   before it reads the status and clears an error, so refusing it would wedge the device
//!   after any failed session), and selecting the current setting is always accepted.
//! - A bus reset or SET_CONFIGURATION ends whatever is in progress (the target aborts a
//!   download) and returns to dfuIDLE, status OK, alternate setting 0.
//!
//! # Where the work runs (blocking)
//!
//! The class runs inside the USB controller poller's `UsbDevice::poll`; storage may block
//! (the device's coroutine mutex, an SD card that yields while busy). The control callbacks
//! only copy the DNLOAD block and record a job. The target's work (`begin_download`,
//! `write`, `finish_download`, `resume`, `abort`) runs in [`DfuClass::pump`], which the
//! class's `UsbClass::poll` calls at the end of the `UsbDevice::poll` that accepted the
//! request, so the first step is always done before the host's next request is looked at,
//! and which the poller must also call on every pass (long work such as writing a staged
//! image is done one bounded step per call, and the poller keeps serving the other
//! functions in between; while [`DfuClass::is_busy`] it must not sleep). GETSTATUS reports
//! the job's progress: done gives dfuDNLOAD-IDLE / dfuIDLE with bwPollTimeout 0 (nothing
//! left to wait for); unfinished gives dfuDNBUSY / dfuMANIFEST with the target's estimate of
//! the time the rest needs. A block or a manifestation the target finished in its first step
//! (every block written to a [`BlockTarget`], direct or safe) is therefore answered with 0:
//! `dfu-util` 0.11 sleeps bwPollTimeout after a GETSTATUS that does not end the block's wait,
//! and after the GETSTATUS that follows its ABORT, so a non-zero value for work already done
//! would only slow the download.
//!
//! UPLOAD has to be answered inside `control_in` (usb-device cannot defer a control IN), so
//! [`DfuTarget::read`] runs there. Both may wait for a device's mutex: every user of a
//! `DeviceRef` holds its lock only across single device calls and never while waiting for
//! USB traffic (the mass-storage function does so), so the poller waits at most for one
//! device operation and this cannot deadlock. Target implementations must keep that rule:
//! never wait for anything that needs the USB poller to run.

mod class;
mod protocol;
pub mod targets;

pub use class::{DfuClass, DfuConfigError, MAX_TARGETS};
pub use protocol::{
    ATTR_CAN_DOWNLOAD, ATTR_CAN_UPLOAD, ATTR_MANIFESTATION_TOLERANT, ATTR_WILL_DETACH,
    CLASS_APP_SPECIFIC, DESCRIPTOR_FUNCTIONAL, DETACH_TIMEOUT_MS, DFU_VERSION, DfuError, DfuState,
    FunctionalDescriptor, MAX_POLL_TIMEOUT_MS, PROTOCOL_DFU_MODE, SUBCLASS_DFU, StatusReport,
    TRANSFER_SIZE, request,
};
pub use targets::{BlockTarget, DEFAULT_STAGE_LIMIT, ImageSink, SinkTarget, TargetFlags};

/// How far a target got with the work it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Finished.
    Done,
    /// Not finished: [`DfuTarget::resume`] continues it.
    Pending {
        /// The target's estimate of the milliseconds the rest needs (bwPollTimeout: the host
        /// waits this long before its next GETSTATUS).
        poll_timeout_ms: u32,
    },
}

/// A DFU target: one alternate setting of the DFU interface, and what happens to the bytes
/// downloaded to it or uploaded from it. The protocol side ([`DfuClass`]) calls these in
/// order and turns the errors into DFU statuses.
///
/// A download is `begin_download`, then `write` for each block (offsets consecutive, from
/// 0), then `finish_download` (manifestation) when the host ends it; `write` and
/// `finish_download` may leave work [`Progress::Pending`], which `resume` continues until
/// it is done. `abort` ends a download that does not finish (ABORT, an error, a bus reset)
/// at any point, even right after `begin_download` or before it (then it does nothing). These
/// run in [`DfuClass::pump`], outside the control requests.
///
/// `read` answers UPLOAD; it runs inside the control request.
///
/// No method may wait for anything that needs the USB poller to run (see the module docs).
pub trait DfuTarget {
    /// The alternate setting's name (its iInterface string).
    fn name(&self) -> &str;

    /// Whether UPLOAD may read this target (the `r` flag). UPLOAD to a target that says no
    /// stalls with errTARGET.
    fn can_upload(&self) -> bool;

    /// A download starts. Errors end it at once (errWRITE for a read-only device, …).
    fn begin_download(&mut self) -> Result<(), DfuError>;

    /// The image's bytes at `offset` (the sum of the lengths written before, so downloads
    /// are sequential). The target keeps what it needs: `data` is not offered again.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<Progress, DfuError>;

    /// The host ended the download (zero-length DNLOAD): make the image take effect
    /// (flush it, write a staged image, commit a file). errNOTDONE if it is incomplete.
    fn finish_download(&mut self) -> Result<Progress, DfuError>;

    /// Continue the work the last `write` or `finish_download` left pending.
    fn resume(&mut self) -> Result<Progress, DfuError> {
        Ok(Progress::Done)
    }

    /// Read the target's bytes at `offset` into `buf`; returns how many. Fewer than
    /// `buf.len()` (zero included) only at the end of the target, which ends the upload.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError>;

    /// The download ends without manifestation: drop what was staged. May be called when no
    /// download is in progress.
    fn abort(&mut self);
}
